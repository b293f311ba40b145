"""Reports that contradict the placements they list (outside QA F7): kept, but those placements are not taken as
subtracted, the agent is told and it is counted; what an honest report says never trips the check."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from server_support import H100, Clock, MemoryStore, make, spec
from test_services_edge import agent_stream, channel, hello, served

from federator.agent.agent import Agent, AgentConfig
from federator.api import convert
from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.model import AcceleratorPool, ClusterCapacity, JobId, JobKind, JobPhase, Placement, Resources
from federator.model.pod_sets import PodSetAsk
from federator.server.consistency import as_listed, contradictions, least_used
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import ErrorNotice, LaunchOrder, Order
from federator.server.services import AgentService
from federator.store.sqlite import SqliteJobStore

from builders import job, pool

GiB = 2**30


def cap(*pools: AcceleratorPool, ids: tuple[str, ...] = ()) -> ClusterCapacity:
    return ClusterCapacity(accelerator_pools=pools, cpu_milli_allocatable=1_000_000, cpu_milli_free=1_000_000,
                           memory_bytes_allocatable=8192 * GiB, memory_bytes_free=8192 * GiB,
                           node_cpu_milli_free_max=128_000, node_memory_bytes_free_max=2048 * GiB,
                           placement_ids=frozenset(ids))


def placed(pid: str, *, replicas: int = 1, milli: int = 8000, model: str = H100, vendor: str = "") -> Placement:
    return Placement(pid, JobId(pid.partition(".")[0]), "west-1", "r", replicas, model, 1, JobPhase.RUNNING,
                     accelerator_vendor=vendor, accelerator_milli=milli)


def shared(model: str, *, sharing: str, total: int, whole_free_nodes: int = 0, unit_milli: int = 0,
           shared_devices: tuple[tuple[int, int], ...] = ()) -> AcceleratorPool:
    """One-device nodes: `whole_free_nodes` of them whole free, the rest in use or shared."""
    return AcceleratorPool(model, (total - whole_free_nodes, whole_free_nodes), total, total,
                           shared_devices=shared_devices, sharing=sharing, unit_milli=unit_milli)


@pytest.mark.parametrize(("report", "listed", "contradicts"), [
    (cap(pool(H100, nodes=1, free=0, extra={8: 1})), [placed("a.g1.west-1")], False),  # honest: 8 used of 16
    (cap(pool(H100, nodes=2, free=8)), [placed("a.g1.west-1")], True),  # F7 (b): 16 of 16 free, 8 listed
    (cap(pool(H100, nodes=2, free=8)), [], False),  # nothing listed
    (cap(pool(H100, nodes=1, free=4, extra={8: 1})), [placed("a.g1.west-1", milli=4000)], False),
    (cap(pool(H100, nodes=1, free=4, extra={8: 1})), [placed("a.g1.west-1", replicas=2, milli=4000)], True),
    (cap(pool(H100, nodes=2, free=8)), [placed("a.g1.west-1", milli=0)], False),  # CPU-only work
    # F7 (a): the pool shrank to 0 under a listed running placement; and a pool gone altogether
    (cap(AcceleratorPool(H100, (), 0, 0)), [placed("a.g1.west-1", replicas=5, milli=500)], True),
    (cap(), [placed("a.g1.west-1")], True),
    # fractions share devices: 5 x 500m hold at least 3 devices of a milli-sharing pool, 1 of a time-sliced one
    (cap(shared("L4", sharing="", total=4, whole_free_nodes=1, shared_devices=((500, 3),))),
     [placed("a.g1.west-1", replicas=5, milli=500, model="L4")], False),
    (cap(shared("L4", sharing="", total=4, whole_free_nodes=2, shared_devices=((500, 2),))),
     [placed("a.g1.west-1", replicas=5, milli=500, model="L4")], True),
    (cap(shared("L4", sharing="TimeSlicing", total=4, whole_free_nodes=3, shared_devices=((500, 1),))),
     [placed("a.g1.west-1", replicas=5, milli=500, model="L4")], False),
    # several placements' fractions on one device: a time-sliced one, or a milli-shared one
    (cap(shared("L4", sharing="TimeSlicing", total=4, whole_free_nodes=3, shared_devices=((250, 1),))),
     [placed(f"p{i}.g1.west-1", milli=250, model="L4") for i in range(3)], False),
    (cap(shared("L4", sharing="", total=4, whole_free_nodes=3, shared_devices=((250, 1),))),
     [placed(f"p{i}.g1.west-1", milli=250, model="L4") for i in range(3)], False),
    # MIG counts partitions: a replica holds one, whatever it asked
    (cap(shared("A100-1g", sharing="MIG", unit_milli=125, total=7, whole_free_nodes=5)),
     [placed("a.g1.west-1", replicas=2, milli=125, model="A100-1g")], False),
    (cap(shared("A100-1g", sharing="MIG", unit_milli=125, total=7, whole_free_nodes=6)),
     [placed("a.g1.west-1", replicas=2, milli=125, model="A100-1g")], True),
    # devices of unusable nodes and quota held are not whole free: a kube agent's report of them adds up
    (cap(AcceleratorPool(H100, (1,), 8, 0)), [placed("a.g1.west-1")], False),
    (cap(AcceleratorPool(H100, (1, 0, 0, 0, 0, 0, 0, 0, 0), 8, 8, quota_held_accelerators=8)),
     [placed("a.g1.west-1")], False),
], ids=["honest", "all-free", "none-listed", "half", "two-halves-on-one-free-node", "cpu-only", "shrunk-to-0",
        "pool-gone", "fractions-fit", "fractions-over", "time-sliced", "sliced-shared", "milli-shared", "mig-fits",
        "mig-over", "unusable-node", "quota-held"])
def test_a_pool_contradicts_its_listed_placements_only_when_they_cannot_fit_in_what_is_not_free(
        report: ClusterCapacity, listed: list[Placement], contradicts: bool) -> None:
    assert bool(contradictions(report, listed)) is contradicts


def test_the_least_placements_hold_together() -> None:
    whole = pool(H100, nodes=1)
    assert least_used(whole, [placed("a.g1.w", replicas=4, milli=8000)]) == 32
    assert least_used(whole, [placed("a.g1.w", replicas=3, milli=1500)]) == 5
    assert least_used(whole, [placed("a.g1.w", milli=500), placed("b.g1.w", milli=500)]) == 1  # one device
    assert least_used(shared("M", sharing="MIG", unit_milli=125, total=7), [placed("a.g1.w", replicas=3)]) == 3
    sliced = shared("L4", sharing="TimeSlicing", total=4)
    assert least_used(sliced, [placed(f"{i}.g1.w", milli=250) for i in range(8)]) == 1


def drain(rec: ClusterRecord) -> list[Order | None]:
    out: list[Order | None] = []
    while not rec.outbox.empty():
        out.append(rec.outbox.get_nowait())
    return out


def report_msg(capacity: ClusterCapacity, sequence: int) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(replace(capacity, sequence=sequence)))


def running(pid: str) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(
        JobPhase.RUNNING)))


def inconsistent(fed: Federator, cluster: str) -> float:
    return fed.metrics.registry.get_sample_value("federator_inconsistent_reports_total", {"cluster": cluster}) or 0.0


def test_an_agent_that_reports_its_pool_all_free_under_its_placements_never_gets_it_overbooked() -> None:
    """F7 (c): four 1 x 8 gangs were all placed and Running on a 16-device pool whose agent listed them and kept
    saying all 16 were free. Now at most two fit, and the agent hears why with every such report."""
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    rec = fed.connect(cluster="west-1", region="r", labels={})
    all_free = cap(pool(H100, nodes=2, free=8))
    seq = 1
    assert service.handle(rec, report_msg(all_free, seq)) is None
    jobs = []
    for i in range(4):  # submitted one after another, as in the repro (3 s apart)
        jobs.append(fed.submit(spec(f"oc{i}")))
        fed.schedule_once()
        for order in drain(rec):
            if isinstance(order, LaunchOrder):
                pid = order.placement.placement_id
                fed.acked(rec, pid)
                service.handle(rec, running(pid))
        seq += 1
        listed = tuple(p.placement_id for j in jobs for p in j.placements if p.phase.is_active)
        service.handle(rec, report_msg(replace(all_free, placement_ids=frozenset(listed)), seq))
    placed_jobs = [j for j in jobs if j.placements]
    assert len(placed_jobs) == 2, [j.phase for j in jobs]
    assert rec.uncounted == {p.placement_id for j in placed_jobs for p in j.placements}
    assert inconsistent(fed, "west-1") >= 1
    errors = [o for o in drain(rec) if isinstance(o, ErrorNotice)]
    assert errors and errors[-1].reason == "inconsistent_report"
    assert "capacity.accelerator_pools[0]" in errors[-1].message and "at least 16" in errors[-1].message
    # an honest report again: the placements are taken as subtracted, and nothing more is said
    honest = replace(cap(pool(H100, nodes=2, free=0)), placement_ids=rec.capacity.placement_ids)  # type: ignore[union-attr]
    count = inconsistent(fed, "west-1")
    service.handle(rec, report_msg(honest, seq + 1))
    assert rec.uncounted == frozenset() and inconsistent(fed, "west-1") == count
    assert not [o for o in drain(rec) if isinstance(o, ErrorNotice)]


def test_over_grpc_a_report_contradicting_a_listed_running_placement_is_answered_and_reserved() -> None:
    """F7 (b) end to end: the agent re-syncs its running 1 x 8 placement and lists it, but says its 16 devices are
    all free. It hears an Error naming the pool and the numbers; the federator's view keeps 8 free, not 16."""
    async def go() -> None:
        async with served() as s:
            fed = s.fed
            rec = fed.connect(cluster="east-1", region="east", labels={})
            fed.report(rec, cap(pool(H100, nodes=2, free=8)))
            job = fed.submit(spec("victim"))
            fed.schedule_once()
            (p,) = job.placements
            fed.disconnect(rec)
            lying = replace(cap(pool(H100, nodes=2, free=8)), placement_ids=frozenset({p.placement_id}))
            async with channel(s.target) as ch:
                got, err = await agent_stream(ch, [hello(), running(p.placement_id), report_msg(lying, 1)])
            assert err is None
            errors = [m.error for m in got if m.WhichOneof("body") == "error"]
            assert [e.reason for e in errors] == ["inconsistent_report"], errors
            assert "capacity.accelerator_pools[0]" in errors[0].message and "only 0 not whole free" in \
                errors[0].message
            assert not [m for m in got if m.WhichOneof("body") == "cancel"]
            assert job.phase is JobPhase.RUNNING
            rec = fed.clusters["east-1"]
            info = fed.cycles.reserved_info(rec, fed.cycles.active_by_cluster().get("east-1", ()))
            assert info is not None and info.capacity.accelerator_pools[0].free_accelerators == 8
            assert inconsistent(fed, "east-1") == 1.0

    asyncio.run(go())


