"""Placement quality: pinned work keeps its model, fractions share GPUs, fits mean fits on a node."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scenarios import A100, H100, cycle, placed, running, spec

from federator.model import AcceleratorPool, JobKind, Resources
from federator.model.pool_room import whole_bucket
from federator.scheduler import Arrival, SchedulerConfig, fragmentation
from federator.scheduler.demand import Pressure, demand_of
from federator.scheduler.fragmentation import expected_fragment

from builders import cluster, pool, request

WITHOUT_SCARCITY = SchedulerConfig(score_weights={"LeastFragmentation": 2})
WITH_FRAGMENTATION = SchedulerConfig(score_weights={"Fragmentation": 3, "Scarcity": 3})
BEST_FIT = SchedulerConfig(score_weights={"LeastFragmentation": 2, "Scarcity": 3})


def two_models() -> list:  # type: ignore[type-arg]
    """One cluster of 2 x 8 A100 and 2 x 8 H100 (A100 sorts first: the old tie-break's pick)."""
    return [cluster("c", "r", pool(A100, nodes=2), pool(H100, nodes=2))]


@pytest.mark.parametrize(("config", "pinned_placed"), [
    (None, 2), (WITH_FRAGMENTATION, 2), (WITHOUT_SCARCITY, 1),
], ids=["default", "fragmentation", "without-scarcity"])
def test_pinned_jobs_find_their_model_after_a_burst_of_flexible_ones(config: SchedulerConfig | None,
                                                                      pinned_placed: int) -> None:
    flexible = [spec(f"flex{i}", gpus=8) for i in range(2)]  # any model, offered first
    pinned = [spec(f"pin{i}", gpus=8, models=("A100",)) for i in range(2)]
    result = cycle(two_models(), flexible + pinned, config=config)
    got = placed(result)
    assert all(f"flex{i}" in got for i in range(2))
    assert sum(f"pin{i}" in got for i in range(2)) == pinned_placed


def test_recent_pinned_arrivals_steer_flexible_jobs_in_a_later_cycle() -> None:
    """The pinned jobs of earlier cycles (running) say which model pinned work wants next."""
    earlier = [spec(f"old{i}", gpus=1, models=("A100",)) for i in range(4)]
    busy = [cluster("c", "r", pool(A100, nodes=2, extra={4: 1}), pool(H100, nodes=3))]
    allocations = [running(s, "c", model=A100) for s in earlier]
    result = cycle(busy, [spec("flex", gpus=8)], allocations=allocations)
    assert [a.accelerator_model for d in result.decisions for a in d.assignments] == [H100]


def test_pinned_work_that_has_ended_still_steers_flexible_jobs() -> None:
    """A federator that sees one flexible job pending and nothing running steers by what it remembers: the
    A100-pinned jobs that arrived and ended lately (`recent`) keep the A100s for the next such job. With
    no memory the job takes the A100s, the pool that sorts first."""
    ended = [spec(f"old{i}", gpus=8, models=("A100",)) for i in range(4)]
    memory = [Arrival(s.resources, s.accelerator_models, s.replicas) for s in ended]
    models = [[a.accelerator_model for d in r.decisions for a in d.assignments]
              for r in (cycle(two_models(), [spec("flex", gpus=8)], recent=memory),
                        cycle(two_models(), [spec("flex", gpus=8)]))]
    assert models == [[H100], [A100]]


@pytest.mark.parametrize("config", [None, WITH_FRAGMENTATION], ids=["default", "fragmentation"])
def test_a_fractional_replica_packs_onto_an_already_shared_gpu(config: SchedulerConfig | None) -> None:
    """Opening a fresh GPU for half of it strands the other half for whole-GPU work (recent demand)."""
    shared = AcceleratorPool(A100, (0, 4, 0, 0, 0, 0, 0, 0, 0), 8, 8, shared_devices=((500, 1),))
    clusters = [cluster("fresh", "r", pool(A100, nodes=4, free=1, gpus_per_node=1)), cluster("shared", "r", shared)]
    recent = [running(spec(f"w{i}", gpus=1), "fresh", model=A100) for i in range(2)]
    result = cycle(clusters, [spec("half", gpus=0.5, kind=JobKind.INFERENCE)], config=config, allocations=recent)
    assert placed(result) == {"half": {"shared": 1}}


def test_host_room_keeps_a_replica_off_nodes_without_cpu() -> None:
    """GPUs free on nodes whose CPU is taken do not fit a replica that needs CPU: fits = fits on a node."""
    starved = AcceleratorPool(A100, (0, 0, 0, 0, 0, 0, 0, 0, 4), 32, 32, host_room=((0, 0),) * 8 + ((2000, 2**40),))
    roomy = pool(A100, nodes=1)
    result = cycle([cluster("starved", "r", starved), cluster("roomy", "r", roomy)], [spec("j", gpus=1, cpu=8)])
    assert placed(result) == {"j": {"roomy": 1}}
    assert starved.replica_capacity(1000, 8000, 0) == 0 and starved.replica_capacity(1000, 1000, 0) == 8


def test_demand_presses_the_model_pinned_work_wants() -> None:
    clusters = two_models()
    pinned = [request(spec("p", gpus=8, models=("A100",)))]
    demand = demand_of(clusters, pinned, [])
    assert demand.live.of(A100) > 0 and demand.live.of(H100) == 0
    assert demand.cannot[H100] == 1.0 and demand.cannot[A100] == 0.0


@pytest.mark.parametrize(("hist", "shared", "shape", "unusable"), [
    ((0, 2, 0, 0, 0, 0, 0, 0, 0), (), (1000, 2, 0, 0, 1.0), 2000),  # two 1-free nodes: no 2-GPU replica fits
    ((0, 0, 1, 0, 0, 0, 0, 0, 0), (), (1000, 2, 0, 0, 1.0), 0),
    ((0, 0, 0, 0, 0, 0, 0, 0, 0), ((300, 2),), (500, 1, 0, 0, 1.0), 600),  # shared GPUs too small for 500m
    ((0, 0, 0, 0, 0, 0, 0, 0, 0), ((600, 1), (300, 1)), (500, 1, 0, 0, 1.0), 300),
], ids=["gang-on-singles", "gang-fits", "fraction-too-big", "fraction-fits-one"])
def test_expected_fragment_counts_what_a_shape_cannot_use(hist: tuple[int, ...], shared: tuple[tuple[int, int], ...],
                                                          shape: tuple[int, int, int, int, float],
                                                          unusable: int) -> None:
    assert expected_fragment(hist, shared, (), (shape,), 0.0) == unusable


@settings(max_examples=300, deadline=None)
@given(hist=st.lists(st.integers(0, 4), min_size=1, max_size=9),
       room=st.lists(st.tuples(st.integers(0, 64_000), st.integers(0, 512)), max_size=9),
       gpus=st.lists(st.integers(1, 9), min_size=1, max_size=4),
       cpu=st.integers(0, 64_000), mem=st.integers(0, 512), shared=st.integers(0, 3))
def test_the_whole_accelerator_fragment_is_what_a_shape_cannot_use_node_by_node(
        hist: list[int], room: list[tuple[int, int]], gpus: list[int], cpu: int, mem: int, shared: int) -> None:
    """For g-accelerator work the unusable whole accelerators are those of nodes with fewer than g free or whose
    best node has no room for it (summed by prefix, not bucket by bucket), plus every shared one's free part."""
    shapes = tuple((1000, g, cpu, mem, 1.0) for g in gpus)
    shared_devices = ((400, shared),) if shared else ()
    expected = 0
    for g in gpus:
        expected += 400 * shared + sum(
            i * n * 1000 for i, n in enumerate(hist)
            if n and (i < g or (i < len(room) and (room[i][0] < cpu or room[i][1] < mem))))
    assert expected_fragment(tuple(hist), shared_devices, tuple(room), shapes, 0.0) == expected


@pytest.mark.interpreted
def test_the_fragmentation_memo_gives_the_uncached_value_and_computes_each_state_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-cycle memo (GrowthCache) is what makes the score cheap enough for the default policy:
    a pool scored for several request shapes computes its expected fragment before the bind once,
    a pool object scored again is a lookup, and every value equals the uncached one."""
    from federator.scheduler import fragmentation

    shapes = ((500, 1, 0, 0, 0.4), (1000, 1, 0, 0, 0.3), (1000, 2, 0, 0, 0.3))
    pools = [AcceleratorPool(A100, (0, 1, 2, 0, 0, 0, 0, 0, 3), 32, 32, shared_devices=((300, 2), (600, 1))),
             AcceleratorPool(A100, (0, 4, 0, 0, 0, 0, 0, 0, 0), 8, 8)]
    asks = [(500, 1), (1000, 1), (2000, 1), (1000, 3), (16000, 1)]
    uncached = {(i, a): fragmentation.fragment_growth(p, *a, shapes, 0.1) for i, p in enumerate(pools) for a in asks}
    calls = []
    real = fragmentation.expected_fragment
    monkeypatch.setattr(fragmentation, "expected_fragment", lambda *args: calls.append(args) or real(*args))
    cache = fragmentation.GrowthCache()
    for _ in range(3):
        for i, p in enumerate(pools):
            for a in asks:
                assert fragmentation.fragment_growth(p, *a, shapes, 0.1, cache) == uncached[(i, a)]
        twin = AcceleratorPool(A100, pools[0].nodes_by_free, 32, 32, shared_devices=pools[0].shared_devices)
        assert fragmentation.fragment_growth(twin, 500, 1, shapes, 0.1, cache) == uncached[(0, (500, 1))]
    # one "before" per pool state, and one "after" per fitting ask, or for one fraction one per bucket that
    # holds it (FGD's choice: a shared device with 500 free or more, a node of each whole-free count)
    afters = sum(1 if m >= 1000 else sum(1 for f, n in p.shared_devices if f >= m and n)
                 + sum(1 for n in p.nodes_by_free[1:] if n)
                 for p in pools for m, r in asks if p.replica_capacity(m) >= r)
    assert afters == 5 + 4 + 1
    assert len(calls) == len(pools) + afters
    for p in pools:  # no host room reported: the replica's CPU changes nothing and shares the entry
        fragmentation.fragment_growth(p, 500, 1, shapes, 0.1, cache, 4000, 2**30)
    assert len(calls) == len(pools) + afters
    assert uncached[(1, (16000, 1))] == float("inf")



def test_a_fraction_is_scored_where_fgd_binds_it_not_where_best_fit_would() -> None:
    """FGD at node level weighs every place a fraction may go. With only half-GPU work in demand, a 500m
    replica on the shared GPU with 600 free (best fit) strands the 100 left; on a free GPU it leaves a
    500 that the next half takes, so the pool's growth is FGD's choice's: none."""
    from federator.scheduler import fragmentation

    shapes = ((500, 1, 0, 0, 1.0),)
    p = AcceleratorPool(A100, (0, 1), 2, 2, shared_devices=((600, 1),))
    before = expected_fragment(p.nodes_by_free, p.shared_devices, (), shapes, 0.0)
    best_fit = p.after_take(500, 1)  # what the score said before: the 100 left over is stranded
    assert (expected_fragment(best_fit[0], best_fit[1], (), shapes, 0.0) - before) / 500 == pytest.approx(0.2)
    assert fragmentation.fragment_growth(p, 500, 1, shapes, 0.0) == 0.0
    # with 700m work in demand too, a half on the free GPU would strand what the 700s need, and the 600 is
    # no use to them anyway: FGD's choice is best fit's, whose growth (fragment taken up) is the score
    shapes = ((500, 1, 0, 0, 0.5), (700, 1, 0, 0, 0.5))
    after = p.after_take(500, 1)
    before = expected_fragment(p.nodes_by_free, p.shared_devices, (), shapes, 0.0)
    fit = (expected_fragment(after[0], after[1], (), shapes, 0.0) - before) / 500
    assert fit == pytest.approx(-0.4)
    assert fragmentation.fragment_growth(p, 500, 1, shapes, 0.0) == pytest.approx(fit)


def test_a_pool_scored_as_fgd_binds_fractions_wins_the_fraction_best_fit_would_send_elsewhere() -> None:
    """Two clusters, alike but for their free GPUs: in one, a half would strand 100 on best fit's GPU (600
    free) though a free GPU there strands nothing; in the other only a GPU shared with 550 free is left,
    where a half strands 50. Scored at best fit's bucket, the first looked worse and the half went to
    the second, stranding 50 where it could have stranded nothing."""
    sliver = cluster("a-sliver", "r", AcceleratorPool(A100, (0, 1), 2, 2, shared_devices=((600, 1),)))
    other = cluster("b-other", "r", AcceleratorPool(A100, (1, 0), 2, 2, shared_devices=((550, 1),)))
    half = spec("half", gpus=0.5, kind=JobKind.INFERENCE)
    assert placed(cycle([other, sliver], [half], config=WITH_FRAGMENTATION)) == {"half": {"a-sliver": 1}}


@pytest.mark.parametrize(("config", "placed_jobs"), [(WITH_FRAGMENTATION, 3), (None, 3), (BEST_FIT, 2)],
                         ids=["fragmentation", "default", "best-fit"])
def test_a_small_job_leaves_the_free_accelerators_the_waiting_gangs_need(config: SchedulerConfig | None,
                                                                         placed_jobs: int) -> None:
    """FGD over the cycle's demand: a 1-accelerator job behind which two 2-accelerator jobs wait goes
    where it leaves two free (the node with 3), not to the tightest fit (the node with 2), which
    would leave 1 + 3 and room for only one of them. Best fit (LeastFragmentation, the default
    before Fragmentation) places two of the three."""
    tight = cluster("a-tight", "r", AcceleratorPool(A100, (0, 0, 1, 0, 0), 4, 4))
    loose = cluster("b-loose", "r", AcceleratorPool(A100, (0, 0, 0, 1, 0), 4, 4))
    jobs = [spec("one", gpus=1), spec("two-a", gpus=2), spec("two-b", gpus=2)]
    result = cycle([tight, loose], jobs, config=config)
    assert len(placed(result)) == placed_jobs
    if config is not BEST_FIT:
        assert placed(result)["one"] == {"b-loose": 1}


def test_fragmentation_leaves_the_model_choice_to_scarcity() -> None:
    """The paper's measure also counts a model's whole capacity as fragment for the requests that
    cannot use it, so it pulls flexible work onto a rare model (most pinned work wants the common
    one) and the rare model's own pinned job then finds it taken. Measured over the work that can
    use the pool, Fragmentation only packs, and Scarcity keeps the rare model for its pinned job."""
    clusters = [cluster("c", "r", pool(H100, nodes=1), pool(A100, nodes=7))]
    jobs = ([spec("flex", gpus=8)] + [spec(f"a{i}", gpus=8, models=("A100",)) for i in range(6)]
            + [spec("rare", gpus=8, models=("H100",))])
    result = cycle(clusters, jobs, config=WITH_FRAGMENTATION)
    assert len(placed(result)) == len(jobs)
    assert [a.accelerator_model for d in result.decisions if d.job_id == "flex" for a in d.assignments] == [A100]


def test_fragmentation_keeps_a_cpu_hungry_fraction_off_a_node_it_would_strand() -> None:
    """A fraction that takes all the CPU of a 1-GPU node strands the rest of that GPU for every other
    fraction: Fragmentation (CPU-aware for fractional shapes) sends it to the node with room to
    spare, where plain FGD arithmetic saw the two as equal (the half left over fits a half)."""
    small = AcceleratorPool(A100, (0, 1), 1, 1, host_room=((0, 0), (16_000, 2**40)))
    big = AcceleratorPool(A100, (0,) * 8 + (1,), 8, 8, host_room=((0, 0),) * 8 + ((128_000, 2**40),))
    clusters = [cluster("a-small", "r", small), cluster("b-big", "r", big)]
    recent = [running(spec(f"w{i}", gpus=0.5, cpu=4, kind=JobKind.INFERENCE), "b-big", model=A100) for i in range(3)]
    hungry = spec("hungry", gpus=0.5, cpu=16, kind=JobKind.INFERENCE)
    result = cycle(clusters, [hungry], config=WITH_FRAGMENTATION, allocations=recent)
    assert placed(result) == {"hungry": {"b-big": 1}}


def test_a_burst_of_flexible_jobs_in_one_cycle_does_not_drain_the_least_pressed_model() -> None:
    """Pinned work holds 8 accelerators of each model, so it will want both again. 64 flexible
    1-accelerator jobs arrive in one cycle, with 16 A100 and 64 H100 free: scored against the
    pressures of the cycle's start they would all take H100 (the less pressed) and leave none of it;
    kept current through the cycle (demand.Pressure), the pressures meet and both models keep room."""
    c = cluster("c", "r", pool(A100, nodes=2), pool(H100, nodes=8))
    pinned = [dataclasses.replace(running(spec("pa", gpus=8, models=("A100",)), "c", model=A100),
                                  accelerator_models=("A100",)),
              dataclasses.replace(running(spec("ph", gpus=8, models=("H100",)), "c", model=H100),
                                  accelerator_models=("H100",))]
    result = cycle([c], [spec(f"f{i}", gpus=1) for i in range(64)], allocations=pinned)
    assert len(result.decisions) == 64
    after = result.snapshot.clusters[0].capacity
    free = {p.accelerator_model: p.free_milli // 1000 for p in after.accelerator_pools}
    assert free[H100] >= 4 and free[A100] >= 4, free
    assert free[H100] + free[A100] == 16


def test_pressure_publishes_new_scores_only_after_a_step() -> None:
    live = Pressure({"A": 8000.0, "B": 8000.0}, {"A": 16000, "B": 64000})
    assert live.score("B") > live.score("A") == 50  # A is the median (of two): half
    before = live.score("B")
    assert not live.take("B", 1000)  # one accelerator moves B's score by less than a step
    assert live.score("B") == before
    moved = [live.take("B", 1000) for _ in range(40)]
    assert any(moved) and live.score("B") < before
    assert not Pressure({"A": 0.0}, {"A": 1000}).take("A", 1000)  # nothing pinned: nothing to re-score


@settings(max_examples=200, deadline=None)
@given(pinned=st.lists(st.sampled_from((0.0, 1000.0, 8000.0, 40000.0)), min_size=4, max_size=4),
       free=st.lists(st.integers(0, 64), min_size=4, max_size=4),
       takes=st.lists(st.tuples(st.integers(0, 3), st.sampled_from((500, 1000, 4000, 8000))), max_size=60))
def test_pressure_keeps_the_median_as_a_full_recount_would(pinned: list[float], free: list[int],
                                                           takes: list[tuple[int, int]]) -> None:
    """`Pressure.take` keeps the pressed models sorted and re-scores only the model it took from while the
    median stands: it must publish when, and what, recounting every model after each take publishes."""
    models = "ABCD"
    live = Pressure(dict(zip(models, pinned, strict=True)), {m: f * 1000 for m, f in zip(models, free, strict=True)})
    ref_free = {m: f * 1000 for m, f in zip(models, free, strict=True)}

    def recount() -> dict[str, int]:
        pressures = {m: (p / ref_free[m] if ref_free[m] > 0 else (float("inf") if p else 0.0))
                     for m, p in zip(models, pinned, strict=True)}
        pressed = sorted(p for p in pressures.values() if 0 < p < float("inf"))
        high = 2 * pressed[len(pressed) // 2] if pressed else 0.0
        return {m: 100 if high <= 0 else 0 if p >= high else round(100 * (1.0 - p / high))
                for m, p in pressures.items()}

    published = recount()
    for i, milli in takes:
        m = models[i]
        if ref_free[m] < milli:
            continue
        ref_free[m] -= milli
        now = recount()
        moved = any(pinned) and any(abs(now[k] - published[k]) >= 5 for k in models)
        if moved:
            published = now
        assert live.take(m, milli) == moved
        assert {k: live.score(k) for k in models} == published


def test_one_pressed_model_among_many_unpressed_still_scores_below_them() -> None:
    """The scale is the median of the *pressed* models: with pinned work on one model of three, the
    median of all three pressures would be 0 and every model would score full."""
    live = Pressure({"A": 8000.0, "B": 0.0, "C": 0.0}, {"A": 16000, "B": 64000, "C": 64000})
    assert live.score("A") < live.score("B") == live.score("C") == 100


def test_a_flexible_multi_accelerator_job_leaves_the_few_big_nodes_pinned_gangs_need() -> None:
    """Model A is mostly one-accelerator nodes and one 8-accelerator node that a pinned 8-accelerator job
    needs; B's pinned work is single accelerators. Over all accelerators A looks less pressed than B
    (8 of 24 wanted against 8 of 16), but for 8-accelerator work A's supply is that one node: the
    flexible 8-accelerator job must take a B node, so every pinned job still finds its model."""
    a = AcceleratorPool(A100, (0, 16, 0, 0, 0, 0, 0, 0, 1), 24, 24)
    b = pool(H100, nodes=2)
    flexible = [spec("flex", gpus=8)]
    pinned = [spec("pinA", gpus=8, models=("A100",))] + [spec(f"pinB{i}", gpus=1, models=("H100",)) for i in range(8)]
    result = cycle([cluster("c", "r", a, b)], flexible + pinned)
    assert [a.accelerator_model for d in result.decisions if d.job_id == "flex" for a in d.assignments] == [H100]
    assert set(placed(result)) == {"flex", "pinA", *(f"pinB{i}" for i in range(8))}
    demand = demand_of([cluster("c", "r", a, b)], [request(s) for s in pinned], [])
    assert demand.live.score(A100) > demand.live.score(H100)  # over all accelerators, A looks roomier
    assert demand.live.score(A100, multi=True) < demand.live.score(H100, multi=True)


def test_a_small_reservation_on_a_model_of_big_nodes_comes_out_of_its_multi_accelerator_supply() -> None:
    """Single accelerators taken from a model whose nodes all have several free use up what its
    multi-accelerator work could have had; where the model has one-accelerator nodes, they go first."""
    def pressure(free_small: int) -> Pressure:
        free = {"A": 16000 + free_small, "B": 16000}
        return Pressure({"A": 8000.0, "B": 8000.0}, dict(free), Pressure({"A": 8000.0, "B": 8000.0},
                                                                          {"A": 16000, "B": 16000}))

    big = pressure(0)
    assert big.score("A", multi=True) == big.score("B", multi=True)
    big.take("A", 8000)  # eight single accelerators, from A's big nodes
    assert big.multi is not None and big.multi.free["A"] == 8000
    assert big.score("A", multi=True) < big.score("B", multi=True)

    mixed = pressure(8000)  # A also has eight one-accelerator nodes free: the same take fits there
    mixed.take("A", 8000)
    assert mixed.multi is not None and mixed.multi.free["A"] == 16000
    assert mixed.score("A", multi=True) == mixed.score("B", multi=True)


def test_a_small_difference_in_what_a_fraction_strands_still_chooses_the_cluster() -> None:
    """`Fragmentation` is not rounded to whole points: of two shared GPUs, a half-GPU job takes the one it
    leaves 50m of, not 100m, even when almost all the demand is whole GPUs and the two differ by a fraction
    of a point. Rounded, the two clusters tied, and the tie went to the name that sorts first."""
    def shared(free: int) -> AcceleratorPool:
        return AcceleratorPool("L4", (1, 0), 1, 1, shared_devices=((free, 1),))

    whole, half = Resources(1_000, 2**30, 1_000), Resources(1_000, 2**30, 500)
    memory = [Arrival(whole, (), 1)] * 99 + [Arrival(half, (), 1)]
    clusters = [cluster("a", "r", shared(600)), cluster("b", "r", shared(550))]
    result = cycle(clusters, [spec("half", gpus=0.5)], config=SchedulerConfig(score_weights={"Fragmentation": 3}),
                   recent=memory)
    assert placed(result) == {"half": {"b": 1}}


def test_a_fractions_reservation_takes_the_spot_of_least_growth_not_best_fits() -> None:
    """The cycle reserves a fraction where `Fragmentation` scored it, the bucket of least growth (where the
    member's FGD binder puts it), not best fit's fullest shared device. Mostly half-GPU work is in demand:
    the first half on the shared GPU with 600 free (best fit) strands 100, on the free GPU it leaves a 500
    the next half takes. Reserved at best fit's, the cycle then sent the 600m job to the free GPU, and the
    second half found 100 and 400 left; reserved where it was scored, the 600m job takes the 600 and the
    second half the 500 (synthetic `fractional` of bench/fgd.py: docs/benchmarks.md, round 25)."""
    p = AcceleratorPool(A100, (0, 1), 2, 2, shared_devices=((600, 1),))
    half = Resources(1_000, 2**30, 500)
    memory = [Arrival(half, (), 1)] * 20
    shapes = ((500, 1, 1_000, 2**30, 22 / 23), (600, 1, 1_000, 2**30, 1 / 23))
    assert fragmentation.fraction_bucket(p, 500, shapes, 0.0) == whole_bucket(1)
    assert fragmentation.fraction_bucket(p, 1_000, shapes, 0.0) == 0  # whole devices: best fit's
    jobs = [spec("half-1", gpus=0.5, kind=JobKind.INFERENCE), spec("six", gpus=0.6, kind=JobKind.INFERENCE),
            spec("half-2", gpus=0.5, kind=JobKind.INFERENCE)]
    result = cycle([cluster("c", "r", p)], jobs, recent=memory)
    assert placed(result) == {"half-1": {"c": 1}, "six": {"c": 1}, "half-2": {"c": 1}}
