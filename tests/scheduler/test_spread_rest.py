"""Spread counts decided after an outside QA round (inference angle): scheduler/spread.py.

F6: the rest of a running inference job (a scale-up's difference, a lost part's replicas) takes what fits now, in
whole groups, the remainder waiting with its reason; a job's first placement stays all or nothing.
F1: for such a rest, minRegions is a goal, not a gate: with one of two regions Lost the rest goes to the region
left, and the decision says the job spans fewer regions and why; a first placement keeps the gate.
F5: the users' region is the first tier (with the preferred regions), then the other regions by latency to it.
"""

from __future__ import annotations

from dataclasses import replace

from scenarios import H100, cycle, placed, running, spec

from federator.model import ClusterInfo, ClusterState, JobId, JobKind, JobSpec, ReasonCode
from federator.scheduler import PlacementRequest, Scheduler, SchedulerConfig, Snapshot

from builders import cluster, pool


def rest(s: JobSpec, replicas: int, *kept_regions: str) -> PlacementRequest:
    return PlacementRequest(JobId(s.name), s, replicas, kept_regions=tuple(sorted(kept_regions)))


def svc(replicas: int, **kw: object) -> JobSpec:
    return spec("svc", kind=JobKind.INFERENCE, replicas=replicas, gpus=1, **kw)


def room(name: str, region: str, free: int, *, state: ClusterState = ClusterState.READY) -> ClusterInfo:
    """A cluster with one H100 node of `free` free accelerators."""
    return cluster(name, region, pool(H100, nodes=1, free=free), state=state)


# -- F6: the rest of a running job is placed greedily ------------------------------------------------------------

def test_a_scale_up_that_does_not_fit_whole_places_what_fits() -> None:
    s = svc(9)  # runs 3 on east-1; asks 6 more; east-2 has room for 5
    result = Scheduler().schedule(Snapshot.of([room("east-2", "east", 5)]), [rest(s, 6, "east")],
                                  running=[running(s, "east-1", replicas=3)])
    assert placed(result) == {"svc": {"east-2": 5}}
    short = result.decisions[0].short
    assert short is not None and short.code is ReasonCode.INSUFFICIENT_ACCELERATORS
    assert "only 5 of 6 replicas fit" in short.message
    assert "svc" not in result.pending


def test_a_grouped_rest_takes_whole_groups_only() -> None:
    s = replace(svc(8), group_size=2)  # a LeaderWorkerSet of groups of 2: room for 5 pods is 2 groups
    result = Scheduler().schedule(Snapshot.of([room("east-2", "east", 5)]), [rest(s, 6, "east")],
                                  running=[running(s, "east-1", replicas=2)])
    assert placed(result) == {"svc": {"east-2": 4}}
    short = result.decisions[0].short
    assert short is not None and "(in groups of 2)" in short.message


def test_a_first_placement_stays_all_or_nothing() -> None:
    result = cycle([room("east-2", "east", 5)], [svc(6)])
    assert placed(result) == {}
    assert result.pending["svc"].code is ReasonCode.INSUFFICIENT_ACCELERATORS


def test_a_rest_that_fits_whole_is_not_short() -> None:
    s = svc(6)
    result = Scheduler().schedule(Snapshot.of([room("east-2", "east", 8)]), [rest(s, 3, "east")],
                                  running=[running(s, "east-1", replicas=3)])
    assert placed(result) == {"svc": {"east-2": 3}} and result.decisions[0].short is None


# -- F1: minRegions is a goal for the rest of a running job -------------------------------------------------------

def test_a_lost_regions_replicas_go_to_the_region_left() -> None:
    s = svc(4, min_regions=2)  # east x1 + west x3; west-1 Lost: 3 owed, east-2 has room for 3
    fleet = [room("east-2", "east", 3), room("west-1", "west", 8, state=ClusterState.LOST)]
    result = Scheduler().schedule(Snapshot.of(fleet), [rest(s, 3, "east")], running=[running(s, "east-1", replicas=1)])
    assert placed(result) == {"svc": {"east-2": 3}}
    short = result.decisions[0].short
    assert short is not None and short.code is ReasonCode.REGION_UNAVAILABLE
    assert short.message.startswith("spans 1 of the 2 regions its minRegions asks, placed in the regions left")
    assert "west: west-1 is Lost" in short.message


def test_a_rest_that_finds_its_second_region_is_not_short() -> None:
    s = svc(4, min_regions=2)
    fleet = [room("east-2", "east", 8), room("west-2", "west", 8)]
    result = Scheduler().schedule(Snapshot.of(fleet), [rest(s, 3, "east")], running=[running(s, "east-1", replicas=1)])
    got = placed(result)["svc"]
    assert "west-2" in got and sum(got.values()) == 3 and result.decisions[0].short is None


def test_a_first_placement_keeps_min_regions_a_gate() -> None:
    fleet = [room("east-2", "east", 8), room("west-1", "west", 8, state=ClusterState.LOST)]
    result = cycle(fleet, [svc(4, min_regions=2)])
    assert placed(result) == {}
    assert result.pending["svc"].code is ReasonCode.REGION_UNAVAILABLE


# -- F5: near the users' region first -------------------------------------------------------------------------

LATENCY = SchedulerConfig(region_latency_ms={("west", "central"): 70, ("west", "east"): 120,
                                             ("east", "central"): 60})


def test_the_users_region_takes_every_replica_it_has_room_for() -> None:
    fleet = [room("east-1", "east", 8), room("central-1", "central", 8), room("west-1", "west", 8)]
    result = cycle(fleet, [svc(3, user_region="west")], config=LATENCY)
    assert placed(result) == {"svc": {"west-1": 3}}


def test_past_the_users_region_the_nearest_region_fills_first() -> None:
    fleet = [room("east-1", "east", 8), room("central-1", "central", 8), room("west-1", "west", 1)]
    result = cycle(fleet, [svc(4, user_region="west")], config=LATENCY)
    assert placed(result) == {"svc": {"west-1": 1, "central-1": 3}}


def test_min_regions_is_the_only_reason_to_go_wider() -> None:
    fleet = [room("east-1", "east", 8), room("central-1", "central", 8), room("west-1", "west", 8)]
    result = cycle(fleet, [svc(4, user_region="west", min_regions=2)], config=LATENCY)
    got = placed(result)["svc"]
    assert set(got) == {"west-1", "central-1"} and got["west-1"] == 3  # the second region: the nearest one


def test_the_users_region_without_latencies_still_comes_first() -> None:
    fleet = [room("east-1", "east", 8), room("central-1", "central", 8), room("west-1", "west", 8)]
    result = cycle(fleet, [svc(3, user_region="west")])
    assert placed(result) == {"svc": {"west-1": 3}}
