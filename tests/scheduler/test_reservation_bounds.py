"""The bounds on reservations (scheduler/reservation.py; security finding S3): a gang does not reserve room its
own queue's work keeps it from, a reservation ends after `maxHoldSeconds` and its gang rests as long, and each
queue gets one slot before any gets a second. The attack: a tenant ran one job of its own on a 16-GPU
cluster and a 16-GPU gang at the top priority, and 15 accelerators sat idle for ever."""

from __future__ import annotations

import pytest
from scenarios import H100, running, spec

from federator.model import ClusterInfo, JobId, ReasonCode
from federator.scheduler import CycleResult, PlacementRequest, Scheduler, SchedulerConfig, Snapshot
from federator.scheduler.framework import Allocation
from federator.scheduler.policy import PolicyError, parse_policy
from federator.scheduler.reservation import Reservation, ReservationPolicy
from federator.server.reservations import KeptReservations

from builders import cluster, pool, request

LATE = 10_000.0
MAX_HOLD = 3_600.0
ON = SchedulerConfig(reservations=ReservationPolicy(after_seconds=600, max_reservations=3, max_hold_seconds=MAX_HOLD))
TOP = 1_000_000


def solo(free: int = 15) -> ClusterInfo:
    """solo-1 of the report: one node of 16 H100."""
    return cluster("solo-1", "r", pool(H100, nodes=1, free=free, gpus_per_node=16))


def gang(name: str, queue: str, *, gpus: int = 16, priority: int = TOP, at: float = 0.0) -> PlacementRequest:
    return request(spec(name, gpus=gpus, queue=queue, priority=priority, models=(H100,)), at=at)


def one(name: str, queue: str, *, priority: int = 0) -> PlacementRequest:
    return request(spec(name, gpus=1, queue=queue, priority=priority, models=(H100,)), at=LATE - 1)


def holding(queue: str) -> Allocation:
    """A non-preemptible one-GPU job of `queue`, running on solo-1."""
    return running(spec(f"{queue}-runs", gpus=1, queue=queue, models=(H100,)), "solo-1")


def cycle(clusters: list[ClusterInfo], requests: list[PlacementRequest], *, config: SchedulerConfig = ON,
          now: float = LATE, allocations: tuple[Allocation, ...] = (), held: tuple[Reservation, ...] = (),
          resting: dict[JobId, float] | None = None) -> CycleResult:
    return Scheduler(config).schedule(Snapshot.of(clusters), requests, running=allocations, now=now,
                                      reservations=held, resting=resting)


# -- a reservation does not wait on its own queue's work -------------------------------------------------------


@pytest.mark.parametrize("priority", [0, TOP])
def test_a_gang_its_own_queues_work_blocks_holds_no_room_and_others_place(priority: int) -> None:
    result = cycle([solo()], [gang("mal-hog", "mal"), one("bob-job", "bob", priority=priority)],
                   allocations=(holding("mal"),))
    assert not result.reservations
    assert [d.job_id for d in result.decisions] == ["bob-job"]


def test_the_same_gang_holds_room_when_another_queues_work_is_in_its_way() -> None:
    result = cycle([solo()], [gang("g", "train"), one("s", "flood")], allocations=(holding("flood"),))
    assert [(r.job_id, r.cluster, r.short) for r in result.reservations] == [("g", "solo-1", 1)]
    assert result.pending[JobId("s")].code is ReasonCode.RESERVED


def test_own_work_that_would_leave_room_for_the_gang_does_not_block_it() -> None:
    # 16 GPUs, the queue's own job holds 1 and another queue's 8: were the others' to end, 15 fit an 8-GPU gang
    c = cluster("solo-1", "r", pool(H100, nodes=1, free=7, gpus_per_node=16))
    other = running(spec("f", gpus=8, queue="flood", models=(H100,)), "solo-1")
    result = cycle([c], [gang("g", "train", gpus=8)], allocations=(holding("train"), other))
    assert [r.job_id for r in result.reservations] == ["g"]


# -- a time bound, and a rest after it ------------------------------------------------------------------------


