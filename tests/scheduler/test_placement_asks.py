"""A job's own placement asks (outside migration QA): static weights per region (M8, scheduler/weights.py) and the
cheapest place (M11, scheduler/cheapest.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scenarios import H100, cycle, placed, running, spec

from federator.model import ClusterInfo, ClusterState, JobId, JobKind, JobSpec, Preference, ReasonCode
from federator.scheduler import PlacementRequest, Scheduler, Snapshot
from federator.scheduler.weights import shares, split

from builders import cluster, pool


def room(name: str, region: str, free: int, *, price: float | None = None,
         state: ClusterState = ClusterState.READY) -> ClusterInfo:
    """A cluster with one H100 node of `free` free accelerators."""
    return cluster(name, region, pool(H100, nodes=1, free=free), price=price, state=state)


def weighted(replicas: int, **weights: int) -> JobSpec:
    return replace(spec("svc", kind=JobKind.INFERENCE, replicas=replicas, gpus=1),
                   region_weights=tuple(sorted(weights.items())))


def by_region(result: object, fleet: list[ClusterInfo]) -> dict[str, int]:
    region = {c.name: c.region for c in fleet}
    out: dict[str, int] = {}
    for c, n in placed(result).get("svc", {}).items():  # type: ignore[arg-type]
        out[region[c]] = out.get(region[c], 0) + n
    return out


# -- M8: static weights per region ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("units", "weights", "want"), [
    (8, (("east", 3), ("west", 1)), {"east": 6, "west": 2}),
    (4, (("east", 2), ("west", 1)), {"east": 3, "west": 1}),  # 2.67 / 1.33: the larger fraction takes the one left
    (4, (("a", 1), ("b", 1), ("c", 1)), {"a": 2, "b": 1, "c": 1}),  # equal fractions and weights: the name's order
    (5, (("a", 1), ("b", 3)), {"a": 1, "b": 4}),  # 1.25 / 3.75
    (3, (("a", 1), ("b", 2), ("c", 1)), {"a": 1, "b": 1, "c": 1}),  # .75 1.5 .75: b 1 by floor; a, c by fraction
], ids=["3:1-on-8", "2:1-on-4", "1:1:1-on-4", "1:3-on-5", "1:2:1-on-3"])
def test_the_split_is_floor_then_the_largest_fractions(units: int, weights: tuple[tuple[str, int], ...],
                                                       want: dict[str, int]) -> None:
    assert split(units, weights) == want
    assert sum(split(units, weights).values()) == units


@pytest.mark.parametrize(("replicas", "group", "want"), [
    (4, 1, {"east": 3, "west": 1}),
    (2, 1, {"east": 2, "west": 0}),  # .5 and .5: the fractions tie, the heavier weight takes the one left over
    (8, 2, {"east": 6, "west": 2}),  # 4 groups of 2: 3 and 1 groups
    (4, 2, {"east": 4, "west": 0}),  # 2 groups: 1.5 and .5, the fractions tie: both groups to east
], ids=["3:1-on-4", "3:1-on-2", "groups-of-2-on-8", "groups-of-2-on-4"])
def test_a_regions_share_in_replicas_is_the_split_of_whole_groups(replicas: int, group: int,
                                                                   want: dict[str, int]) -> None:
    """What a scale-down leaves each region (server/shrink.py): the split, in replicas."""
    assert shares(replicas, (("east", 3), ("west", 1)), group=group) == want


def test_weights_3_to_1_on_8_replicas_give_6_and_2() -> None:
    fleet = [room("east-1", "east", 8), room("west-1", "west", 8), room("central-1", "central", 8)]
    result = cycle(fleet, [weighted(8, east=3, west=1)])
    assert by_region(result, fleet) == {"east": 6, "west": 2}  # central is not weighted: it takes none


def test_a_regions_share_fills_its_clusters() -> None:
    fleet = [room("east-1", "east", 4), room("east-2", "east", 4), room("west-1", "west", 8)]
    result = cycle(fleet, [weighted(8, east=3, west=1)])
    assert by_region(result, fleet) == {"east": 6, "west": 2}
    assert sum(n for c, n in placed(result)["svc"].items() if c.startswith("east")) == 6


def test_a_weighted_region_without_room_makes_the_job_wait() -> None:
    fleet = [room("east-1", "east", 4), room("west-1", "west", 8)]  # east's share is 6: only 4 fit there
    result = cycle(fleet, [weighted(8, east=3, west=1)])
    assert placed(result) == {}  # never 4 + 4: the split is the ask
    reason = result.pending["svc"]
    assert reason.code is ReasonCode.INSUFFICIENT_ACCELERATORS
    assert "spec.regions.weights (east: 3, west: 1)" in reason.message
    assert "east's share is 6 replicas, 4 fit there now (on east-1)" in reason.message


def test_a_weighted_region_with_no_cluster_says_so() -> None:
    fleet = [room("east-1", "east", 8, state=ClusterState.LOST), room("west-1", "west", 8)]
    result = cycle(fleet, [weighted(8, east=3, west=1)])
    assert placed(result) == {}
    assert result.pending["svc"].code is ReasonCode.REGION_UNAVAILABLE
    assert "east's share is 6 replicas, 0 fit there now" in result.pending["svc"].message


def test_the_rest_of_a_weighted_job_makes_up_its_regions_share() -> None:
    s = weighted(8, east=3, west=1)  # ran 6 + 2; east-1 lost its 6: they go back to east, never to west
    fleet = [room("east-2", "east", 4), room("west-1", "west", 8)]
    request = PlacementRequest(JobId("svc"), s, 6, kept_regions=("west",), kept_replicas=(("west", 2),))
    result = Scheduler().schedule(Snapshot.of(fleet), [request], running=[running(s, "west-1", replicas=2)])
    assert placed(result) == {"svc": {"east-2": 4}}  # what fits of east's share now; the 2 left wait there
    short = result.decisions[0].short
    assert short is not None and "east's share is 6 replicas, 4 fit there now" in short.message


def test_a_scale_up_of_a_weighted_job_keeps_the_ratio() -> None:
    s = weighted(12, east=3, west=1)  # 8 -> 12: 6 + 2 run; the whole is 9 + 3, so 3 more east and 1 more west
    fleet = [room("east-2", "east", 8), room("west-2", "west", 8)]
    request = PlacementRequest(JobId("svc"), s, 4, kept_regions=("east", "west"),
                               kept_replicas=(("east", 6), ("west", 2)))
    result = Scheduler().schedule(Snapshot.of(fleet), [request])
    assert placed(result) == {"svc": {"east-2": 3, "west-2": 1}}


def test_a_single_replica_with_weights_goes_to_the_heaviest_region() -> None:
    fleet = [room("east-1", "east", 8), room("west-1", "west", 8)]
    result = cycle(fleet, [weighted(1, east=1, west=2)])
    assert placed(result) == {"svc": {"west-1": 1}}


# -- M11: the cheapest place -------------------------------------------------------------------------------------

def cheap(s: JobSpec) -> JobSpec:
    return replace(s, prefer=Preference.CHEAPEST)


def test_a_gang_that_prefers_cheapest_goes_to_the_cheapest_cluster_that_fits() -> None:
    fleet = [room("dear", "east", 8, price=4.0), room("mid", "east", 8, price=2.5), room("unpriced", "west", 8)]
    gang = spec("train", replicas=1, gpus=8)
    assert placed(cycle(fleet, [gang])) == {"train": {"unpriced": 1}}  # the policy's pick: price is one score
    assert placed(cycle(fleet, [cheap(gang)])) == {"train": {"mid": 1}}
    too_small = room("cheapest", "west", 2, price=1.0)  # cheaper, but 2 free: the gang does not fit there
    assert placed(cycle([*fleet, too_small], [cheap(gang)])) == {"train": {"mid": 1}}


def test_a_spread_job_that_prefers_cheapest_fills_the_cheapest_first() -> None:
    fleet = [room("dear", "east", 8, price=4.0), room("cheap", "west", 5, price=1.0), room("unpriced", "west", 8)]
    result = cycle(fleet, [cheap(spec("svc", kind=JobKind.INFERENCE, replicas=8, gpus=1))])
    assert placed(result) == {"svc": {"cheap": 5, "dear": 3}}  # unpriced comes after every priced cluster


def test_without_the_preference_the_policy_decides_as_before() -> None:
    fleet = [room("dear", "east", 8, price=4.0), room("cheap", "west", 5, price=1.0), room("unpriced", "west", 8)]
    result = cycle(fleet, [spec("svc", kind=JobKind.INFERENCE, replicas=8, gpus=1)])
    assert placed(result)["svc"] != {"cheap": 5, "dear": 3}


def test_cheapest_within_a_weighted_region() -> None:
    fleet = [room("east-dear", "east", 8, price=3.0), room("east-cheap", "east", 8, price=1.0),
             room("west-1", "west", 8)]
    result = cycle(fleet, [cheap(weighted(8, east=3, west=1))])
    assert placed(result) == {"svc": {"east-cheap": 6, "west-1": 2}}
