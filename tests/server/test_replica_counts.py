"""The federator keeps what agents say of how many replicas run and are ready (JobUpdate.replicas_running and
replicas_ready) and shows it as numbers: Job.replicas_running/replicas_ready, `get jobs -o wide` READY "3/4", the
federator_replicas_short gauge per queue (outside QA F2: a job serving 2 of 4 said so only in prose)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from server_support import Clock, MemoryStore, join, make
from test_partial_failover import running_on
from test_services_edge import channel, run, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.cli.output import job_rows
from federator.jobfile import parse_job
from federator.model import Job, JobPhase, JobSpec
from federator.server.federator import Federator
from federator.server.replica_counts import ReplicaCounts

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"


def serving(replicas: int = 4) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "chat"},
                      "spec": {"kind": "inference", "queue": "serving", "replicas": replicas,
                               "regions": {"minRegions": 2},
                               "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}})


def short(fed: Federator) -> dict[str, float]:
    return {s.labels["queue"]: s.value for m in fed.metrics.registry.collect() if m.name == "federator_replicas_short"
            for s in m.samples}


def ready_cell(job: Job) -> str:
    headers, (row,) = job_rows([job], wide=True)
    return row[headers.index("READY")]


def test_a_part_short_on_its_member_is_counted_stored_and_shown() -> None:
    store = MemoryStore()
    fed = make(store, Clock())
    a, b = join(fed, "a", region="east"), join(fed, "b", region="west")
    job = fed.submit(serving())
    fed.schedule_once()
    assert sorted(p.cluster for p in job.placements) == ["a", "b"]
    running_on(fed, job, a, b)  # an older agent: says no count, so a Running part counts whole
    assert (job.replicas_running, job.replicas_ready, short(fed)) == (4, 4, {"serving": 0.0})
    on_b = next(p for p in job.placements if p.cluster == "b")
    fed.job_update(b, on_b.placement_id, JobPhase.RUNNING, "0 of 2 replicas running; 2 pending: 0/4 nodes ...",
                   counts=ReplicaCounts(running=0, ready=0))
    assert (job.replicas_running, job.replicas_ready) == (2, 2)
    assert short(fed) == {"serving": 2.0} and ready_cell(job) == "2/4"
    assert (store.docs[job.job_id].replicas_running, store.docs[job.job_id].replicas_ready) == (2, 2)  # stored
    pb = convert.job_to_pb(job)
    assert (pb.replicas_running, pb.replicas_ready) == (2, 2)
    assert convert.job_from_pb(pb).replicas_ready == 2  # a client derives the same from the placements

    # A count alone is news: one replica back, running but not ready (the message unchanged).
    fed.job_update(b, on_b.placement_id, JobPhase.RUNNING, "", counts=ReplicaCounts(running=1, ready=0))
    assert (job.replicas_running, job.replicas_ready, short(fed)) == (3, 2, {"serving": 2.0})
    assert store.docs[job.job_id].placements[[p.cluster for p in job.placements].index("b")].replicas_running == 1
    # An update that says no count keeps the last; a count above the part's share is read as the share.
    fed.job_update(b, on_b.placement_id, JobPhase.RUNNING, "2 replicas running")
    assert (on_b.replicas_running, on_b.replicas_ready) == (1, 0)
    fed.job_update(b, on_b.placement_id, JobPhase.RUNNING, "2 replicas running", counts=ReplicaCounts(99, 99))
    assert (job.replicas_running, job.replicas_ready, short(fed)) == (4, 4, {"serving": 0.0})
    assert ready_cell(job) == "4/4"


def test_replicas_owed_at_the_federator_are_short_too() -> None:
    """A Running job missing a part no cluster has room for (replicas_waiting) does not serve with those either."""
    fed = make(MemoryStore(), Clock())
    a, b = join(fed, "a", region="east"), join(fed, "b", region="west")
    job = fed.submit(serving())
    fed.schedule_once()
    running_on(fed, job, a, b)
    job.placements = [p for p in job.placements if p.cluster == "a"]  # as after b's part was lost, not yet re-placed
    assert job.replicas_waiting == 2 and job.replicas_running == 2
    assert short(fed) == {"serving": 2.0}


class _Agent:
    """One agent stream over a socket: Hello, a report, and for each Launch an Ack and a JobUpdate with counts."""

    def __init__(self) -> None:
        self.out: asyncio.Queue[agent_pb2.AgentMessage | None] = asyncio.Queue()
        self.updated = asyncio.Event()

    async def _requests(self) -> AsyncIterator[agent_pb2.AgentMessage]:
        while (msg := await self.out.get()) is not None:
            yield msg

    async def run(self, target: str) -> None:
        async with channel(target) as ch:
            call = ch.stream_stream("/federator.v1.AgentService/Connect",
                                    request_serializer=agent_pb2.AgentMessage.SerializeToString,
                                    response_deserializer=agent_pb2.FederatorMessage.FromString)(self._requests())
            self.out.put_nowait(agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster="east-1", region="east")))
            cap = convert.capacity_to_pb(cluster("east-1", "east", pool(H100, nodes=1)).capacity)
            cap.sequence = 1
            self.out.put_nowait(agent_pb2.AgentMessage(capacity=cap))
            async for msg in call:
                if msg.WhichOneof("body") != "launch":
                    continue
                pid = msg.launch.placement.placement_id
                self.out.put_nowait(agent_pb2.AgentMessage(ack=agent_pb2.Ack(placement_id=pid, ok=True)))
                self.out.put_nowait(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
                    placement_id=pid, phase=convert.phase_to_pb(JobPhase.RUNNING),
                    message="3 replicas running, 1 ready", replicas_running=3, replicas_ready=1)))
                self.updated.set()


def test_the_counts_an_agent_sends_reach_a_client_over_grpc() -> None:
    replicas = 3

    async def go() -> None:
        async with served() as s:
            agent = _Agent()
            task = asyncio.get_running_loop().create_task(agent.run(s.target))
            try:
                for _ in range(100):
                    if (rec := s.fed.clusters.get("east-1")) is not None and rec.capacity is not None:
                        break
                    await asyncio.sleep(0.05)
                spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                  "metadata": {"name": "chat"},
                                  "spec": {"kind": "inference", "replicas": replicas,
                                           "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}})
                job = s.fed.submit(spec)
                s.fed.schedule_once()
                await asyncio.wait_for(agent.updated.wait(), 10)
                async with channel(s.target) as ch:
                    for _ in range(100):
                        got = await jobs_pb2_grpc.JobServiceStub(ch).Get(jobs_pb2.GetJobRequest(job_id=job.job_id))
                        if got.phase == convert.phase_to_pb(JobPhase.RUNNING) and got.replicas_running:
                            break
                        await asyncio.sleep(0.05)
                assert (got.replicas_running, got.replicas_ready) == (3, 1)
                (placement,) = got.placements
                assert placement.HasField("replicas_ready") and placement.replicas_ready == 1
            finally:
                agent.out.put_nowait(None)
                task.cancel()

    run(go)
