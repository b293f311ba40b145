"""Fakes shared by the state-machine tests of tests/server: an in-memory store, a clock, job and report builders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace

import grpc

from federator.api.v1 import jobs_pb2_grpc
from federator.jobfile import parse_job
from federator.model import ClusterCapacity, Job, JobSpec
from federator.security.auth import Authenticator
from federator.server.federator import ClusterRecord, Federator
from federator.server.services import JobService
from federator.store.sqlite import job_from_dict, job_to_dict

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"
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


def placed_on(fed: Federator, prefix: str) -> dict[str, int]:
    """Replicas per cluster of the jobs whose names start with `prefix` (a backlog's share of each cluster)."""
    out: dict[str, int] = {}
    for job in fed.jobs.values():
        if job.spec.name.startswith(prefix):
            for p in job.placements:
                out[p.cluster] = out.get(p.cluster, 0) + 1
    return out


@asynccontextmanager
async def job_api(fed: Federator) -> AsyncIterator[jobs_pb2_grpc.JobServiceStub]:
    """The real job service of `fed` over loopback (insecure: the caller is the admin), and a client of it."""
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, Authenticator(insecure=True)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            yield jobs_pb2_grpc.JobServiceStub(ch)
    finally:
        await server.stop(0)
