"""Scarcity's scale chosen by rollout (scheduler/tuning.py): what it offers, what it keeps, how often it runs."""

from __future__ import annotations

import pytest
from scenarios import A100, H100, spec

from federator.model import MILLI, Resources
from federator.scheduler import Arrival, Scheduler, SchedulerConfig, Snapshot
from federator.scheduler.demand import Pressure, demand_of
from federator.scheduler.policy import PolicyError, parse_policy
from federator.scheduler.tuning import BUDGET, RETUNE_AFTER, Trial, Tuner, rollout_requests, sample_fleet, trials

from builders import cluster, pool, request

A10 = "NVIDIA-A10"


def test_the_absolute_scale_scores_a_model_by_its_need_not_by_the_median() -> None:
    """One pressed model scores half under the median scale whatever its pressure; the absolute scale
    scores it by how far its pressure is from `K`."""
    assert Pressure({"A": 8000.0, "B": 0.0}, {"A": 16000, "B": 64000}).score("A") == 50
    assert Pressure({"A": 8000.0, "B": 0.0}, {"A": 16000, "B": 64000}, fixed_high=2.0).score("A") == 75
    assert Pressure({"A": 8000.0, "B": 0.0}, {"A": 16000, "B": 64000}, fixed_high=0.25).score("A") == 0
    assert Pressure({"A": 0.0}, {"A": 16000}, fixed_high=2.0).score("A") == 100  # nothing pinned: full


def test_demand_sets_the_absolute_scale_from_what_the_sample_asks_of_the_free_fleet() -> None:
    fleet = [cluster("c", "r", pool(A100, nodes=2), pool(H100, nodes=2))]  # 32 free
    pinned = [request(spec(f"p{i}", gpus=8, models=(A100,))) for i in range(2)]  # 16 of the 32, pinned to A100
    live = demand_of(fleet, pinned, [], scarcity_scale=4.0).live
    assert live.high == pytest.approx(4.0 * 16 / 32)
    # A100's pressure is 16/16 = 1 of the high 2: half; the median scale would put it at 0.5 of 2 x 1
    assert live.score(A100) == 50 and demand_of(fleet, pinned, []).live.score(A100) == 50
    assert demand_of(fleet, pinned, [], scarcity_scale=8.0).live.score(A100) == 75


def test_a_rollout_offers_the_sample_again_until_it_asks_for_the_free_room() -> None:
    reqs = [request(spec("one", gpus=1)), request(spec("pinned", gpus=2, models=(A100,)))]
    recent = [Arrival(Resources(cpu_milli=1000, memory_bytes=1 << 30), (), 1)]  # CPU only: offered, asks no accelerator
    got = rollout_requests(reqs, [], recent, free_milli=20 * MILLI)
    asked = sum(r.replicas * r.spec.resources.accelerator_milli for r in got)
    assert 20 * MILLI <= asked < 22 * MILLI
    assert {r.spec.name for r in got} == {"one", "pinned", "rollout"}
    assert len({r.job_id for r in got}) == len(got)
    assert next(r for r in got if r.spec.name == "pinned").spec.accelerator_models == (A100,)
    assert rollout_requests(reqs, [], [], free_milli=10_000 * MILLI, limit=50)[-1].replicas
    assert sum(r.replicas for r in rollout_requests(reqs, [], [], free_milli=10_000 * MILLI, limit=50)) == 50
    assert rollout_requests([], [], recent, free_milli=20 * MILLI) == []  # no accelerator work: nothing to learn
    assert rollout_requests(reqs, [], recent, free_milli=0) == []  # no room (no member yet): nothing to fill


def test_a_national_backlog_is_offered_a_sample_of_its_requests() -> None:
    backlog = [request(spec(f"j{i}", gpus=1 + i % 3)) for i in range(10_000)]
    got = rollout_requests(backlog, [], [], free_milli=10**9, limit=1_000)
    assert len(got) == 1_000
    by_shape = {n: sum(r.spec.resources.accelerator_milli == n * MILLI for r in got) for n in (1, 2, 3)}
    assert all(320 <= k <= 350 for k in by_shape.values()), by_shape  # every shape, a third each
    assert {r.spec.name for r in got} == {f"j{i}" for i in range(0, 10_000, 10)}  # every tenth: no copy of all


def test_a_large_fleet_is_rolled_out_on_a_sample_of_its_clusters() -> None:
    fleet = Snapshot.of([cluster(f"c{i:02}", "r", pool(H100, nodes=10)) for i in range(10)])  # 80 each
    assert [c.name for c in sample_fleet(fleet, room=250 * MILLI).clusters] == ["c00", "c04", "c08"]
    assert len(sample_fleet(fleet, room=800 * MILLI).clusters) == 10


