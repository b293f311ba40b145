"""Preemption per node (tenant QA F9): victims that free one node's worth, not the cluster's cheapest ten."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scenarios import H100, cycle, running, spec

from federator.model import ReasonCode
from federator.scheduler import SchedulerConfig
from federator.scheduler.framework import Allocation

from builders import cluster, pool


def on(s: object, node: str, *, placed_at: float) -> Allocation:
    a = running(s, "c1", placed_at=placed_at)  # type: ignore[arg-type]
    return replace(a, nodes=((node, a.replicas),))


def packed(*, reserved_node_victims: int, flood_on_reserved: int = 0) -> list[Allocation]:
    """The finding's cluster: 8 nodes x 8 H100. n0..n6 are full, each with one non-preemptible job and seven
    young (cheap) preemptible ones; n7 holds `reserved_node_victims` old (dear) preemptible 1-GPU jobs and
    `flood_on_reserved` non-preemptible ones, the rest free."""
    out = []
    for n in range(7):
        out.append(on(spec(f"fixed-{n}", gpus=1, queue="org-1"), f"n{n}", placed_at=990.0))
        out += [on(spec(f"young-{n}-{i}", gpus=1, preemptible=True, queue=f"org-{i % 7 + 2}"), f"n{n}",
                   placed_at=900.0 + i) for i in range(7)]
    out += [on(spec(f"old-{i}", gpus=1, preemptible=True, queue="org-9"), "n7", placed_at=0.0)
            for i in range(reserved_node_victims)]
    out += [on(spec(f"pinned-{i}", gpus=1, queue="org-1"), "n7", placed_at=990.0) for i in range(flood_on_reserved)]
    return out


def hist_of(allocs: list[Allocation]) -> dict[int, int]:
    held: dict[str, int] = {}
    for a in allocs:
        for node, r in a.nodes:
            held[node] = held.get(node, 0) + r * a.resources.accelerator_milli // 1000
    out: dict[int, int] = {}
    for node in (f"n{i}" for i in range(8)):
        out[8 - held.get(node, 0)] = out.get(8 - held.get(node, 0), 0) + 1
    return out


CONFIG = SchedulerConfig(max_preemptions_per_cycle=10)


@pytest.mark.parametrize(("victims_on_n7", "expected"), [
    pytest.param(3, {"old-0", "old-1", "old-2"}, id="finding-F9: 3 dear victims on the node with 5 free"),
    pytest.param(1, {"old-0"}, id="one victim on the node with 7 free"),
])
def test_a_single_replica_takes_the_cheapest_victims_on_one_node(victims_on_n7: int, expected: set[str]) -> None:
    allocs = packed(reserved_node_victims=victims_on_n7)
    c1 = cluster("c1", "r", pool(H100, nodes=0, extra=hist_of(allocs)))
    urgent = spec("national-eval", gpus=8, priority=1000, queue="org-9")
    result = cycle([c1], [urgent], now=1000.0, config=CONFIG, allocations=allocs)
    assert {p.job_id for p in result.preemptions} == expected
    assert [d.job_id for d in result.decisions] == ["national-eval"]


def test_a_node_of_dear_victims_is_chosen_when_within_the_cap() -> None:
    allocs = packed(reserved_node_victims=8)
    c1 = cluster("c1", "r", pool(H100, nodes=0, extra=hist_of(allocs)))
    result = cycle([c1], [spec("national-eval", gpus=8, priority=1000, queue="org-9")], now=1000.0,
                   config=CONFIG, allocations=allocs)
    assert {p.job_id for p in result.preemptions} == {f"old-{i}" for i in range(8)}


def test_a_gang_that_only_one_node_could_hold_stops_no_one() -> None:
    allocs = packed(reserved_node_victims=3)
    c1 = cluster("c1", "r", pool(H100, nodes=0, extra=hist_of(allocs)))
    gang = spec("gang", gpus=8, replicas=2, priority=1000, queue="org-9")
    result = cycle([c1], [gang], now=1000.0, config=SchedulerConfig(max_preemptions_per_cycle=12),
                   allocations=allocs)
    # fixed-* holds a GPU on each of n0..n6: only n7 can ever hold a replica, so the gang stops no one
    assert not result.preemptions
    assert result.pending["gang"].code is ReasonCode.INSUFFICIENT_ACCELERATORS


def test_a_gang_frees_two_nodes_when_two_nodes_can_be_freed() -> None:
    allocs = [on(spec(f"a{i}", gpus=1, preemptible=True), "n0", placed_at=float(i)) for i in range(8)]
    allocs += [on(spec(f"b{i}", gpus=2, preemptible=True), "n1", placed_at=500.0) for i in range(3)]
    allocs += [on(spec("fixed", gpus=1), "n2", placed_at=0.0)]
    allocs += [on(spec(f"c{i}", gpus=1, preemptible=True), f"n{2 + i % 6}", placed_at=999.0) for i in range(10)]
    c1 = cluster("c1", "r", pool(H100, nodes=0, extra=hist_of(allocs)))
    gang = spec("gang", gpus=8, replicas=2, priority=10)
    result = cycle([c1], [gang], now=1000.0, config=CONFIG, allocations=allocs)
    stopped = {p.job_id for p in result.preemptions}
    assert [d.job_id for d in result.decisions] == ["gang"]
    assert len(stopped) <= 10 and "fixed" not in stopped


def test_without_node_reports_the_cluster_wide_plan_stands() -> None:
    allocs = [replace(a, nodes=()) for a in packed(reserved_node_victims=3)]
    c1 = cluster("c1", "r", pool(H100, nodes=0, extra={0: 7, 5: 1}))
    result = cycle([c1], [spec("national-eval", gpus=8, priority=1000, queue="org-9")], now=1000.0,
                   config=CONFIG, allocations=allocs)
    assert not result.preemptions  # nothing names a node: the pessimistic guess frees no node of 8 within 10


def test_when_work_it_may_not_stop_fills_every_node_its_reason_says_so() -> None:
    allocs = packed(reserved_node_victims=3, flood_on_reserved=2)  # n7: 3 free, 3 victims, 2 pinned: 6 at most
    c1 = cluster("c1", "r", pool(H100, nodes=0, extra=hist_of(allocs)))
    result = cycle([c1], [spec("national-eval", gpus=8, priority=1000, queue="org-9")], now=1000.0,
                   config=CONFIG, allocations=allocs)
    assert not result.preemptions
    assert result.pending["national-eval"].message.endswith(
        "not preempting: every node that could hold it runs non-preemptible work (or work of a priority and queue "
        "it may not preempt)")


def test_without_node_reports_the_cap_note_says_it_is_an_estimate() -> None:
    allocs = [replace(a, nodes=()) for a in packed(reserved_node_victims=3)]
    c1 = cluster("c1", "r", pool(H100, nodes=0, extra={0: 7, 5: 1}))
    result = cycle([c1], [spec("national-eval", gpus=8, priority=1000, queue="org-9")], now=1000.0,
                   config=CONFIG, allocations=allocs)
    said = result.pending["national-eval"].message
    assert "it would take more than maxVictimsPerCycle (10) preemptible jobs to make room" in said
    assert "c1's agent does not say which node each runs on: fewer on one node may do" in said


def test_a_priority_job_behind_work_it_may_not_stop_reads_a_preemption_note() -> None:
    """Tenant QA F2: behind the flood of non-preemptible work the 8-GPU job read no word of preemption."""
    fixed = spec("fixed", gpus=8, replicas=3, priority=0)
    small = spec("small", gpus=2, preemptible=True, priority=0)
    c = cluster("c", "r", pool(H100, nodes=0, extra={0: 3, 6: 1}))
    result = cycle([c], [spec("urgent", gpus=8, priority=100)], now=10.0,
                   allocations=[running(fixed, "c"), running(spec("other", gpus=2), "c"), running(small, "c")])
    assert not result.preemptions
    # releasing "small" frees 2 on a node the estimate takes to be the fullest: never a node of 8
    assert result.pending["urgent"].message.endswith(
        "not preempting: even with all 1 preemptible jobs it may stop gone it would not fit: the rest of the work "
        "in its way is not preemptible, or not its to stop")
