"""A placement its agent lost (backends/kube/stranded.py: a namespacePerQueue placement whose RBAC is gone, reported
Failed at the agent's start while its pods may still run) ends its job, over real gRPC sockets with scripted
agents and the federator's loop as `federator serve` runs it.

A spread inference job keeps its part on the other member serving: only the lost part ends (0.7.0 cancelled the
other provider's replicas and failed the job).

Before: the federator read that Failed as any other. Reported within --early-failure-seconds of the job's start
(an agent restarted soon after a launch, or any time after a federator restart), the job was placed once more on
the other member, while its pods on the first may still run: the double run that Failed (not Cancelled) was meant
to avoid.
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from agent_stream import agent_stream
from prometheus_client import generate_latest
from scripted_agent import ScriptedStream
from server_support import MemoryStore
from test_services_edge import channel, run, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.backends.kube.stranded import lost
from federator.jobfile import parse_job
from federator.model import PRICE_LABEL, JobPhase
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import cluster_files, user_files
from federator.server.federator import Federator

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"
TENANT_NS = "federator-workloads-research"


class Member(ScriptedStream):
    """Acks each Launch and reports it Running; the stranded one then reports it Failed as lost, as its re-sync
    after a restart without --namespace-per-queue does: JobUpdate.lost, with the reference Kubernetes agent's
    message (stranded.lost) and the feature "lost" in its Hello, or, without `marks`, as a third-party agent may:
    the field alone, no feature listed, and words of its own (since 0.20.0 not taken as lost: secqa61 L2)."""

    def __init__(self, name: str, *, price: str, strands: bool, region: str = "r", marks: bool = False) -> None:
        super().__init__(name, agent_pb2.Hello(cluster=name, region=region, labels={PRICE_LABEL: price},
                                               features=["lost"] if marks else []),
                         convert.capacity_to_pb(cluster(name, "r", pool(H100, nodes=8)).capacity))
        self.strands = strands
        self.marks = marks
        self.lost_message = ""

    def answer(self, placement_id: str) -> None:
        pid = placement_id
        self.send(ack=agent_pb2.Ack(placement_id=pid, ok=True))
        self.send(job_update=agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(JobPhase.RUNNING)))
        if self.strands:
            self.strands = False  # its first placement only: a later one it still follows
            problem = "it may not list jobs.batch there (forbidden)"
            self.lost_message = (str(lost({TENANT_NS: [pid]}, problem, self.name)[pid]) if self.marks
                                 else f"gone from our control plane: {problem}")
            self.send(job_update=agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(JobPhase.FAILED),
                                                     message=self.lost_message, resync=True, lost=True))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    out = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(out)
    for name in ("stranded", "spare"):
        issue(out, Identity(IdentityKind.CLUSTER, name))
    issue(out, Identity(IdentityKind.USER, "alice"))
    return out


@pytest.mark.parametrize("marks", [False, True], ids=["field-alone", "reference-agent"])
def test_a_placement_its_agent_lost_fails_the_job_and_is_never_placed_again(certs: CertsDir, marks: bool) -> None:
    async def go() -> None:
        async with served(certs=certs) as s:
            fed = s.fed
            fed.cycle_interval = 0.1
            loop = asyncio.get_running_loop()
            stranded = Member("stranded", price="0", strands=True, marks=marks)  # the cheaper: the job goes there
            spare = Member("spare", price="2.00", strands=False)
            agents = [loop.create_task(a.run(s.target, cluster_files(certs, a.name))) for a in (stranded, spare)]
            runner = loop.create_task(fed.run())
            try:
                for _ in range(100):
                    if {"stranded", "spare"} <= {n for n, r in fed.clusters.items() if r.capacity is not None}:
                        break
                    await asyncio.sleep(0.05)
                spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                  "metadata": {"name": "train"},
                                  "spec": {"kind": "training", "resources": {"cpu": "4", "nvidia.com/gpu": 8}}})
                async with channel(s.target, user_files(certs, "alice")) as ch:
                    stub = jobs_pb2_grpc.JobServiceStub(ch)
                    job_id = (await stub.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec)),
                                                timeout=5)).job.job_id
                    for _ in range(200):
                        got = await stub.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5)
                        if convert.phase_from_pb(got.phase).is_terminal or spare.launched:
                            break
                        await asyncio.sleep(0.05)
                    for _ in range(10):  # a few more cycles: a re-placement would show now
                        await asyncio.sleep(0.1)
                    got = await stub.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5)
                assert len(stranded.launched) == 1
                scrape = generate_latest(fed.metrics.registry).decode()
                if not marks:  # secqa61 L2: the field from an agent that never listed "lost" is not taken
                    assert len(spare.launched) == 1  # an ordinary early failure: placed once more elsewhere
                    assert 'federator_placements_lost_total{cluster="stranded"} 0.0' in scrape
                    assert 'federator_placement_early_failures_total{cluster="stranded"} 1.0' in scrape
                    assert any(e.message.startswith("job_update.lost: set for ") and '"lost"' in e.message
                               and e.reason == "malformed" for e in stranded.errors), stranded.errors
                    return
                assert spare.launched == []  # never placed again while its pods may run on `stranded`
                assert convert.phase_from_pb(got.phase) is JobPhase.FAILED, got.message
                assert got.message.startswith(stranded.lost_message)
                assert "not placed again: its pods may still run on stranded" in got.message
                assert 'federator_placements_lost_total{cluster="stranded"} 1.0' in scrape
                assert 'federator_placement_early_failures_total{cluster="stranded"} 0.0' in scrape
            finally:
                runner.cancel()
                for task in agents:
                    task.cancel()
                for task in (runner, *agents):
                    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                        await task

    run(go)


def test_a_spread_job_whose_part_its_agent_lost_keeps_serving_on_the_other_member(certs: CertsDir) -> None:
    async def go() -> None:
        async with served(certs=certs) as s:
            fed = s.fed
            fed.cycle_interval = 0.1
            loop = asyncio.get_running_loop()
            stranded = Member("stranded", price="0", strands=True, region="east", marks=True)
            spare = Member("spare", price="2.00", strands=False, region="west")
            agents = [loop.create_task(a.run(s.target, cluster_files(certs, a.name))) for a in (stranded, spare)]
            runner = loop.create_task(fed.run())
            try:
                for _ in range(100):
                    if {"stranded", "spare"} <= {n for n, r in fed.clusters.items() if r.capacity is not None}:
                        break
                    await asyncio.sleep(0.05)
                spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                  "metadata": {"name": "serve"},
                                  "spec": {"kind": "inference", "replicas": 2, "regions": {"minRegions": 2},
                                           "resources": {"cpu": "4", "nvidia.com/gpu": 8}}})
                async with channel(s.target, user_files(certs, "alice")) as ch:
                    stub = jobs_pb2_grpc.JobServiceStub(ch)
                    job_id = (await stub.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec)),
                                                timeout=5)).job.job_id
                    for _ in range(200):
                        got = await stub.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5)
                        if stranded.lost_message and len(spare.launched) >= 2:
                            break
                        await asyncio.sleep(0.05)
                    for _ in range(10):  # a few more cycles: a cancel of the other part would show now
                        await asyncio.sleep(0.1)
                    got = await stub.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5)
                assert stranded.lost_message and len(stranded.launched) == 1  # not placed there again
                assert spare.cancelled == []  # the other provider's replica keeps serving, never cancelled
                assert convert.phase_from_pb(got.phase) is JobPhase.RUNNING, got.message
                # the lost replica is owed and placed elsewhere (on spare: stranded is avoided a while)
                assert {p.placement_id for p in got.placements} == set(spare.launched) and len(spare.launched) == 2
                scrape = generate_latest(fed.metrics.registry).decode()
                assert 'federator_placements_lost_total{cluster="stranded"} 1.0' in scrape
            finally:
                runner.cancel()
                for task in agents:
                    task.cancel()
                for task in (runner, *agents):
                    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                        await task

    run(go)


def test_lost_set_for_an_id_never_sent_is_said_unexpected_not_taken_as_a_failure() -> None:
    """goagentqa62 L1: an agent that does not list "lost" set it on the Failed update of an id of its cluster's form
    that the federator never placed there; the Error said "taken as an ordinary failure", yet nothing was taken.
    It says the id is not a placement current on the cluster now, and no job changes."""
    async def go() -> None:
        fed = Federator(store=MemoryStore(), cycle_interval=0.05)  # type: ignore[arg-type]
        async with agent_stream(fed) as agent:
            pid = "never-1a2b3c.g1.east-1"
            await agent.send(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
                placement_id=pid, phase=convert.phase_to_pb(JobPhase.FAILED), lost=True, message="gone")))
            error = await agent.next_error()
            assert (error.reason, error.placement_id) == ("unexpected", pid)
            assert error.message.startswith(f"job_update.placement_id: {pid!r} is not a placement current on this "
                                            "cluster"), error.message
            assert "taken as" not in error.message and not fed.jobs

    asyncio.run(go())