def test_the_tuner_keeps_the_scale_that_placed_most_and_a_tie_keeps_the_one_in_use() -> None:
    tuner = Tuner(SchedulerConfig(scarcity_scales=(0.0, 4.0)))
    assert tuner.scale == 0.0 and tuner.due()
    assert tuner.take((Trial(0.0, 900, 10), Trial(4.0, 950, 10))) == 4.0
    assert tuner.take((Trial(0.0, 950, 10), Trial(4.0, 950, 10))) == 4.0  # a tie does not flap back
    assert tuner.take((Trial(0.0, 951, 10), Trial(4.0, 950, 10))) == 0.0
    assert tuner.rollouts == 3
    assert tuner.take(()) == 0.0 and tuner.rollouts == 3  # no demand: nothing learned


def test_rollouts_are_paced_by_what_they_cost() -> None:
    tuner = Tuner(SchedulerConfig(scarcity_scales=(0.0, 4.0)))
    tuner.take((Trial(0.0, 1, 3_000), Trial(4.0, 1, 3_000)))
    assert not tuner.due()
    tuner.placed(BUDGET * 6_000 - 1)
    assert not tuner.due()
    tuner.placed(1)
    assert tuner.due()
    tuner.take((Trial(0.0, 1, 10), Trial(4.0, 1, 10)))  # a cheap rollout still waits for a new sample
    tuner.placed(RETUNE_AFTER - 1)
    assert not tuner.due()
    assert not Tuner(SchedulerConfig(scarcity_scales=(0.0,))).due()  # one scale: nothing to choose


def _fleet_and_work(a10_nodes: int, big_nodes: int, pinned: int, small: int, gangs: int) -> tuple[Snapshot, list]:  # type: ignore[type-arg]
    """Two clusters of one-accelerator A10 nodes and 8-accelerator A100 and H100 nodes; work pinned to A10
    of one accelerator, flexible work of one, and flexible gangs of eight."""
    fleet = Snapshot.of([cluster(f"c{i}", "r", pool(A10, nodes=a10_nodes, free=1, gpus_per_node=1),
                                 pool(A100, nodes=big_nodes), pool(H100, nodes=big_nodes)) for i in range(2)])
    work = [spec(f"pin{i}", gpus=1, models=(A10,)) for i in range(pinned)]
    work += [spec(f"small{i}", gpus=1) for i in range(small)]
    work += [spec(f"gang{i}", gpus=8) for i in range(gangs)]
    return fleet, [request(s, at=i) for i, s in enumerate(work)]


@pytest.mark.parametrize(("shape", "best", "other"), [
    # few pinned, much flexible small work: the median scale presses it off A10 onto the big nodes the gangs need
    ((16, 1, 4, 20, 2), 4.0, 0.0),
    # A10 swamped by pinned work: only the median scale keeps the flexible work off it
    ((8, 2, 8, 5, 6), 0.0, 4.0),
], ids=["soft-scale-packs-better", "median-packs-better"])
def test_the_scale_a_rollout_keeps_is_the_one_that_packs_that_work_best(
        shape: tuple[int, int, int, int, int], best: float, other: float) -> None:
    """The trials are what the cycle places under each scale, they differ by fleet and work, and the tuner
    keeps the better: the plumbing from the policy's scales to `Scarcity` is what moves the result."""
    fleet, reqs = _fleet_and_work(*shape)
    config = SchedulerConfig(scarcity_scales=(0.0, 4.0))
    got = {t.scale: t.placed_milli for t in trials(config, fleet, reqs)}
    assert got[best] > got[other]
    free = sum(p.free_milli for c in fleet.clusters for p in c.capacity.accelerator_pools)
    offered = rollout_requests(reqs, [], [], free)
    for scale, placed in got.items():
        result = Scheduler(config).schedule(fleet, offered, scarcity_scale=scale)
        assert placed == sum(a.accelerator_milli * a.replicas for d in result.decisions for a in d.assignments)
    assert Tuner(config).tune(fleet, reqs) == best
    assert trials(SchedulerConfig(scarcity_scales=(4.0,)), fleet, reqs) == ()


@pytest.mark.parametrize(("text", "scales"), [
    ("", (0.0, 4.0)), ("scarcityScale: auto", (0.0, 4.0)), ("scarcityScale: median", (0.0,)),
    ("scarcityScale: 2", (2.0,)), ("scarcityScale: 0.5", (0.5,)),
])
def test_the_policy_names_the_scale(text: str, scales: tuple[float, ...]) -> None:
    assert parse_policy(text).scarcity_scales == scales


@pytest.mark.parametrize("value", ["0", "-1", "soft", "true", "[1, 2]", ".inf", ".nan", "null"])
def test_a_bad_scale_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(PolicyError, match=r"scarcityScale: must be 'auto', 'median' or a positive number"):
        parse_policy(f"scarcityScale: {value}")
