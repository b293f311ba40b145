"""Usage across a leader change in Kubernetes mode: each replica meters its own terms as leader into its own --db.

A replica's meter is made at the start of each of its terms (a standby waits for the Lease before it builds
anything) and reads back the records it left open when its last term ended. Outside QA (kubedr K5) found two
errors: a record of a placement whose FederatedJob was deleted (or that ended) while the replica stood by stayed
open, so `federator usage` billed it up to every later now and the accelerator-seconds counter counted it; and a
replica that took over billed each running placement from its takeover, not from the start its FederatedJob's
status carries (`startedAt`). Driven here through two meters on two files, as two replicas trading the Lease.
"""

from __future__ import annotations

from pathlib import Path

from federator.accounting import SqliteUsageStore, UsageMeter
from federator.accounting.records import Dimension, summarize
from federator.metrics import Metrics
from federator.model import Job, JobId, JobPhase, Placement, PlacementId

from builders import job as spec_of

H100 = "NVIDIA-H100-80GB-HBM3"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def term(db: Path, clock: Clock, jobs: list[Job]) -> tuple[UsageMeter, SqliteUsageStore, Metrics]:
    """A replica's term as leader begins: its meter made on its own --db and shown the jobs it loads."""
    usage, metrics = SqliteUsageStore(db), Metrics()
    meter = UsageMeter(usage, metrics=metrics, clock=clock)
    meter.load(jobs)
    return meter, usage, metrics


def running(name: str, *, gpus: int, started: float) -> Job:
    job_id = JobId(f"{name}-0a1b2c")
    p = Placement(PlacementId(f"{job_id}.g1.member-a"), job_id, "member-a", "east", 1, H100, 1,
                  phase=JobPhase.RUNNING)
    return Job(job_id, spec_of(name, gpus=gpus, models=(H100,)), submitted_at=started - 5, phase=JobPhase.RUNNING,
               placements=[p], placed_at=started - 2, generation=1, started_at=started)


def billed(usage: SqliteUsageStore, now: float) -> dict[str, float]:
    report = summarize(usage.query(since=0, until=now), since=0, until=now, now=now, by=Dimension.PLACEMENT)
    return {row.key: row.accelerator_seconds for row in report.rows}


def counted(metrics: Metrics) -> float:
    return sum(s.value for m in metrics.accelerator_seconds.metric.collect() for s in m.samples
               if s.name.endswith("_total"))


def test_a_job_deleted_while_a_replica_stood_by_is_not_billed_when_it_leads_again(tmp_path: Path) -> None:
    clock = Clock(100.0)
    ra_db, rb_db = tmp_path / "usage-ra.db", tmp_path / "usage-rb.db"
    h = running("s1-h", gpus=1, started=100.0)
    # ra leads and sees s1-h run from 100; its meter ticks until 160, then ra is SIGKILLed
    meter, usage, _ = term(ra_db, clock, [h])
    for clock.now in (105.0, 130.0, 160.0):
        meter.tick()
    usage.close()
    # rb takes over at 175 and meters s1-h from its start (the FederatedJob's startedAt), not from 175
    clock.now = 175.0
    meter, usage, _ = term(rb_db, clock, [h])
    assert [(r.start, r.end) for r in meter.open.values()] == [(100.0, None)]
    # the owner deletes s1-h at 222: rb ends it there (the job written Cancelled, its placement's end said)
    clock.now = 222.0
    h.phase, h.finished_at = JobPhase.CANCELLED, 222.0
    h.placements[0].phase, h.placements[0].ended_at = JobPhase.CANCELLED, 222.0
    meter.observe([h])
    assert billed(usage, 222.0) == {str(h.placements[0].placement_id): 122.0}
    usage.close()
    # rb stops; ra leads again at 400 with s1-h gone from the store: its old record ends at its last tick (160)
    clock.now = 400.0
    meter, usage, metrics = term(ra_db, clock, [])
    assert meter.open == {}
    assert billed(usage, 400.0) == {str(h.placements[0].placement_id): 60.0}
    clock.now = 500.0
    meter.tick()
    assert billed(usage, 500.0) == {str(h.placements[0].placement_id): 60.0}  # not growing with every now
    assert counted(metrics) == 0.0  # the counter counts nothing of a job its term never saw run


def test_a_placement_that_ended_while_standing_by_ends_at_its_end_not_at_the_takeover(tmp_path: Path) -> None:
    clock = Clock(100.0)
    ra_db = tmp_path / "usage-ra.db"
    a = running("s1-a", gpus=2, started=100.0)
    meter, usage, _ = term(ra_db, clock, [a])
    clock.now = 150.0
    meter.tick()
    usage.close()
    # while ra stood by: s1-a's member lost it at 300 (its g1 ended there, said in the status), it runs again as g2
    g1 = a.placements[0]
    g1.phase, g1.ended_at = JobPhase.CANCELLED, 300.0
    g2 = Placement(PlacementId(f"{a.job_id}.g2.member-a"), a.job_id, "member-a", "east", 1, H100, 2,
                   phase=JobPhase.RUNNING)
    a.placements, a.started_at, a.generation = [g1, g2], 305.0, 2
    clock.now = 400.0
    meter, usage, _ = term(ra_db, clock, [a])
    spans = {r.placement_id: (r.start, r.end) for r in usage.query(since=0, until=400.0)}
    assert spans == {g1.placement_id: (100.0, 300.0), g2.placement_id: (305.0, None)}


def test_a_term_too_short_to_tick_ends_its_gone_records_at_the_last_change_it_metered(tmp_path: Path) -> None:
    """A term that ended before its first tick (the meter ticks every 5 s) still left its last moment: the record of
    a job gone since ends there, not at the next term's start."""
    clock = Clock(100.0)
    ra_db = tmp_path / "usage-ra.db"
    h = running("s1-h", gpus=1, started=100.0)
    _, usage, _ = term(ra_db, clock, [])
    clock.now = 103.0
    meter_ra = UsageMeter(usage, metrics=Metrics(), clock=clock)  # the same term's meter: h starts running at 103
    h.started_at = 103.0
    meter_ra.observe([h])
    usage.close()  # SIGKILLed at 104, before any tick
    clock.now = 400.0
    meter, usage, _ = term(ra_db, clock, [])
    assert meter.open == {}
    [rec] = usage.query(since=0, until=400.0)
    assert (rec.start, rec.end) == (103.0, 103.0)  # known running no further: billed nothing more, not to 400
