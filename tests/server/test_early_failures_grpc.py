"""Outside QA's black-hole provider (finding F02), end to end over real gRPC sockets: an agent that claims huge
room at a price of 0, acknowledges every Launch and reports it Running then Failed at once, beside an honest
agent with room. Two tenants (their own user certificates) submit jobs; the federator's loop runs as it does in
`federator serve`.

Before: every job went to the liar and ended Failed within seconds. Now each job is placed once more elsewhere,
and the liar is quarantined after three early failures of two owners whose jobs then ran on the honest cluster
(server/blame.py: for --early-failure-seconds, 1 s here, so the test need not wait the default 300 s): every
job runs on the honest cluster.
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from scripted_agent import ScriptedStream
from test_services_edge import channel, run, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.jobfile import parse_job
from federator.model import PRICE_LABEL, JobPhase
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import cluster_files, user_files
from federator.server.early_failures import EarlyFailurePolicy, EarlyFailures

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"
CRASH = "CUDA error: an illegal memory access was encountered (exit 139)"


class FakeAgent(ScriptedStream):
    """Hello with its price, and an answer to each Launch: Ack, Running, then Failed at once if it lies."""

    def __init__(self, name: str, *, nodes: int, price: str, lies: bool) -> None:
        super().__init__(name, agent_pb2.Hello(cluster=name, region="r", labels={PRICE_LABEL: price}),
                         convert.capacity_to_pb(cluster(name, "r", pool(H100, nodes=nodes)).capacity))
        self.lies = lies

    def answer(self, placement_id: str) -> None:
        pid = placement_id
        self.send(ack=agent_pb2.Ack(placement_id=pid, ok=True))
        self.send(job_update=agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(JobPhase.RUNNING)))
        if self.lies:
            self.send(job_update=agent_pb2.JobUpdate(
                placement_id=pid, phase=convert.phase_to_pb(JobPhase.FAILED), message=CRASH))


def job(name: str) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "training", "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})))


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    """A federation's CA, its two member clusters and two tenants."""
    certs = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(certs)
    for name in ("acme-east", "gx-west"):
        issue(certs, Identity(IdentityKind.CLUSTER, name))
    for user in ("alice", "bob", "admin"):
        issue(certs, Identity(IdentityKind.USER, user))
    return certs


def test_a_provider_that_fails_every_job_at_once_ends_up_with_none_of_them(tenants: CertsDir) -> None:
    async def go() -> None:
        async with served(certs=tenants) as s:
            fed = s.fed
            fed.cycle_interval = 0.1
            fed.early = EarlyFailures(fed, EarlyFailurePolicy(seconds=1.0))
            loop = asyncio.get_running_loop()
            liar = FakeAgent("acme-east", nodes=100_000, price="0", lies=True)
            honest = FakeAgent("gx-west", nodes=8, price="2.00", lies=False)
            agents = [loop.create_task(a.run(s.target, cluster_files(tenants, a.name))) for a in (liar, honest)]
            runner = loop.create_task(fed.run())
            try:
                for _ in range(100):
                    if {"acme-east", "gx-west"} <= {n for n, r in fed.clusters.items() if r.capacity is not None}:
                        break
                    await asyncio.sleep(0.05)
                ids = []
                for i in range(6):
                    user = "alice" if i % 2 == 0 else "bob"
                    async with channel(s.target, user_files(tenants, user)) as ch:
                        ids.append((user, (await jobs_pb2_grpc.JobServiceStub(ch).Submit(job(f"bh{i}"),
                                                                                       timeout=5)).job.job_id))
                    await asyncio.sleep(0.2)  # one at a time, as tenants do: each cycle sees the last outcome
                for _ in range(200):
                    if all(fed.jobs[j].phase is JobPhase.RUNNING for _, j in ids):
                        break
                    await asyncio.sleep(0.05)
                for user, job_id in ids:
                    async with channel(s.target, user_files(tenants, user)) as ch:
                        got = await jobs_pb2_grpc.JobServiceStub(ch).Get(jobs_pb2.GetJobRequest(job_id=job_id),
                                                                         timeout=5)
                    assert convert.phase_from_pb(got.phase) is JobPhase.RUNNING, (user, got.message)
                    assert [p.cluster for p in got.placements] == ["gx-west"]
                for _ in range(100):  # the jobs ran 1 s on gx-west: the liar's failures are evidence now
                    if fed.early.quarantine.current(fed.clock()):
                        break
                    await asyncio.sleep(0.05)
                assert len(liar.launched) >= 3  # it drew jobs until it was quarantined...
                drawn = len(liar.launched)
                async with channel(s.target, user_files(tenants, "bob")) as ch:
                    late = (await jobs_pb2_grpc.JobServiceStub(ch).Submit(job("late"), timeout=5)).job.job_id
                for _ in range(100):
                    if fed.jobs[late].phase is JobPhase.RUNNING:
                        break
                    await asyncio.sleep(0.05)
                assert [p.cluster for p in fed.jobs[late].placements] == ["gx-west"]
                assert len(liar.launched) == drawn  # ...and none after
                async with channel(s.target, user_files(tenants, "admin")) as ch:
                    listed = await jobs_pb2_grpc.ClusterServiceStub(ch).List(jobs_pb2.ListClustersRequest(),
                                                                             timeout=5)
                status = {c.name: c for c in listed.clusters}
                assert status["acme-east"].state == "Ready" and status["acme-east"].quarantined_until > 0
                assert "owners failed within --early-failure-seconds" in status["acme-east"].quarantine_reason
                assert status["gx-west"].quarantined_until == 0
            finally:
                runner.cancel()
                for task in agents:
                    task.cancel()
                for task in (runner, *agents):
                    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                        await task

    run(go)
