"""Reservations (scheduler/reservation.py): a gang that has waited gathers room on one cluster, and a flood of
smaller, later work no longer takes every accelerator that frees there."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scenarios import A100, H100, spec

from federator.backends.sim.fleet import NodeSpec
from federator.backends.sim.nodes import NodeSet
from federator.model import ClusterInfo, ClusterState, JobId, JobKind, ReasonCode, Resources
from federator.scheduler import CycleResult, PlacementRequest, Scheduler, SchedulerConfig, Snapshot
from federator.scheduler.reservation import Reservation, ReservationPolicy, shortfall

from builders import cluster, pool, request

LATE = 10_000.0  # long past every threshold below
ON = SchedulerConfig(reservations=ReservationPolicy(after_seconds=600, max_reservations=3))
OFF = SchedulerConfig(reservations=ReservationPolicy(max_reservations=0))


def gang(name: str = "g", *, gpus: int = 8, replicas: int = 1, priority: int = 0, at: float = 0.0,
         models: tuple[str, ...] = (H100,)) -> PlacementRequest:
    return request(spec(name, gpus=gpus, replicas=replicas, queue="train", priority=priority, models=models), at=at)


def small(name: str, *, priority: int = 0, model: str = H100, at: float = 100.0) -> PlacementRequest:
    """A one-GPU training job of the flood (never due itself: one accelerator is not starved by its size)."""
    return request(spec(name, gpus=1, queue="flood", priority=priority, models=(model,)), at=at)


def gathering(free: int = 7, *, name: str = "c", others: dict[int, int] | None = None,
              a100: bool = False) -> ClusterInfo:
    """One node with `free` H100 free, the rest of the pool full, and an idle A100 node if asked."""
    extra = {0: 1, **(others or {})}
    pools = [pool(H100, nodes=1, free=free, extra=extra)]
    if a100:
        pools.append(pool(A100, nodes=1))
    return cluster(name, "r", *pools)


def cycle(clusters: list[ClusterInfo], requests: list[PlacementRequest], *, config: SchedulerConfig = ON,
          now: float = LATE, held: tuple[Reservation, ...] = ()) -> CycleResult:
    return Scheduler(config).schedule(Snapshot.of(clusters), requests, now=now, reservations=held)


# -- the flood, in miniature ---------------------------------------------------------------------------------


def flood_run(config: SchedulerConfig, *, minutes: int = 240) -> float | None:
    """Two 8 x H100 nodes full of one-GPU flood jobs, each running 16 minutes, one ending a minute; the flood
    queue always has more waiting. An 8-GPU gang arrives at 0. A cycle a minute, nodes bound best fit (what
    the agent does). When the gang was placed (minutes), or None."""
    nodes = NodeSet.of([NodeSpec(f"n{i}", H100, 8, 64_000, 512 * 2**30) for i in range(2)], fit="best")
    res = Resources(1000, 2**30, 1000)
    ends: dict[str, float] = {}
    for i in range(16):
        assert nodes.bind(f"f{i}", replicas=1, resources=res, accelerator_model=H100) is None
        ends[f"f{i}"] = 60.0 * (i + 1)
    g = gang(at=0.0)
    n = 16
    held: tuple[Reservation, ...] = ()
    for minute in range(1, minutes + 1):
        now = 60.0 * minute
        for key in [k for k, t in ends.items() if t <= now]:
            nodes.unbind(key)
            del ends[key]
        waiting = [small(f"f{k}", at=now - 1) for k in range(n, n + 4)]
        info = ClusterInfo("east-1", "east", ClusterState.READY, (), nodes.capacity())
        result = Scheduler(config).schedule(Snapshot.of([info]), [g, *waiting], now=now, reservations=held)
        held = result.reservations
        for d in result.decisions:
            if d.job_id == "g":
                return minute
            assert nodes.bind(d.job_id, replicas=1, resources=res, accelerator_model=H100) is None
            ends[d.job_id] = now + 16 * 60
            n += 1
    return None


def test_a_flood_of_small_jobs_starves_a_gang_without_a_reservation() -> None:
    assert flood_run(OFF) is None


def test_with_a_reservation_the_gang_places_once_its_node_has_gathered() -> None:
    placed = flood_run(ON)
    assert placed is not None
    assert 10 < placed <= 10 + 2 * 16  # reserved at 10 minutes; a node's jobs all end within 16 more


# -- who may take what ---------------------------------------------------------------------------------------


def test_the_gang_holds_the_cluster_where_least_must_free() -> None:
    far, near = gathering(2, name="far"), gathering(6, name="near")
    result = cycle([far, near], [gang()])
    (r,) = result.reservations
    assert (r.cluster, r.accelerator_model, r.needed, r.short) == ("near", H100, 8, 2)


def test_a_lower_priority_job_is_kept_off_the_room_the_gang_needs_and_told_why() -> None:
    result = cycle([gathering(7)], [gang(), small("s")])
    assert not result.decisions
    why = result.pending[JobId("s")]
    assert why.code is ReasonCode.RESERVED
    # another queue's job learns that a gang waits, not which, how big or since when (outside QA, M2)
    assert why.message.endswith("c: its NVIDIA-H100-80GB-HBM3 are held for a waiting gang of another queue")
    same = request(spec("own", gpus=1, queue="train", models=(H100,)), at=100.0)
    told = cycle([gathering(7)], [gang(), same]).pending[JobId("own")]
    assert told.code is ReasonCode.RESERVED  # the gang's own queue is told which gang, and how far it is
    assert "held for gang g" in told.message and "1 of 8 still to free" in told.message


def test_an_equal_priority_job_submitted_before_the_gang_is_kept_off_too() -> None:
    result = cycle([gathering(7)], [gang(at=50.0), small("s", at=0.0)])
    assert result.pending[JobId("s")].code is ReasonCode.RESERVED


def test_a_higher_priority_job_passes_the_reservation() -> None:
    result = cycle([gathering(7)], [gang(), small("urgent", priority=5)])
    assert [d.job_id for d in result.decisions] == ["urgent"]
    assert result.reservations[0].job_id == "g"


def test_a_job_of_another_model_still_places_on_the_reserved_cluster() -> None:
    result = cycle([gathering(7, a100=True)], [gang(), small("a", model=A100)])
    assert [(d.job_id, d.assignments[0].accelerator_model) for d in result.decisions] == [("a", A100)]


def test_a_job_that_leaves_the_gang_no_further_from_fitting_still_places() -> None:
    # a second node with one GPU free: the job takes that one, the gang's node keeps its 7
    result = cycle([gathering(7, others={1: 1})], [gang(), small("s")])
    assert [d.job_id for d in result.decisions] == ["s"]
    assert result.reservations[0].short == 1


def test_a_spread_job_may_not_take_the_gangs_room_replica_by_replica() -> None:
    # one replica would take the single free GPU of the other node; four would take three of the gang's
    serving = request(spec("serve", kind=JobKind.INFERENCE, replicas=4, gpus=1, queue="flood", models=(H100,)),
                      at=100.0)
    result = cycle([gathering(7, others={1: 1})], [gang(), serving])
    assert not result.decisions
    assert result.pending[JobId("serve")].code is ReasonCode.RESERVED


def test_a_job_that_would_take_the_gangs_cpu_is_kept_off() -> None:
    c = gathering(7, others={1: 1})
    c = replace(c, capacity=replace(c.capacity, cpu_milli_free=4_500))  # the gang's 1 CPU, and 3.5 more
    hungry = request(spec("s", gpus=1, cpu=4, queue="flood", models=(H100,)), at=100.0)
    result = cycle([c], [gang(), hungry])
    assert result.pending[JobId("s")].code is ReasonCode.RESERVED


def test_a_job_of_another_model_that_would_take_the_gangs_cpu_is_kept_off_too() -> None:
    c = gathering(7, a100=True)
    c = replace(c, capacity=replace(c.capacity, cpu_milli_free=4_500))
    hungry = request(spec("a", gpus=1, cpu=4, queue="flood", models=(A100,)), at=100.0)
    modest = request(spec("b", gpus=1, cpu=3, queue="flood", models=(A100,)), at=101.0)
    result = cycle([c], [gang(), hungry, modest])
    assert result.pending[JobId("a")].code is ReasonCode.RESERVED
    assert [d.job_id for d in result.decisions] == ["b"]  # 1.5 CPUs left: the gang's one is still there


def test_the_gang_places_when_its_room_is_there_and_the_reservation_ends() -> None:
    first = cycle([gathering(7)], [gang()])
    assert first.reservations
    second = cycle([gathering(8)], [gang(), small("s")], held=first.reservations)
    assert [d.job_id for d in second.decisions][:1] == ["g"]
    assert not second.reservations


def test_a_cancelled_gang_holds_nothing() -> None:
    first = cycle([gathering(7)], [gang()])
    second = cycle([gathering(7)], [small("s")], held=first.reservations)  # g left the requests
    assert [d.job_id for d in second.decisions] == ["s"] and not second.reservations


# -- when, where, how many --------------------------------------------------------------------------------------


def test_a_one_gpu_job_or_a_gang_that_fits_now_takes_no_slot() -> None:
    one = SchedulerConfig(reservations=ReservationPolicy(after_seconds=600, max_reservations=1))
    idle = cluster("d", "r", pool(H100, nodes=2, free=4, gpus_per_node=4))  # two idle 4-GPU nodes
    waiting = [small("old", at=0.0), gang("fits", gpus=4, at=0.0), gang("big", replicas=2, at=5.0)]
    result = cycle([gathering(7), idle], waiting, config=one)
    assert [r.job_id for r in result.reservations] == ["big"]  # the older two wanted no room gathered
    assert {d.job_id for d in result.decisions} == {"old", "fits"}


def test_no_reservation_before_the_threshold() -> None:
    result = cycle([gathering(7)], [gang(at=0.0), small("s")], now=599.0)
    assert not result.reservations and [d.job_id for d in result.decisions] == ["s"]


def test_no_reservation_where_the_gang_could_never_fit() -> None:
    result = cycle([gathering(7)], [gang(gpus=8, replicas=3)])  # 24 GPUs, the pool has 16
    assert not result.reservations


def test_at_most_max_reservations_highest_priority_then_oldest_first() -> None:
    config = SchedulerConfig(reservations=ReservationPolicy(after_seconds=600, max_reservations=2))
    clusters = [gathering(7, name=f"c{i}") for i in range(3)]
    gangs = [gang("old", at=0.0), gang("young", at=10.0), gang("high", priority=3, at=20.0)]
    result = cycle(clusters, gangs, config=config)
    assert [r.job_id for r in result.reservations] == ["high", "old"]


def test_a_reservation_keeps_its_cluster_while_it_can_and_moves_when_it_cannot() -> None:
    a, b = gathering(3, name="a"), gathering(5, name="b")
    first = cycle([a, b], [gang()])
    assert first.reservations[0].cluster == "b"
    nearer = gathering(7, name="a")  # a is nearer now, but b's gathered room would be lost
    kept = cycle([nearer, b], [gang()], now=LATE + 60, held=first.reservations)
    assert kept.reservations[0].cluster == "b" and kept.reservations[0].since == first.reservations[0].since
    gone = cycle([nearer, replace(b, state=ClusterState.LOST)], [gang()], now=LATE + 120, held=kept.reservations)
    assert gone.reservations[0].cluster == "a" and gone.reservations[0].since == LATE + 120


def test_the_gangs_reason_says_what_it_waits_for_and_since_when() -> None:
    result = cycle([gathering(5)], [gang()])
    why = result.pending[JobId("g")]
    assert why.code is ReasonCode.GANG_DOES_NOT_FIT or why.code is ReasonCode.INSUFFICIENT_ACCELERATORS
    assert why.message.startswith("waiting for 3 of 8 ")
    assert "to free on c, held for it since 1970-01-01T02:46:40Z" in why.message


def test_two_gangs_on_one_cluster_do_not_keep_each_other_off() -> None:
    c = cluster("c", "r", pool(H100, nodes=1, free=8, extra={6: 1}))  # one node free, one with 6
    result = cycle([c], [gang("first", at=0.0), gang("second", at=1.0)])
    assert [d.job_id for d in result.decisions] == ["first"]


@pytest.mark.parametrize(("hist", "replicas", "gpus", "short"), [
    ({7: 1, 0: 1}, 1, 8, 1),  # one node nearly free
    ({3: 2}, 1, 8, 5),  # the nearer of two alike
    ({3: 2}, 2, 4, 2),  # a 4-GPU replica per node: 1 more on each
    ({1: 8}, 8, 1, 0),  # eight single GPUs fit eight one-GPU replicas now
    ({0: 2}, 2, 8, 16),
    ({0: 1}, 2, 8, None),  # more than the pool holds
], ids=["one-more", "nearer-node", "two-per-two-nodes", "fits-now", "all-busy", "never"])
def test_shortfall(hist: dict[int, int], replicas: int, gpus: int, short: int | None) -> None:
    p = pool(H100, nodes=0, extra=hist)
    assert shortfall(gang(gpus=gpus, replicas=replicas), p) == short


# -- the policy ----------------------------------------------------------------------------------------------


def test_the_policy_file_sets_reservations_and_names_bad_fields() -> None:
    from federator.scheduler import PolicyError, parse_policy

    assert parse_policy("").reservations == ReservationPolicy(after_seconds=600, max_reservations=3)
    got = parse_policy("reservations: {afterSeconds: 60, maxReservations: 1}").reservations
    assert got == ReservationPolicy(after_seconds=60, max_reservations=1)
    assert parse_policy("reservations: {enabled: false}").reservations.max_reservations == 0
    with pytest.raises(PolicyError) as bad:
        parse_policy("reservations: {afterSeconds: -1, maxReservations: x, after: 3}")
    assert {p.split(":")[0] for p in bad.value.problems} == {
        "reservations.afterSeconds", "reservations.maxReservations", "reservations.after"}


def test_an_elastic_gang_reserves_room_for_its_minimum_not_its_size() -> None:
    """An elastic gang (model/elastic.py) that waits reserves what it can start with: 2 x 8 of its 4 x 8, so the
    flood is kept off 16 accelerators, not 32 it may never need (scheduler/elastic.py `least`)."""
    two = cluster("c", "r", pool(H100, nodes=0, free=0, extra={0: 2, 6: 2}))  # 4 nodes of 8, 6 free on two
    asked = gang(replicas=4)
    elastic = replace(asked, spec=replace(asked.spec, min_replicas=2))
    (r,) = cycle([two], [elastic]).reservations
    assert (r.needed, r.short) == (16, 4)
    (whole,) = cycle([two], [asked]).reservations
    assert whole.needed == 32
