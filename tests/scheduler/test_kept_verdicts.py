"""The filters' verdicts kept across cycles (scheduler/verdicts.py): used only for a cluster equal to the one and
the context they were made for, so the next cycle's verdict follows every change a cycle must see."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from scenarios import H100, spec
from test_properties import scenarios

from federator.model import ClusterInfo, ClusterState, ReasonCode
from federator.scheduler import PlacementRequest, Scheduler, SchedulerConfig, Snapshot
from federator.scheduler.framework import CycleContext
from federator.scheduler.plugins import FILTERS
from federator.scheduler.reservation import ReservationPolicy
from federator.scheduler.verdicts import FILTER_READS, Verdicts

from builders import cluster, job, pool, request

NOW = 1_000_000.0


def eight(name: str, at: float = 0.0) -> PlacementRequest:
    return request(job(name, gpus=8, cpu=1), at=at)


def test_a_cluster_whose_capacity_grew_between_cycles_is_judged_on_its_new_report() -> None:
    scheduler = Scheduler()
    small = cluster("x", "r", pool(H100, nodes=1, free=2))  # 2 free: no room for 8
    roomy = cluster("y", "r", pool(H100, nodes=1, free=8))
    first = scheduler.schedule(Snapshot.of([small, roomy]), [eight("a")], now=NOW)
    assert [d.assignments[0].cluster for d in first.decisions] == ["y"]
    assert scheduler.verdicts.misses == 2  # both judged, and their verdicts kept
    # Between cycles x reports a node freed, y is full: the kept "x has no room" must not survive the report.
    grown = cluster("x", "r", pool(H100, nodes=1, free=8))
    full = cluster("y", "r", pool(H100, nodes=1, free=0))
    second = scheduler.schedule(Snapshot.of([grown, full]), [eight("b", at=1.0)], now=NOW + 300)
    assert [d.assignments[0].cluster for d in second.decisions] == ["x"]


def test_a_cluster_whose_room_went_between_cycles_is_judged_on_its_new_report() -> None:
    scheduler = Scheduler()
    x = cluster("x", "r", pool(H100, nodes=1, free=8))
    first = scheduler.schedule(Snapshot.of([x]), [request(job("a", gpus=1, cpu=1))], now=NOW)
    assert [d.assignments[0].cluster for d in first.decisions] == ["x"]  # x passed the 1-GPU shape
    taken = cluster("x", "r", pool(H100, nodes=1, free=0))  # its next report: every accelerator taken
    second = scheduler.schedule(Snapshot.of([taken]), [request(job("b", gpus=1, cpu=1), at=1.0)], now=NOW + 300)
    assert not second.decisions
    assert second.pending["b"].code is ReasonCode.INSUFFICIENT_ACCELERATORS  # type: ignore[index]


def test_a_maintenance_window_announced_between_cycles_reaches_a_cluster_whose_report_did_not_change() -> None:
    scheduler = Scheduler()
    x = cluster("x", "r", pool(H100, nodes=2, free=8))
    first = scheduler.schedule(Snapshot.of([x]), [eight("a")], now=NOW)
    assert len(first.decisions) == 1
    # The same report of x (the same object), but a window ahead now: a job with no run bound may not start.
    second = scheduler.schedule(Snapshot.of([x]), [eight("b", at=1.0)], now=NOW + 300,
                                maintenance={"x": NOW + 3600})
    assert not second.decisions
    assert second.pending["b"].code is ReasonCode.CLUSTER_NOT_READY  # type: ignore[index]
    # and when the window is called off, x takes the job again
    third = scheduler.schedule(Snapshot.of([x]), [eight("c", at=2.0)], now=NOW + 600)
    assert [d.assignments[0].cluster for d in third.decisions] == ["x"]


def test_a_cluster_rebuilt_equal_keeps_its_verdict_and_a_cordoned_one_does_not() -> None:
    """The server builds every cluster anew each cycle around its last report: an equal one keeps the verdicts,
    one an operator cordoned (the same report, another state) is judged anew."""
    scheduler = Scheduler()
    x = cluster("x", "r", pool(H100, nodes=2, free=8))
    scheduler.schedule(Snapshot.of([x]), [eight("a")], now=NOW)
    hits = scheduler.verdicts.hits
    again = scheduler.schedule(Snapshot.of([replace(x)]), [eight("b", at=1.0)], now=NOW + 300)
    assert [d.assignments[0].cluster for d in again.decisions] == ["x"]
    assert scheduler.verdicts.hits == hits + 1
    cordoned = scheduler.schedule(Snapshot.of([replace(x, state=ClusterState.CORDONED)]), [eight("c", at=2.0)],
                                  now=NOW + 600)
    assert not cordoned.decisions
    assert cordoned.pending["c"].code is ReasonCode.CLUSTER_NOT_READY  # type: ignore[index]


def test_a_reservation_that_appears_between_cycles_holds_room_the_last_cycle_judged_free() -> None:
    config = SchedulerConfig(reservations=ReservationPolicy(after_seconds=600, max_reservations=3))
    scheduler = Scheduler(config)
    # one node with 7 H100 free: a one-GPU job fits, the 8-GPU gang not yet
    c = cluster("c", "r", pool(H100, nodes=1, free=7, extra={0: 1}))
    one = request(spec("s1", gpus=1, queue="flood", models=(H100,)), at=NOW - 100)
    first = scheduler.schedule(Snapshot.of([c]), [one], now=NOW)
    assert [d.job_id for d in first.decisions] == ["s1"]
    # Next cycle, the same report of c; a gang has waited past the threshold and reserves c's room: the
    # flood's next one-GPU job of the same shape is held off it though c passed that shape last cycle.
    gang = request(spec("g", gpus=8, queue="train", models=(H100,)), at=NOW - 5_000)
    two = request(spec("s2", gpus=1, queue="flood", models=(H100,)), at=NOW - 50)
    second = scheduler.schedule(Snapshot.of([c]), [gang, two], now=NOW + 300)
    assert second.reservations and second.reservations[0].job_id == "g"
    assert not second.decisions
    assert second.pending["s2"].code is ReasonCode.RESERVED  # type: ignore[index]


def chained(scheduler: Scheduler | None, fleet: list[ClusterInfo], cycles: int) -> list[list[tuple[str, str]]]:
    """`cycles` cycles of three jobs each, every cycle over the last one's snapshot (so the clusters no placement
    touched are the same objects); a fresh scheduler per cycle when `scheduler` is None."""
    snapshot, out = Snapshot.of(fleet), []
    for k in range(cycles):
        jobs = [request(job(f"j{k}-{i}", gpus=g, cpu=1), at=float(3 * k + i)) for i, g in enumerate((1, 2, 4))]
        result = (scheduler or Scheduler()).schedule(snapshot, jobs, now=NOW + 300 * k)
        out.append([(str(d.job_id), f"{a.cluster}/{a.accelerator_model}") for d in result.decisions
                    for a in d.assignments])
        snapshot = result.snapshot
    return out


def test_kept_verdicts_serve_the_clusters_no_cycle_touched_and_place_as_a_fresh_scheduler_does() -> None:
    fleet = [cluster(f"c{i}", f"r{i % 3}", pool(H100, nodes=2, free=8 - i % 4), price=1.0 + i % 5)
             for i in range(12)]
    scheduler = Scheduler()
    kept = chained(scheduler, fleet, 6)
    assert kept == chained(None, fleet, 6)
    assert sum(map(len, kept)) == 18
    assert scheduler.verdicts.hits > scheduler.verdicts.misses  # most clusters were not touched


def test_a_filter_that_does_not_say_what_it_reads_turns_keeping_off() -> None:
    class Mystery:
        name = "Mystery"

        def filter(self, *_: object) -> None:
            return None

    verdicts = Verdicts()
    assert verdicts.begin([], CycleContext())
    assert not verdicts.begin([Mystery()], CycleContext())
    assert "ReservedRoom" not in FILTER_READS  # a cycle with reservations keeps nothing (see the test above)


def test_every_built_in_filter_says_what_it_reads() -> None:
    assert set(FILTERS) <= set(FILTER_READS)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_three_cycles_with_kept_verdicts_decide_as_three_fresh_schedulers(scenario: tuple) -> None:  # type: ignore[type-arg]
    """The scheduler properties' fleets and jobs (vendors, MIG, sharing, quotas, spreads), offered over three
    cycles, each over the last one's snapshot (the second rebuilt equal, as the server rebuilds it): the same
    decisions, reasons and snapshots as a scheduler that keeps nothing."""
    snap, reqs, cfg = scenario
    kept, parts = Scheduler(cfg), (reqs[0::3], reqs[1::3], reqs[2::3])
    a = b = snap
    for k, part in enumerate(parts):
        now = NOW + 300 * k
        one, two = kept.schedule(a, part, now=now), Scheduler(cfg).schedule(b, part, now=now)
        assert one.decisions == two.decisions
        assert dict(one.pending) == dict(two.pending)
        assert one.snapshot == two.snapshot
        a = Snapshot.of([replace(c) for c in one.snapshot.clusters]) if k == 0 else one.snapshot
        b = two.snapshot
