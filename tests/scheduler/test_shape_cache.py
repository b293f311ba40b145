"""The cycle's per-shape cache (`scheduler/board.py`) answers as a fresh evaluation would.

Filter and score results are cached per request shape and refreshed for clusters that changed;
a cluster a cycle-constant filter (vendor, model, sharing, state) rejects is not looked at again
for that shape, and one those filters passed skips them on re-evaluation. Pool values are shared
between shapes asking for the same resources: only when they accept the same pools.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from test_properties import scenarios

from federator.model import AcceleratorAlternative, AcceleratorPool, JobKind, ReasonCode
from federator.scheduler import Scheduler, SchedulerConfig, Snapshot, board, plugins
from federator.scheduler.framework import CycleContext
from federator.scheduler.snapshot import Txn, reserve

from builders import cluster, job, pool, request

H100 = "NVIDIA-H100-80GB-HBM3"
MI300X = "AMD-Instinct-MI300X"


def _amd(**kw: object) -> object:
    return replace(pool(MI300X, gpus_per_node=16, **kw), vendor="amd", resource_name="amd.com/gpu")  # type: ignore[arg-type]


def test_a_vendor_ask_is_not_scored_by_another_vendors_pool_cached_for_the_same_resources() -> None:
    # x: a tight H100 node and loose MI300X nodes, expensive; y: MI300X only, cheap.
    x = cluster("x", "r", pool(H100, nodes=1, free=8), _amd(nodes=2, free=16), price=4.0)
    y = cluster("y", "r", _amd(nodes=1, free=12, extra={16: 2}), price=0.4)
    any_vendor = replace(job("any", cpu=1), accelerators=(AcceleratorAlternative(8000),))  # any vendor: x scores
    # by its tight H100 pool
    amd_only = replace(job("amd", cpu=1), accelerators=(AcceleratorAlternative(8000, vendor="amd"),))
    result = Scheduler().schedule(Snapshot.of([x, y]), [request(any_vendor, at=0), request(amd_only, at=1)])
    placed = {d.job_id: d.assignments[0] for d in result.decisions}
    assert placed["any"].cluster == "y"  # y's cheap price wins over x's H100 fit
    # For the AMD job x holds only loose MI300X nodes (x's H100 fit must not count), y still is cheaper.
    assert (placed["amd"].cluster, placed["amd"].accelerator_vendor) == ("y", "amd")


def test_a_cluster_of_another_vendor_keeps_its_reason_after_its_capacity_changes() -> None:
    nv = cluster("nv", "r", pool(H100, nodes=4, free=8))
    hw = cluster("hw", "r", replace(pool("Ascend910B", nodes=1, free=8), vendor="huawei"))
    h100 = [request(job(f"h{i}", gpus=8, cpu=1, models=("H100",)), at=i) for i in range(3)]
    ascend = replace(job("asc", replicas=2, cpu=1), accelerators=(AcceleratorAlternative(8000, vendor="huawei"),))
    # the Ascend job looks first (nv rejected for good), then nv changes three times, then it looks again
    reqs = [request(ascend, at=0), *h100, request(replace(ascend, name="asc2"), at=9)]
    result = Scheduler().schedule(Snapshot.of([nv, hw]), reqs)
    assert {d.job_id for d in result.decisions} == {"h0", "h1", "h2"}
    for name in ("asc", "asc2"):
        reason = result.pending[name]  # type: ignore[index]
        assert reason.code is ReasonCode.GANG_DOES_NOT_FIT
        assert "nv has no" in reason.message and "hw fits 1 of 2" in reason.message


def test_a_cluster_that_passed_the_constant_filters_is_still_checked_for_capacity() -> None:
    c = cluster("c", "r", pool(H100, nodes=1, free=8))
    reqs = [request(job(f"j{i}", kind=JobKind.INFERENCE, gpus=4, cpu=1, models=("H100",)), at=i) for i in range(3)]
    result = Scheduler().schedule(Snapshot.of([c]), reqs)
    assert [d.job_id for d in result.decisions] == ["j0", "j1"]
    assert result.pending["j2"].code is ReasonCode.INSUFFICIENT_ACCELERATORS  # type: ignore[index]


@pytest.fixture(scope="module")
def monkeypatch_ctx() -> Iterator[pytest.MonkeyPatch]:
    """One MonkeyPatch for a hypothesis test (the function-scoped fixture would be shared across examples)."""
    with pytest.MonkeyPatch.context() as m:
        yield m


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_the_shortcuts_decide_as_evaluating_every_changed_cluster_in_full(
        scenario: tuple, monkeypatch_ctx: pytest.MonkeyPatch) -> None:  # type: ignore[type-arg]
    """Skipping clusters a cycle-constant filter rejected, skipping those filters once passed, summing the
    constant scores once, sharing evaluations between shapes that differ only in their preferences, and keeping
    the scores of unchanged pools change nothing: same placements, same pending reasons as full re-evaluation."""
    snap, reqs, cfg = scenario
    fast = Scheduler(cfg).schedule(snap, reqs)
    with monkeypatch_ctx.context() as m:
        m.setattr(board, "CYCLE_CONSTANT_FILTERS", frozenset())
        m.setattr(board, "CYCLE_CONSTANT_SCORES", frozenset())
        m.setattr(board, "POOL_FILTERS", frozenset())  # every pool re-checked and re-scored
        full = Scheduler(cfg).schedule(snap, reqs)
    assert fast.decisions == full.decisions
    assert dict(fast.pending) == dict(full.pending)
    assert fast.snapshot == full.snapshot


def test_a_job_that_avoids_a_cluster_is_not_placed_there_by_another_jobs_evaluation_of_its_shape() -> None:
    """Two jobs of one shape, the second refused by cheap cluster x a moment ago (gang timeout): it must go to y
    though the first job's evaluation of the shape found x best."""
    x = cluster("x", "r", pool(H100, nodes=4, free=8), price=0.4)
    y = cluster("y", "r", pool(H100, nodes=4, free=8), price=4.0)
    first = request(job("first", gpus=8, cpu=1), at=0)
    second = replace(request(job("second", gpus=8, cpu=1), at=1), avoid_clusters=("x",))
    result = Scheduler().schedule(Snapshot.of([x, y]), [first, second])
    placed = {d.job_id: d.assignments[0].cluster for d in result.decisions}
    assert placed == {"first": "x", "second": "y"}


