"""A drain end to end over real gRPC sockets: scripted agents on loopback, the federator's loop running as in
`federator serve`, an admin's Drain call. A training gang is ended whole on the drained cluster and runs whole
on another, the same job; an inference job spread over two clusters keeps its replicas on the other one (same
placement, no order sent there) and gets its drained replicas back on a third, surge first: they run there
before the drained ones end, so the job never serves fewer replicas than it asks; with no room elsewhere they
serve on where they are until the surge's bound."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import generate_latest
from scripted_agent import ScriptedStream
from test_services_edge import channel, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.jobfile import parse_job
from federator.model import JobPhase
from federator.model.cordon import SURGE_SECONDS
from federator.server.federator import Federator

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"


class Agent(ScriptedStream):
    """A member of `nodes` 8-GPU nodes that runs every placement it is handed."""

    def __init__(self, name: str, *, nodes: int) -> None:
        super().__init__(name, agent_pb2.Hello(cluster=name, region=name.split("-")[0], labels={}),
                         convert.capacity_to_pb(cluster(name, name.split("-")[0], pool(H100, nodes=nodes)).capacity))

    def answer(self, placement_id: str) -> None:
        self.send(ack=agent_pb2.Ack(placement_id=placement_id, ok=True))
        self.send(job_update=agent_pb2.JobUpdate(placement_id=placement_id,
                                                 phase=convert.phase_to_pb(JobPhase.RUNNING)))


def submit(kind: str, name: str, replicas: int) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": kind, "replicas": replicas,
                 "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})))


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def with_agents(fed: Federator, target: str, agents: list[Agent],
                      body: Callable[[], Awaitable[None]]) -> None:
    loop = asyncio.get_running_loop()
    fed.cycle_interval = 0.1
    tasks = [loop.create_task(fed.run())]
    try:
        for agent in agents:
            tasks.append(loop.create_task(agent.run(target)))
            await until(lambda a=agent: fed.clusters.get(a.name) is not None  # type: ignore[misc]
                        and fed.clusters[a.name].capacity is not None, f"{agent.name} reports")
        await body()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_a_drained_gang_is_ended_whole_and_runs_whole_elsewhere_as_the_same_job() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed, east, west = s.fed, Agent("east-1", nodes=2), Agent("west-1", nodes=2)
            api, admin = jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.ClusterServiceStub(ch)

            async def body() -> None:
                job_id = (await api.Submit(submit("training", "gang", 2), timeout=5)).job.job_id
                await until(lambda: fed.jobs[job_id].phase is JobPhase.RUNNING, "the gang runs on east-1")
                [old] = fed.jobs[job_id].placements
                assert (old.cluster, old.replicas) == ("east-1", 2)
                west_task = asyncio.get_running_loop().create_task(west.run(s.target))
                try:
                    await until(lambda: fed.clusters.get("west-1") is not None
                                and fed.clusters["west-1"].capacity is not None, "west-1 reports")
                    reply = await admin.Drain(jobs_pb2.DrainClusterRequest(cluster="east-1",
                                                                           reason="hardware swap"), timeout=5)
                    assert (reply.changed, reply.jobs, list(reply.job_ids), reply.waiting) == \
                        (True, 1, [job_id], "")
                    await until(lambda: [p.cluster for p in fed.jobs[job_id].placements] == ["west-1"]
                                and fed.jobs[job_id].phase is JobPhase.RUNNING, "the gang runs on west-1")
                    [new] = fed.jobs[job_id].placements
                    assert new.replicas == 2 and new.generation > old.generation  # whole, and fenced
                    assert [(c.placement_id, c.reason) for c in east.cancelled] == \
                        [(old.placement_id, "superseded: cluster east-1 drained by anonymous: hardware swap")]
                    assert west.cancelled == []
                    got = await api.Get(jobs_pb2.GetJobRequest(job_id="gang"), timeout=5)  # by name: the same job
                    assert got.job_id == job_id and [p.cluster for p in got.placements] == ["west-1"]
                    [listed] = [c for c in (await admin.List(jobs_pb2.ListClustersRequest(), timeout=5)).clusters
                                if c.name == "east-1"]
                    assert (listed.cordoned, listed.draining, listed.drain_jobs_left, listed.placements) == \
                        (True, "drained by anonymous: hardware swap", 0, 0)
                    scrape = generate_latest(fed.metrics.registry).decode()
                    assert 'federator_drained_placements_total{cluster="east-1"} 1.0' in scrape
                    assert 'federator_placement_retries_total{reason="Drained"} 1.0' in scrape
                finally:
                    west_task.cancel()
                    await asyncio.gather(west_task, return_exceptions=True)

            await with_agents(fed, s.target, [east], body)

    asyncio.run(go())


def test_a_drain_moves_only_an_inference_jobs_replicas_on_the_drained_cluster() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed = s.fed
            east, west, central = Agent("east-1", nodes=1), Agent("west-1", nodes=1), Agent("central-1", nodes=1)
            api, admin = jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.ClusterServiceStub(ch)

            async def body() -> None:
                job_id = (await api.Submit(submit("inference", "chat", 2), timeout=5)).job.job_id
                await until(lambda: fed.jobs[job_id].phase is JobPhase.RUNNING, "the job runs")
                placed = {p.cluster: p for p in fed.jobs[job_id].placements}
                assert sorted(placed) == ["east-1", "west-1"]  # one node each: spread
                kept = placed["west-1"]
                central_task = asyncio.get_running_loop().create_task(central.run(s.target))
                phases: list[JobPhase] = []
                try:
                    await until(lambda: fed.clusters.get("central-1") is not None
                                and fed.clusters["central-1"].capacity is not None, "central-1 reports")
                    await admin.Drain(jobs_pb2.DrainClusterRequest(cluster="east-1"), timeout=5)

                    def moved() -> bool:
                        phases.append(fed.jobs[job_id].phase)
                        return sorted(p.cluster for p in fed.jobs[job_id].placements) == ["central-1", "west-1"] \
                            and fed.jobs[job_id].phase is JobPhase.RUNNING

                    await until(lambda: moved() and bool(east.cancelled), "the east-1 replica runs on central-1")
                    now = {p.cluster: p for p in fed.jobs[job_id].placements}
                    assert (now["west-1"].placement_id, now["west-1"].generation) == \
                        (kept.placement_id, kept.generation)  # untouched
                    assert west.cancelled == [] and west.launched == [kept.placement_id]
                    assert [c.placement_id for c in east.cancelled] == [placed["east-1"].placement_id]
                    assert JobPhase.PENDING not in phases  # west-1 served throughout
                finally:
                    central_task.cancel()
                    await asyncio.gather(central_task, return_exceptions=True)

            await with_agents(fed, s.target, [east, west], body)

    asyncio.run(go())


class SlowAgent(Agent):
    """A member whose placements start only when the test says so (`start`): a replacement still pulling its
    image, while the test looks at what the drain does meanwhile."""

    def __init__(self, name: str, *, nodes: int) -> None:
        super().__init__(name, nodes=nodes)
        self.held: list[str] = []

    def answer(self, placement_id: str) -> None:
        self.send(ack=agent_pb2.Ack(placement_id=placement_id, ok=True))
        self.held.append(placement_id)

    def start(self) -> None:
        for pid in self.held:
            self.send(job_update=agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(JobPhase.RUNNING)))
        self.held = []


def serving(*agents: Agent) -> int:
    """Replicas running as the agents know it: launched, said Running, and not cancelled (one per placement)."""
    out = 0
    for agent in agents:
        stopped = {c.placement_id for c in agent.cancelled}
        held = set(getattr(agent, "held", ()))
        out += sum(1 for pid in agent.launched if pid not in stopped and pid not in held)
    return out


async def turns(fed: Federator, n: int) -> None:
    """Let the federator's loop take `n` more scheduling turns (each runs the drain's turn first)."""
    start = fed.cycles.cycles
    await until(lambda: fed.cycles.cycles >= start + n, f"{n} turns")


def test_a_drain_surges_a_serving_job_its_replicas_never_fewer_than_it_asks() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed = s.fed
            east, west, central = Agent("east-1", nodes=1), Agent("west-1", nodes=1), SlowAgent("central-1", nodes=1)
            api, admin = jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.ClusterServiceStub(ch)

            async def body() -> None:
                job_id = (await api.Submit(submit("inference", "chat", 2), timeout=5)).job.job_id
                await until(lambda: fed.jobs[job_id].phase is JobPhase.RUNNING, "the job runs")
                drained = next(p for p in fed.jobs[job_id].placements if p.cluster == "east-1")
                central_task = asyncio.get_running_loop().create_task(central.run(s.target))
                least: list[int] = []
                try:
                    await until(lambda: fed.clusters.get("central-1") is not None
                                and fed.clusters["central-1"].capacity is not None, "central-1 reports")
                    reply = await admin.Drain(jobs_pb2.DrainClusterRequest(cluster="east-1"), timeout=5)
                    assert reply.surge_seconds == SURGE_SECONDS

                    def placed() -> bool:
                        least.append(serving(east, west, central))
                        return bool(central.launched)

                    await until(placed, "the replacement is placed on central-1")
                    await turns(fed, 3)  # the replacement starts: the drained replica serves meanwhile
                    assert east.cancelled == [] and len(fed.jobs[job_id].placements) == 3
                    [listed] = [c for c in (await admin.List(jobs_pb2.ListClustersRequest(), timeout=5)).clusters
                                if c.name == "east-1"]
                    assert (listed.drain_jobs_left, listed.drain_jobs_surging, listed.drain_waiting) == (1, 1, "")
                    central.start()

                    def ended() -> bool:
                        least.append(serving(east, west, central))
                        return bool(east.cancelled)

                    await until(ended, "the drained replica ends once its replacement runs")
                    assert [c.placement_id for c in east.cancelled] == [drained.placement_id]
                    assert central.cancelled == [] and west.cancelled == []
                    job = fed.jobs[job_id]
                    assert sorted(p.cluster for p in job.placements) == ["central-1", "west-1"]
                    assert job.pending_reason is None and job.phase is JobPhase.RUNNING
                    assert min(least) >= 2  # never fewer than its count
                    scrape = generate_latest(fed.metrics.registry).decode()
                    assert 'federator_drain_surges_total{outcome="completed"} 1.0' in scrape
                finally:
                    central_task.cancel()
                    await asyncio.gather(central_task, return_exceptions=True)

            await with_agents(fed, s.target, [east, west], body)

    asyncio.run(go())


def test_with_no_room_elsewhere_a_serving_job_serves_on_until_the_bound_then_ends() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed = s.fed
            east, west = Agent("east-1", nodes=1), Agent("west-1", nodes=1)
            api, admin = jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.ClusterServiceStub(ch)

            async def body() -> None:
                job_id = (await api.Submit(submit("inference", "chat", 2), timeout=5)).job.job_id
                await until(lambda: fed.jobs[job_id].phase is JobPhase.RUNNING, "the job runs")
                await admin.Drain(jobs_pb2.DrainClusterRequest(cluster="east-1"), timeout=5)
                await turns(fed, 3)
                assert east.cancelled == [] and serving(east, west) == 2  # nowhere to go: it serves on
                [listed] = [c for c in (await admin.List(jobs_pb2.ListClustersRequest(), timeout=5)).clusters
                            if c.name == "east-1"]
                assert (listed.drain_jobs_left, listed.drain_jobs_surging) == (1, 0)
                assert listed.drain_waiting.startswith("1 serving job(s) find no room elsewhere")
                fed.drains.surges.seconds = 0.0  # the bound passes
                await until(lambda: bool(east.cancelled), "the drained replica ends at the bound")
                job = fed.jobs[job_id]
                assert [p.cluster for p in job.placements] == ["west-1"] and job.replicas_waiting == 1
                assert job.pending_reason is not None and "drained by anonymous" in job.pending_reason.message

            await with_agents(fed, s.target, [east, west], body)

    asyncio.run(go())