def test_the_reference_agent_with_the_sim_backend_never_trips_the_check() -> None:
    """An honest agent: the reference agent over a real socket, its simulated member running whole-device gangs,
    an inference job spread over replicas and fractions sharing devices; every report it sends lists what it
    runs, and not one is found contradicting."""
    fleet = parse_fleet({"clusters": [{"name": "sim-1", "region": "r", "nodes": [
        {"count": 3, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})

    async def go() -> None:
        fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=0.05)
        server = grpc.aio.server()
        agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        backend = SimBackend(fleet["sim-1"])
        agent = Agent(AgentConfig(cluster="sim-1", region="r", target=f"127.0.0.1:{port}", max_backoff=0.2),
                      backend)
        task = asyncio.create_task(agent.run())
        try:
            for spec_ in (job("gang", gpus=8, replicas=2), job("four", gpus=4), job("one", gpus=1),
                          job("halves", kind=JobKind.INFERENCE, gpus=0.5, replicas=3),
                          job("quarter", gpus=0.25), job("cpu", cpu=2)):
                fed.submit(spec_)
            listed_max = 0
            for _ in range(60):
                fed.schedule_once()
                await asyncio.sleep(0.05)
                rec = fed.clusters.get("sim-1")
                if rec is not None and rec.capacity is not None:
                    listed_max = max(listed_max, len(rec.capacity.placement_ids))
            assert listed_max >= 6  # the check ran on reports listing every kind of placement
            assert inconsistent(fed, "sim-1") == 0.0
            assert fed.clusters["sim-1"].uncounted == frozenset()
        finally:
            task.cancel()
            await backend.stop()
            await server.stop(0)

    asyncio.run(go())


def test_a_gang_of_pod_sets_is_counted_at_what_its_sets_hold() -> None:
    """The RL JobSet (learner 2 x 8, rollout 4 x 1, reward 1 x 1: JobSpec.pod_sets) placed as 7 pods on 24 H100
    leaves 3 whole free: the report is honest. Counted as 7 x 8 = 56 it contradicted every report of its member, and
    the federator held the gang's room a second time (seen on the sim)."""
    rl = replace(job("rl", replicas=7, gpus=8), pod_sets=(
        PodSetAsk("learner", 2, Resources(accelerator_milli=8000)),
        PodSetAsk("rollout", 4, Resources(accelerator_milli=1000)),
        PodSetAsk("reward", 1, Resources(accelerator_milli=1000))))
    report = cap(pool(H100, nodes=0, extra={0: 2, 3: 1}))  # 2 nodes all used, one with 3 of 8 free: 21 used
    p = placed("rl.g1.west-1", replicas=7)
    assert contradictions(report, [as_listed(p, rl)]) == []
    assert contradictions(report, [as_listed(p, replace(rl, pod_sets=()))])  # equal pods of 8: 56, not 21
    assert contradictions(cap(pool(H100, nodes=3, free=8)), [as_listed(p, rl)])  # all free under it: as before
