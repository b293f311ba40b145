"""CPU-only work fits at the federator only where it fits on a node (model/node_room.py).

Before, the federator judged CPU-only work by the cluster's free CPU and memory (sums) and the most free of each
on one node (two maxima, often of two nodes), and the simulated agent refused what no node held: 47 of the
submit_scale backlog's CPU-only placements on examples/fleet.yaml ("2 x (CPU, 4000m CPU, ...) on CPU nodes do
not fit"), each a re-queue. Here a cycle over a simulated cluster's report, then the binds at its nodes.
"""

from __future__ import annotations

import pytest
from scenarios import H100

from federator.backends.sim.fleet import NodeSpec
from federator.backends.sim.nodes import NodeSet
from federator.model import ClusterInfo, JobId, JobKind, JobSpec, Reason, ReasonCode, Resources
from federator.model.node_room import node_room_fits, node_room_take
from federator.scheduler import Scheduler, Snapshot
from federator.scheduler.snapshot import reserve

from builders import job, request

GiB = 2**30


def _cycle_then_bind(nodes: NodeSet, specs: list[JobSpec]) -> tuple[list[str], list[str], dict[JobId, Reason]]:
    """One cycle over the cluster's report; each decision bound at its nodes as the agent binds a Launch.
    (placed, refused, pending reasons)."""
    info = ClusterInfo("c", "r", capacity=nodes.capacity())
    result = Scheduler().schedule(Snapshot.of([info]), [request(s, at=i) for i, s in enumerate(specs)], now=0.0)
    by_name = {s.name: s for s in specs}
    placed: list[str] = []
    refused: list[str] = []
    for d in result.decisions:
        spec = by_name[d.job_id]
        for a in d.assignments:
            r = Resources(spec.resources.cpu_milli, spec.resources.memory_bytes, a.accelerator_milli)
            why = nodes.bind(d.job_id, replicas=a.replicas, resources=r, accelerator_model=a.accelerator_model)
            (refused if why else placed).append(d.job_id)
    return placed, refused, dict(result.pending)


def test_cpu_only_jobs_go_only_where_a_node_has_both_their_cpu_and_memory() -> None:
    """A CPU-rich node (64 CPUs, 128 GiB: four 4-CPU, 32 GiB replicas by memory) and a memory-rich one
    (8 CPUs, 512 GiB: two by CPU): the sums (72 CPUs, 640 GiB) and the maxima (64 CPUs, 512 GiB) read 18; the
    nodes hold 6. Ten such jobs: six placed, none refused, four pending for want of a node with both."""
    nodes = NodeSet.of([NodeSpec("cpu-rich", "", 0, 64_000, 128 * GiB), NodeSpec("mem-rich", "", 0, 8_000, 512 * GiB)],
                       fit="best")
    specs = [job(f"j{i}", cpu=4, memory_gib=32) for i in range(10)]
    placed, refused, pending = _cycle_then_bind(nodes, specs)
    assert refused == []
    assert len(placed) == 6
    assert sorted(pending) == [f"j{i}" for i in range(6, 10)]
    reason = pending[JobId("j6")]
    assert reason.code in (ReasonCode.INSUFFICIENT_CPU, ReasonCode.INSUFFICIENT_MEMORY)
    assert "on one node" in reason.message


def test_a_cpu_only_gang_needs_each_replica_on_a_node() -> None:
    """Three replicas of 6 CPUs: three nodes of 4 free each hold none, though their sum (12) holds two."""
    nodes = NodeSet.of([NodeSpec(f"n{i}", "", 0, 4_000, 64 * GiB) for i in range(3)]
                       + [NodeSpec("big", "", 0, 12_000, 64 * GiB)], fit="best")
    gang = job("g", kind=JobKind.TRAINING, replicas=3, cpu=6, memory_gib=1)
    placed, refused, pending = _cycle_then_bind(nodes, [gang])
    assert (placed, refused) == ([], [])
    assert "g" in pending


def test_accelerator_work_takes_its_host_room_from_the_nodes_too() -> None:
    """An 8-GPU node (96 CPUs) and a 16-CPU node: eight one-GPU jobs of 11 CPUs leave the GPU node 8; CPU-only
    jobs of 12 CPUs placed in the same cycle then fit only the CPU node, once, though 24 CPUs are free."""
    nodes = NodeSet.of([NodeSpec("gpu", H100, 8, 96_000, 1024 * GiB), NodeSpec("cpu", "", 0, 16_000, 64 * GiB)],
                       fit="best")
    gpu_jobs = [job(f"g{i}", gpus=1, cpu=11, memory_gib=8, models=(H100,)) for i in range(8)]
    cpu_jobs = [job(f"c{i}", cpu=12, memory_gib=8) for i in range(3)]
    placed, refused, _ = _cycle_then_bind(nodes, gpu_jobs + cpu_jobs)
    assert refused == []
    assert sorted(p for p in placed if p.startswith("c")) == ["c0"]


def test_reserve_moves_the_nodes_a_cpu_only_take_lands_on() -> None:
    room = ((8_000, 512 * GiB, 1), (64_000, 128 * GiB, 2))
    assert node_room_fits(room, 4_000, 32 * GiB) == 2 + 4 + 4
    after = node_room_take(room, 4_000, 32 * GiB, 3)  # the fullest node that holds one first: the 8-CPU one
    assert after == ((0, 448 * GiB, 1), (60_000, 96 * GiB, 1), (64_000, 128 * GiB, 1))
    info = ClusterInfo("c", "r", capacity=NodeSet.of(
        [NodeSpec("a", "", 0, 8_000, 512 * GiB), NodeSpec("b", "", 0, 8_000, 512 * GiB)], fit="best").capacity())
    with pytest.raises(ValueError, match="no node with room"):  # 16 CPUs free, 8 on each node
        reserve(info, resources=Resources(12_000, GiB, 0), replicas=1, accelerator_model="")


def test_an_accelerator_replica_takes_its_host_room_on_a_node_of_its_pool_not_the_roomiest() -> None:
    """A CPU node of 136 CPUs (the roomiest) and an 8-GPU node of 38: a one-GPU job of 8 CPUs lands on the GPU
    node (30 left: one 16-CPU replica), so CPU-only jobs of 16 fit 8 + 1 = 9 times. Taken from the roomiest
    node in the federator's view (128 and 38 left) they would fit 10, and the member refuse one."""
    nodes = NodeSet.of([NodeSpec("cpu", "", 0, 136_000, 1024 * GiB), NodeSpec("gpu", H100, 8, 38_000, 1024 * GiB)],
                       fit="best")
    specs = [job("g", gpus=1, cpu=8, memory_gib=1, models=(H100,))] + [job(f"c{i}", cpu=16, memory_gib=1)
                                                                    for i in range(10)]
    placed, refused, _ = _cycle_then_bind(nodes, specs)
    assert refused == []
    assert len([p for p in placed if p.startswith("c")]) == 9