def test_a_cluster_one_job_avoids_stays_open_to_the_next_job_of_its_shape() -> None:
    x = cluster("x", "r", pool(H100, nodes=4, free=8), price=0.4)
    y = cluster("y", "r", pool(H100, nodes=4, free=8), price=4.0)
    avoider = replace(request(job("avoider", gpus=8, cpu=1), at=0), avoid_clusters=("x",))
    other = request(job("other", gpus=8, cpu=1), at=1)
    result = Scheduler().schedule(Snapshot.of([x, y]), [avoider, other])
    placed = {d.job_id: d.assignments[0].cluster for d in result.decisions}
    assert placed == {"avoider": "y", "other": "x"}


def test_a_capability_ask_no_pool_meets_is_told_what_it_asked() -> None:
    x = cluster("x", "r", pool(H100, nodes=1, free=8))  # 80Gi H100s
    big = replace(job("big", cpu=1), accelerators=(AcceleratorAlternative(8000, min_memory_mib=192 * 1024),))
    amd = replace(job("amd", cpu=1), accelerators=(AcceleratorAlternative(8000, vendor="amd"),))
    result = Scheduler().schedule(Snapshot.of([x]), [request(big, at=0), request(amd, at=1)])
    assert "x has no accelerator nodes with at least 192Gi per device" in result.pending["big"].message  # type: ignore[index]
    assert "x has no amd accelerator nodes" in result.pending["amd"].message  # type: ignore[index]


