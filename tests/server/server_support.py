"""Fakes shared by the state-machine tests of tests/server: an in-memory store, a clock, job and report builders;
and the real job service over loopback with what its Watch tests read it with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sized
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.jobfile import parse_job
from federator.model import ClusterCapacity, Job, JobPhase, JobSpec
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator
from federator.security.authz import Authorizer
from federator.security.pki import CertsDir, init_ca
from federator.security.tls import TlsFiles, server_files
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import Order
from federator.server.services import JobService
from federator.store.sqlite import job_from_dict, job_to_dict

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"
JobStub = jobs_pb2_grpc.JobServiceStub
LEASE, LOST_AFTER = 10.0, 60.0


class MemoryStore:
    def __init__(self) -> None:
        self.docs: dict[str, Job] = {}

    def put(self, jobs: Iterable[Job]) -> None:
        for job in jobs:  # a deep copy, as a real store would hold
            self.docs[job.job_id] = job_from_dict(job_to_dict(job))

    def load(self) -> list[Job]:
        return list(self.docs.values())

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def spec(name: str, *, gpus: int = 8, replicas: int = 1, **annotations: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": annotations},
                      "spec": {"kind": "training", "replicas": replicas,
                               "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": gpus}}})


def capacity(*placement_ids: str, free: int = 8) -> ClusterCapacity:
    cap = cluster("x", "r", pool(H100, nodes=4, free=free)).capacity
    return replace(cap, placement_ids=frozenset(placement_ids))


def make(store: MemoryStore, clock: Clock, **kw: object) -> Federator:
    return Federator(store=store, clock=clock, lease_seconds=LEASE, lost_after_seconds=LOST_AFTER, **kw)  # type: ignore[arg-type]


def join(fed: Federator, name: str, *placement_ids: str, region: str = "r") -> ClusterRecord:
    rec = fed.connect(cluster=name, region=region, labels={})
    fed.report(rec, capacity(*placement_ids))
    return rec


def drained(rec: ClusterRecord) -> list[Order]:
    """The orders waiting in a cluster's outbox, taken: what its agent would be sent next."""
    out = []
    while not rec.outbox.empty():
        order = rec.outbox.get_nowait()
        assert order is not None
        out.append(order)
    return out


def placed_on(fed: Federator, prefix: str) -> dict[str, int]:
    """Replicas per cluster of the jobs whose names start with `prefix` (a backlog's share of each cluster)."""
    out: dict[str, int] = {}
    for job in fed.jobs.values():
        if job.spec.name.startswith(prefix):
            for p in job.placements:
                out[p.cluster] = out.get(p.cluster, 0) + 1
    return out


@asynccontextmanager
async def job_api(fed: Federator, audit: AuditLog | None = None) -> AsyncIterator[jobs_pb2_grpc.JobServiceStub]:
    """The real job service of `fed` over loopback (insecure: the caller is the admin), writing `audit` if given,
    and a client of it."""
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, Authenticator(insecure=True), audit=audit), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            yield jobs_pb2_grpc.JobServiceStub(ch)
    finally:
        await server.stop(0)


@asynccontextmanager
async def job_api_by_token(fed: Federator, auth: Authenticator, certs_dir: Path, *,
                           authz: Authorizer | None = None,
                           audit: AuditLog | None = None) -> AsyncIterator[Callable[[str], JobStub]]:
    """The real job service of `fed` over loopback TLS (a CA made in `certs_dir`), its callers known by bearer token
    (`auth`) and held to `authz`; yields `stub(token)`, a client calling as that token's user. Its channels are
    closed, and the server stopped, on the way out."""
    certs = CertsDir(certs_dir)
    init_ca(certs)
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, auth, authz=authz, audit=audit), server)
    port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials(require_client_auth=False))
    await server.start()
    channels: list[grpc.aio.Channel] = []

    def stub(token: str) -> JobStub:
        creds = grpc.composite_channel_credentials(TlsFiles(certs.ca_cert).channel_credentials(),
                                                   grpc.access_token_call_credentials(token))
        channels.append(grpc.aio.secure_channel(f"127.0.0.1:{port}", creds))
        return jobs_pb2_grpc.JobServiceStub(channels[-1])

    try:
        yield stub
    finally:
        for ch in channels:
            await ch.close()
        await server.stop(0)


def submit_request(name: str) -> jobs_pb2.SubmitRequest:
    """A Submit of a job that asks for no accelerator: the Watch tests' jobs, whose changes are what they watch."""
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec(name, gpus=0)))


async def read_watch(watch: object, n: int) -> list[types_pb2.Job]:
    """The next `n` messages of a Watch; fails if the stream ends first, or they take more than 10 s (a hang)."""
    got = []
    async with asyncio.timeout(10):
        for _ in range(n):
            msg = await watch.read()  # type: ignore[attr-defined]
            assert msg is not grpc.aio.EOF, f"the stream ended after {got}"
            got.append(msg)
    return got


def walk_a_pending_count(fed: Federator, submit: Callable[[str, int], JobSpec], count: Callable[[], int],
                         refused: type[Exception], counter: Sized) -> None:
    """What every pending cap's count is held to (a queue's, a user's), with a cap of 2: `submit(name, gpus)`
    makes a job that counts against it, `count` reads the count, `refused` is the cap's refusal and `counter`
    the count's keeper. A job counts while Pending (parked too) and not once placed, cancelled, ended, or
    before it is re-queued."""
    rec = join(fed, "x")  # 4 nodes of 8 free H100
    big, small = fed.submit(submit("big", 8)), fed.submit(submit("small", 8))
    assert count() == 2
    fed.schedule_once()
    assert big.phase is small.phase is JobPhase.PLACED and count() == 0  # placed: no longer waiting
    waiting = [fed.submit(submit(f"w-{i}", 64)) for i in range(2)]  # no cluster has 64 on a node
    fed.schedule_once()
    assert count() == 2  # still Pending (parked): counted
    with pytest.raises(refused):
        fed.submit(submit("w-2", 8))
    fed.cancel(waiting[0].job_id)
    assert count() == 1  # cancelled while pending
    (p,) = big.placements
    fed.job_update(rec, p.placement_id, JobPhase.SUCCEEDED, "done")
    assert big.phase is JobPhase.SUCCEEDED and count() == 1  # a placed job's end does not touch the count
    (p,) = small.placements
    fed.job_update(rec, p.placement_id, JobPhase.CANCELLED, "evicted")  # the member stopped it: re-queued
    assert small.phase is JobPhase.PENDING and count() == 2
    with pytest.raises(refused):
        fed.submit(submit("w-3", 8))
    fed.cancel(small.job_id)
    fed.cancel(waiting[1].job_id)
    fed.cancel(big.job_id)  # already ended: nothing changes
    assert count() == 0 and len(counter) == 0
    fed.submit(submit("w-4", 8))
    assert count() == 1
