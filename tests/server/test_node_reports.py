"""JobUpdate.nodes (tenant QA F9): an agent that says which node each placement's replicas run on lets a
top-priority job in by stopping the 3 victims on the node with 5 free, not the cluster's cheapest ten spread
over nodes that free none. Through the service's handler (the contract check) and the real state machine."""

from __future__ import annotations

from dataclasses import replace

from server_support import Clock, MemoryStore, join, make, spec
from test_agent_contract import drain, rejected

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.model import JobPhase
from federator.scheduler import SchedulerConfig
from federator.scheduler.cycle import Scheduler
from federator.server.services import AgentService

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"


def running_on(pid: str, node: str) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
        placement_id=pid, phase=convert.phase_to_pb(JobPhase.RUNNING), message="",
        nodes=[agent_pb2.NodeReplicas(node=node, replicas=1)]))


def test_an_urgent_job_stops_the_victims_on_one_node_the_agent_named() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, scheduler=Scheduler(SchedulerConfig(max_preemptions_per_cycle=10)))
    service = AgentService(fed)
    rec = join(fed, "west-1")  # 4 nodes x 8 H100
    one = lambda name, **kw: replace(spec(name, gpus=1), **kw)  # noqa: E731
    clock.now = 0.0
    old = [fed.submit(one(f"old-{i}", preemptible=True)) for i in range(3)]
    fed.schedule_once()
    clock.now = 900.0
    fixed = [fed.submit(one(f"fixed-{n}")) for n in range(3)]
    young = [fed.submit(one(f"young-{n}-{i}", preemptible=True)) for n in range(3) for i in range(7)]
    fed.schedule_once()
    where = {j.job_id: "n3" for j in old} | {j.job_id: f"n{n}" for n, j in enumerate(fixed)}
    where |= {j.job_id: f"n{k // 7}" for k, j in enumerate(young)}
    pids = []
    for job_id, node in where.items():
        (p,) = fed.jobs[job_id].placements
        pids.append(p.placement_id)
        assert service.handle(rec, running_on(p.placement_id, node)) is None
    full = cluster("west-1", "r", pool(H100, nodes=0, extra={0: 3, 5: 1})).capacity  # n3: 5 free
    fed.report(rec, replace(full, placement_ids=frozenset(pids), sequence=2))
    clock.now = 1000.0
    urgent = fed.submit(replace(spec("national-eval", gpus=8), priority=1000))
    fed.schedule_once()
    stopped = {j.spec.name for j in fed.jobs.values() if j.phase is JobPhase.PENDING and j.spec.name != "national-eval"}
    assert stopped == {"old-0", "old-1", "old-2"}
    assert fed.jobs[urgent.job_id].phase is JobPhase.PLACED


def test_nodes_that_break_the_contract_are_refused_naming_the_field() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    service = AgentService(fed)
    rec = join(fed, "west-1")
    job = fed.submit(spec("j", gpus=1))
    fed.schedule_once()
    (p,) = fed.jobs[job.job_id].placements
    drain(rec)
    twice = agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
        placement_id=p.placement_id, phase=convert.phase_to_pb(JobPhase.RUNNING),
        nodes=[agent_pb2.NodeReplicas(node="n1", replicas=1), agent_pb2.NodeReplicas(node="n1", replicas=1)]))
    said = service.handle(rec, twice)
    assert said is not None and said.value == "malformed" and rejected(fed, "malformed") == 1.0
    spaced = agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
        placement_id=p.placement_id, phase=convert.phase_to_pb(JobPhase.RUNNING),
        nodes=[agent_pb2.NodeReplicas(node="n 1", replicas=1)]))
    assert service.handle(rec, spaced) is not None
    assert fed.jobs[job.job_id].placements[0].nodes == ()