def test_a_hold_ends_after_max_hold_seconds_and_the_gang_rests_as_long() -> None:
    first = cycle([solo()], [gang("g", "train")], allocations=(holding("flood"),))
    assert [r.since for r in first.reservations] == [LATE]

    kept = cycle([solo()], [gang("g", "train")], allocations=(holding("flood"),), now=LATE + MAX_HOLD - 1,
                 held=first.reservations)
    assert [r.job_id for r in kept.reservations] == ["g"]

    ended = cycle([solo()], [gang("g", "train"), one("s", "flood")], allocations=(holding("flood"),),
                  now=LATE + MAX_HOLD, held=kept.reservations)
    assert not ended.reservations
    assert [d.job_id for d in ended.decisions] == ["s"]
    assert ended.resting == {JobId("g"): LATE + 2 * MAX_HOLD}
    assert "reservations.maxHoldSeconds" in ended.pending[JobId("g")].message

    resting = cycle([solo()], [gang("g", "train")], allocations=(holding("flood"),), now=LATE + 2 * MAX_HOLD - 1,
                    held=ended.reservations, resting=dict(ended.resting))
    assert not resting.reservations and JobId("g") in resting.resting

    again = cycle([solo()], [gang("g", "train")], allocations=(holding("flood"),), now=LATE + 2 * MAX_HOLD,
                  held=resting.reservations, resting=dict(resting.resting))
    assert [r.job_id for r in again.reservations] == ["g"] and not again.resting


def test_moving_to_another_cluster_does_not_restart_the_hold() -> None:
    first = cycle([solo()], [gang("g", "train")], allocations=(holding("flood"),))
    (r,) = first.reservations
    moved = Reservation(r.job_id, "gone", r.accelerator_model, r.priority, r.since, r.needed, r.short)
    second = cycle([solo()], [gang("g", "train")], allocations=(holding("flood"),), now=LATE + 10, held=(moved,))
    (r2,) = second.reservations
    assert r2.since == LATE + 10 and r2.first_reserved == LATE  # a new cluster, the same reservation


def test_the_server_hands_the_resting_gangs_to_the_next_cycle_and_brings_each_back_when_its_rest_ends() -> None:
    room = KeptReservations()
    room.update((), {JobId("g"): 5.0})
    room.update((), {JobId("g"): 5.0})  # the same rest, handed on: brought back once
    assert room.resting() == {JobId("g"): 5.0}
    assert room.due(4.0, after=600.0) == []
    assert room.due(5.0, after=600.0) == [JobId("g")]  # a parked gang asks for room again, without an event
    assert room.due(6.0, after=600.0) == []


# -- one slot per queue before any second ---------------------------------------------------------------------


def test_one_queue_cannot_take_every_slot_whatever_priority_it_claims() -> None:
    config = SchedulerConfig(reservations=ReservationPolicy(after_seconds=600, max_reservations=2))
    clusters = [cluster(f"c{i}", "r", pool(H100, nodes=1, free=7, extra={0: 1})) for i in range(3)]
    gangs = [gang("mal-1", "mal", gpus=8), gang("mal-2", "mal", gpus=8, at=1.0),
             gang("bob-1", "bob", gpus=8, priority=0, at=2.0)]
    result = cycle(clusters, gangs, config=config)
    assert [r.job_id for r in result.reservations] == ["mal-1", "bob-1"]


def test_a_queues_second_gang_takes_a_slot_no_other_queue_wants() -> None:
    clusters = [cluster(f"c{i}", "r", pool(H100, nodes=1, free=7, extra={0: 1})) for i in range(2)]
    result = cycle(clusters, [gang("a", "train", gpus=8), gang("b", "train", gpus=8, at=1.0)])
    assert [r.job_id for r in result.reservations] == ["a", "b"]


# -- the policy key ---------------------------------------------------------------------------------------------


def test_max_hold_seconds_is_read_from_the_policy_and_checked() -> None:
    assert parse_policy("reservations: {maxHoldSeconds: 900}").reservations.max_hold_seconds == 900.0
    assert ReservationPolicy().max_hold_seconds == 3600.0
    with pytest.raises(PolicyError, match=r"reservations\.maxHoldSeconds: must be a positive number"):
        parse_policy("reservations: {maxHoldSeconds: 0}")
    with pytest.raises(ValueError, match=r"reservations\.maxHoldSeconds"):
        ReservationPolicy(max_hold_seconds=float("inf"))