@pytest.mark.interpreted
def test_jobs_that_differ_only_in_their_preferred_region_share_one_evaluation_of_each_changed_cluster(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A national backlog has a preferred region per job: each one must not make its shape evaluate every
    cluster anew. Three clusters, one per region; four jobs alike but for their preference."""
    clusters = [cluster(f"c{i}", f"r{i}", pool(H100, nodes=4, free=8)) for i in range(3)]
    reqs = [request(job(f"j{i}", gpus=8, cpu=1, regions=(f"r{i}",) if i < 3 else ()), at=i) for i in range(4)]
    checked: list[str] = []
    check, recheck, kept = board.Board.check, board.Board._recheck, board.Board._kept_check

    def counting(self: board.Board, req: object, c: object, **kw: object) -> object:
        checked.append(c.name)  # type: ignore[attr-defined]
        return check(self, req, c, **kw)  # type: ignore[arg-type]

    def recounting(self: board.Board, req: object, c: object, fit: object) -> object:
        checked.append(c.name)  # type: ignore[attr-defined]
        return recheck(self, req, c, fit)  # type: ignore[arg-type]

    def first_counting(self: board.Board, req: object, c: object, fit: object, verdicts: object) -> object:
        checked.append(c.name)  # type: ignore[attr-defined]
        return kept(self, req, c, fit, verdicts)  # type: ignore[arg-type]

    monkeypatch.setattr(board.Board, "check", counting)
    monkeypatch.setattr(board.Board, "_recheck", recounting)
    monkeypatch.setattr(board.Board, "_kept_check", first_counting)  # a first look that keeps the verdicts
    result = Scheduler().schedule(Snapshot.of(clusters), reqs)
    placed = {d.job_id: d.assignments[0].cluster for d in result.decisions}
    assert [placed[f"j{i}"] for i in range(3)] == ["c0", "c1", "c2"]  # each still goes where it would rather run
    # every cluster once for the first job, then only the cluster the job before took (not 3 per job: 12)
    assert checked == ["c0", "c1", "c2", "c0", "c1", "c2"]


@pytest.mark.interpreted
def test_a_placement_that_took_from_one_pool_rescores_only_that_pool_for_the_next_job(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A flexible job's shape accepts every pool of a cluster; the job before took from one. Re-evaluating
    the cluster scores that pool again and keeps the others' scores (their pool objects are unchanged)."""
    c = cluster("c", "r", pool(H100, nodes=4, free=8), pool("NVIDIA-A100-SXM4-80GB", nodes=4, free=8))
    rechecks: list[list[str]] = []  # the pools each re-evaluation scored
    score, recheck = plugins.Fragmentation.pool_score, board.Board._recheck

    def counting(self: object, req: object, cl: object, p: AcceleratorPool, ctx: object) -> int:
        if rechecks:
            rechecks[-1].append(p.accelerator_model.split("-")[1])
        return score(self, req, cl, p, ctx)  # type: ignore[arg-type]

    def recounting(self: board.Board, req: object, cl: object, fit: object) -> object:
        rechecks.append([])
        try:
            return recheck(self, req, cl, fit)  # type: ignore[arg-type]
        finally:
            rechecks.append([])  # what scores after it (the choice of the job's pool) is not counted

    monkeypatch.setattr(plugins.Fragmentation, "pool_score", counting)
    monkeypatch.setattr(board.Board, "_recheck", recounting)
    result = Scheduler().schedule(Snapshot.of([c]), [request(job(f"j{i}", gpus=8, cpu=1), at=i) for i in range(3)])
    took = [d.assignments[0].accelerator_model.split("-")[1] for d in result.decisions]
    assert len(took) == 3
    mine = [r for i, r in enumerate(rechecks) if i % 2 == 0]  # j1's and j2's re-evaluations of c
    assert mine[0] == ["H100", "A100"]  # the first re-evaluation scores every pool it accepts
    assert mine[1] == [took[1]]  # the next, only the pool j1 took from


def test_when_the_pool_scores_move_an_unchanged_pool_is_scored_again() -> None:
    """Scarcity's pressure moves with the cycle's reservations without any pool of a cluster changing: the
    pool scores kept for unchanged pools must not outlive it (`Board.rescored`)."""
    dial = {"A": 80, "B": 20}

    class Dial:
        name = "Dial"

        def score(self, request: object, cluster: object, ctx: object) -> int:
            return 0

        def pool_score(self, request: object, cluster: object, pool: AcceleratorPool, ctx: object) -> int:
            return dial[pool.accelerator_model]

    x, y = cluster("x", "r", pool("A", nodes=2, free=8)), cluster("y", "r", pool("B", nodes=2, free=8))
    b = board.Board([plugins.FILTERS[n]() for n in SchedulerConfig().filters], [], CycleContext(), [(Dial(), 1)])
    b.txn = Txn(Snapshot.of([x, y]), on_change=b.changed)
    req = request(job("j", gpus=1, cpu=1))
    key = board.shape_key(req)
    assert b.best(req, key) == "x"
    b.changed("x")
    b.changed("y")
    assert b.best(req, key) == "x"  # re-evaluated: each cluster's pool score kept
    dial.update(A=10, B=90)
    b.rescored(["x", "y"])
    assert b.best(req, key) == "y"


@pytest.mark.interpreted
def test_a_shape_whose_verdict_on_a_changed_cluster_stands_ranks_it_without_re_pushing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A job pinned to A re-evaluates cluster x after a placement took from x's B pool: its verdict (the A pool's
    score) did not change, so the shape's ranking is left as it was, not pushed again per change."""

    class Free:  # a pool score that moves with the pool: its free accelerators
        name = "Free"

        def score(self, request: object, cluster: object, ctx: object) -> int:
            return 0

        def pool_score(self, request: object, cluster: object, pool: AcceleratorPool, ctx: object) -> int:
            return pool.free_accelerators

    x = cluster("x", "r", pool("A", nodes=2, free=8), pool("B", nodes=2, free=8))
    b = board.Board([plugins.FILTERS[n]() for n in SchedulerConfig().filters], [], CycleContext(), [(Free(), 1)])
    txn = b.txn = Txn(Snapshot.of([x]), on_change=b.changed)
    pinned = request(job("j", gpus=1, cpu=1, models=("A",)))
    key = board.shape_key(pinned)
    pushed: list[str] = []
    monkeypatch.setattr(board, "heapq", SimpleNamespace(
        heappush=lambda h, e: (pushed.append(e[1]), heapq.heappush(h, e)), heappop=heapq.heappop,
        heapify=heapq.heapify))

    def take(model: str) -> None:
        txn.begin()
        txn.put(reserve(txn.get("x"), resources=job("o", gpus=1, cpu=1).resources, replicas=1,
                        accelerator_model=model))
        txn.commit()

    assert b.best(pinned, key) == "x"
    for _ in range(3):
        take("B")
        assert b.best(pinned, key) == "x"
    assert pushed == ["x"]
    take("A")  # its own pool changed, and with it the score
    assert b.best(pinned, key) == "x"
    assert pushed == ["x", "x"]
