"""RegionLoad reads the region's accelerator use as the cycle places (scheduler/regionload.py)."""

from __future__ import annotations

from scenarios import H100, cycle, placed, spec

from federator.model import MILLI
from federator.scheduler import SchedulerConfig
from federator.scheduler.regionload import RegionUse

from builders import cluster, pool

ONLY_REGION_LOAD = SchedulerConfig(score_weights={"RegionLoad": 1})


def test_region_use_names_the_regions_clusters_only_when_the_score_moves_a_point() -> None:
    # region r: 100 accelerators (a: 8 nodes x 8 + b: 36 one-accelerator nodes), nothing used
    a = cluster("a", "r", pool(H100, nodes=8))
    b = cluster("b", "r", pool(H100, nodes=36, free=1, gpus_per_node=1))
    use = RegionUse((a, b, cluster("c", "s", pool(H100, nodes=1))), 100)
    assert use.score("r") == 100 and use.score("s") == 100
    assert use.take("r", 400) == ()  # 0.4 of an accelerator: still 100 when rounded
    assert use.take("r", 200) == ("a", "b")  # 0.6 of 100 rounds to 99
    assert use.score("r") == 99 and use.score("s") == 100
    assert use.take("r", 50 * MILLI) == ("a", "b")
    assert use.score("r") == 49
    assert use.take("r", 0) == () and use.take("elsewhere", MILLI) == ()
    assert use.score("elsewhere") == 100  # a region with no ready cluster is not held against anyone


def test_a_burst_in_one_cycle_fills_the_emptier_region_only_until_it_is_as_used_as_the_other() -> None:
    """Region ra has 8 of its 88 accelerators used (RegionLoad 91), rb none (100). 40 one-accelerator jobs
    in one cycle: read once at the cycle's start, rb stayed the emptier all cycle and took all 40 (45%
    used against 9%). Counted as the cycle places, rb takes jobs until it is as used as ra, then they
    share: both end near 27%."""
    ra = cluster("a", "ra", pool(H100, nodes=10, extra={0: 1}))
    rb = cluster("b", "rb", pool(H100, nodes=11))
    result = cycle([ra, rb], [spec(f"j{i}", gpus=1) for i in range(40)], config=ONLY_REGION_LOAD)
    assert len(result.decisions) == 40
    on: dict[str, int] = {}
    for where in placed(result).values():
        for name, n in where.items():
            on[name] = on.get(name, 0) + n
    assert on.get("a", 0) >= 12 and on.get("b", 0) >= 20, on
    used = {c.name: 1 - sum(p.free_milli for p in c.capacity.accelerator_pools) / (88 * MILLI)
            for c in result.snapshot.clusters}
    assert abs(used["a"] - used["b"]) <= 0.03, used


def test_a_placement_on_one_cluster_lowers_the_score_of_the_other_clusters_of_its_region() -> None:
    """a and b share region r, c is alone in s; all alike and empty. The first job takes one of them;
    if it was in r, b's score fell with a's though b did not change, and the second job goes to s."""
    clusters = [cluster(n, r, pool(H100, nodes=2)) for n, r in (("a", "r"), ("b", "r"), ("c", "s"))]
    result = cycle(clusters, [spec("first", gpus=1), spec("second", gpus=1)], config=ONLY_REGION_LOAD)
    where = {job: next(iter(on)) for job, on in placed(result).items()}
    region = {"a": "r", "b": "r", "c": "s"}
    assert region[where["first"]] != region[where["second"]], where
