"""Preemption for inference jobs that spread: the same spread rules as the place phase.

minRegions, the latency budget and the free room of every cluster count when
victims are chosen; when no set of victims within the cap allows the spread,
nothing is stopped and the job's reason says why.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenarios import H100, cycle, placed, running, spec

from federator.model import ClusterInfo, JobId, JobKind, JobSpec, ReasonCode
from federator.scheduler import Allocation, PlacementRequest, Scheduler, SchedulerConfig, Snapshot

from builders import cluster, pool

INF = JobKind.INFERENCE
NOW = 100.0


def idle(name: str, region: str, nodes: int) -> ClusterInfo:
    return cluster(name, region, pool(H100, nodes=nodes))


def held(name: str, region: str, nodes: int) -> ClusterInfo:
    """Every accelerator of `nodes` 8-accelerator nodes is held by running work."""
    return cluster(name, region, pool(H100, nodes=0, extra={0: nodes}))


def victim(name: str, on: str, placed_at: float, *, preemptible: bool = True) -> Allocation:
    return running(spec(name, gpus=8, preemptible=preemptible), on, placed_at=placed_at)


def urgent(**kw: object) -> JobSpec:
    return spec("urgent", kind=INF, replicas=2, gpus=8, priority=10, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Row:
    clusters: list[ClusterInfo]
    allocations: list[Allocation]
    job: JobSpec
    victims: set[str]
    placement: dict[str, int] | None  # cluster -> replicas; None: not placed
    config: SchedulerConfig = field(default_factory=SchedulerConfig)
    reason: tuple[str, ...] = ()  # words of the pending reason when not placed


ROWS = {
    # Two victims in one cluster would fit both replicas there; minRegions 2 takes one per region instead.
    "min-regions-takes-one-victim-per-region": Row(
        [held("east-1", "east", 2), held("west-1", "west", 2)],
        [victim("e1", "east-1", 90), victim("e2", "east-1", 80), victim("w1", "west-1", 50),
         victim("w2", "west-1", 10)],
        urgent(min_regions=2), {"e1", "w1"}, {"east-1": 1, "west-1": 1}),
    # A free node elsewhere plus one victim's room, rather than two victims in one cluster.
    "free-room-elsewhere-means-fewer-victims": Row(
        [idle("a-1", "a", 1), held("b-1", "b", 2)],
        [victim("v1", "b-1", 90), victim("v2", "b-1", 50)],
        urgent(), {"v1"}, {"a-1": 1, "b-1": 1}),
    # Room in one region only (REGION_UNAVAILABLE in the place phase): a victim in the other region cures it.
    "room-in-one-region-preempts-in-the-other": Row(
        [idle("east-1", "east", 2), held("west-1", "west", 2)],
        [victim("w1", "west-1", 90), victim("w2", "west-1", 10)],
        urgent(min_regions=2), {"w1"}, {"east-1": 1, "west-1": 1}),
    # One inference victim spread over both regions frees a replica's room in each.
    "a-spread-victim-frees-room-in-both-regions": Row(
        [held("east-1", "east", 1), held("west-1", "west", 1)],
        [running(spec("svc", kind=INF, replicas=2, gpus=8, preemptible=True), "east-1", replicas=1),
         running(spec("svc", kind=INF, replicas=2, gpus=8, preemptible=True), "west-1", replicas=1)],
        urgent(min_regions=2), {"svc"}, {"east-1": 1, "west-1": 1}),
    # Victims only where the users are too far: nothing is stopped.
    "victims-beyond-the-latency-budget-are-never-stopped": Row(
        [held("east-1", "east", 1), held("west-1", "west", 2)],
        [victim("fixed", "east-1", 0, preemptible=False), victim("w1", "west-1", 90), victim("w2", "west-1", 80)],
        urgent(user_region="east", max_latency_ms=50), set(), None,
        config=SchedulerConfig(region_latency_ms={("east", "west"): 80})),
    # The other region is held by work that may not be stopped: preempting in one region cannot meet minRegions.
    "min-regions-out-of-reach-is-refused-with-a-reason": Row(
        [held("east-1", "east", 2), held("west-1", "west", 2)],
        [victim("e1", "east-1", 90), victim("e2", "east-1", 80), victim("fixed", "west-1", 0, preemptible=False)],
        urgent(min_regions=2), set(), None,
        reason=("not preempting: with the 2 cheapest preemptible jobs stopped, replicas must span 2 regions",)),
    # Two regions' victims are needed but the cycle may stop only one job.
    "a-cap-too-small-for-the-spread-is-refused-with-a-reason": Row(
        [held("east-1", "east", 1), held("west-1", "west", 1)],
        [victim("e1", "east-1", 90), victim("w1", "west-1", 80)],
        urgent(min_regions=2), set(), None, config=SchedulerConfig(max_preemptions_per_cycle=1),
        reason=("not preempting: with the 1 cheapest preemptible jobs stopped", "only 1 can host one now (east)")),
}


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
def test_preempting_for_a_spread_job_keeps_the_spread_rules(row: Row) -> None:
    result = cycle(row.clusters, [row.job], config=row.config, allocations=row.allocations, now=NOW)
    assert {p.job_id for p in result.preemptions} == row.victims
    assert all(p.preemptor == "urgent" for p in result.preemptions)
    if row.placement is None:
        assert not result.decisions
        reason = result.pending["urgent"]
        assert reason.code in (ReasonCode.INSUFFICIENT_ACCELERATORS, ReasonCode.REGION_UNAVAILABLE), reason
        for words in row.reason:
            assert words in reason.message, reason.message
    else:
        assert placed(result) == {"urgent": row.placement}
        assert "urgent" not in result.pending


def test_a_spread_victim_is_stopped_part_by_part_each_naming_its_cluster() -> None:
    row = ROWS["a-spread-victim-frees-room-in-both-regions"]
    result = cycle(row.clusters, [row.job], allocations=row.allocations, now=NOW)
    assert sorted((p.job_id, p.cluster, p.part) for p in result.preemptions) == [("svc", "east-1", True),
                                                                                 ("svc", "west-1", True)]
    assert sorted(p.message for p in result.preemptions) == [
        "its part on east-1 preempted for urgent (queue default, priority 10)",
        "its part on west-1 preempted for urgent (queue default, priority 10)"]


def test_a_gang_that_needs_one_clusters_room_stops_only_the_spread_victims_part_there() -> None:
    """A preemptible inference job served from east and west; a training gang needs east's room. It stopped the
    job in both regions; now only its part on east stops, and west serves on."""
    svc = spec("svc", kind=INF, replicas=2, gpus=8, preemptible=True)
    gang = spec("train", gpus=8, priority=10)
    result = cycle([held("east-1", "east", 1), held("west-1", "west", 1)], [gang],
                   allocations=[running(svc, "east-1", replicas=1), running(svc, "west-1", replicas=1)], now=NOW)
    assert [(p.job_id, p.cluster, p.part) for p in result.preemptions] == [("svc", "east-1", True)]
    assert placed(result) == {"train": {"east-1": 1}}


# -- properties -----------------------------------------------------------------------------------


@st.composite
def fleets(draw: st.DrawFn) -> tuple[Snapshot, list[Allocation], list[PlacementRequest], int]:
    """Clusters whose held nodes are each held by one running 8-accelerator job, and inference jobs to place."""
    infos: list[ClusterInfo] = []
    allocations: list[Allocation] = []
    for i in range(draw(st.integers(1, 5))):
        free, busy = draw(st.integers(0, 2)), draw(st.integers(0, 3))
        name = f"c{i}"
        infos.append(cluster(name, f"r{draw(st.integers(0, 2))}", pool(H100, nodes=free, extra={0: busy})))
        for k in range(busy):
            allocations.append(running(spec(f"run-{name}-{k}", gpus=8, preemptible=draw(st.booleans()),
                                            priority=draw(st.integers(0, 1))),
                                       name, placed_at=draw(st.floats(0, NOW))))
    requests = []
    for i in range(draw(st.integers(1, 4))):
        replicas = draw(st.integers(1, 4))
        s = spec(f"j{i}", kind=INF, replicas=replicas, gpus=draw(st.sampled_from([4, 8])),
                 min_regions=draw(st.integers(1, min(3, replicas))), priority=draw(st.integers(0, 2)))
        requests.append(PlacementRequest(JobId(s.name), s, replicas, float(i)))
    return Snapshot.of(infos), allocations, requests, draw(st.integers(0, 4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_spread_preemption_keeps_min_regions_capacity_and_the_cap(
        fleet: tuple[Snapshot, list[Allocation], list[PlacementRequest], int]) -> None:
    snap, allocations, requests, cap = fleet
    result = Scheduler(SchedulerConfig(max_preemptions_per_cycle=cap)).schedule(
        snap, requests, running=allocations, now=NOW)
    by_job = {a.job_id: a for a in allocations}
    by_request = {r.job_id: r for r in requests}
    victims = [p.job_id for p in result.preemptions]
    assert len(victims) == len(set(victims)) <= cap
    decided = {d.job_id for d in result.decisions}
    for p in result.preemptions:
        v = by_job[p.job_id]
        assert v.preemptible and v.priority < by_request[p.preemptor].spec.priority and p.preemptor in decided
    room = {c.name: c.capacity.pool(H100).free_milli for c in snap.clusters}  # type: ignore[union-attr]
    region = {c.name: c.region for c in snap.clusters}
    for job_id in victims:
        room[by_job[job_id].cluster] += 8000
    used: dict[str, int] = defaultdict(int)
    for d in result.decisions:
        r = by_request[d.job_id]
        assert sum(a.replicas for a in d.assignments) == r.replicas
        assert len({region[a.cluster] for a in d.assignments}) >= r.spec.min_regions
        for a in d.assignments:
            used[a.cluster] += r.spec.resources.accelerator_milli * a.replicas
    assert all(used[name] <= room[name] for name in room), (used, room)
