"""A job that runs past its spec.maxRunSeconds is stopped by the federator and fails (server/run_limits.py).

Before, nothing bounded how long a job held accelerators: a member (or a third-party agent) that kept reporting a
placement Running for ever held its accelerators in the federator's books for ever. The clock runs from each
attempt's first Running report, sums the attempts, and is stored with the job, so a restart keeps it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from server_support import Clock, MemoryStore, capacity, join, make, spec

from federator.model import JobKind, JobPhase, JobSpec, ReasonCode, run_seconds
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import CancelOrder, Order
from federator.server.run_limits import CHECK_SECONDS, MAX_PER_TURN
from federator.store import SqliteJobStore

LIMIT = 600


def limited(name: str, seconds: int = LIMIT, *, kind: JobKind = JobKind.TRAINING) -> JobSpec:
    return replace(spec(name), max_run_seconds=seconds, kind=kind)


def drain(rec: ClusterRecord) -> list[Order | None]:
    out: list[Order | None] = []
    while not rec.outbox.empty():
        out.append(rec.outbox.get_nowait())
    return out


def running(fed: Federator, rec: ClusterRecord, job_spec: JobSpec) -> tuple[str, str]:
    """A job placed on `rec` and reported Running now: (job id, placement id)."""
    job = fed.submit(job_spec)
    fed.schedule_once()
    (p,) = job.placements
    assert p.cluster == rec.name
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
    return job.job_id, p.placement_id


@pytest.mark.parametrize("kind", [JobKind.TRAINING, JobKind.INFERENCE], ids=["training", "serving"])
def test_a_job_its_member_keeps_running_is_cancelled_there_at_its_limit_and_fails(kind: JobKind) -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    rec = join(fed, "liar")
    job_id, pid = running(fed, rec, limited("forever", kind=kind))
    job = fed.jobs[job_id]
    assert job.started_at == clock.now
    drain(rec)

    clock.now += LIMIT - CHECK_SECONDS
    fed.job_update(rec, pid, JobPhase.RUNNING, "still going")  # the member says Running, and says it again
    fed.report(rec, capacity(pid))
    assert fed.run_limits.check() == [] and job.phase is JobPhase.RUNNING

    clock.now += 2 * CHECK_SECONDS
    fed.report(rec, capacity(pid))
    assert fed.run_limits.check() == [job]
    assert job.phase is JobPhase.FAILED and job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.DEADLINE_EXCEEDED
    assert job.message == job.pending_reason.message == (
        "ran 10m1s, past its spec.maxRunSeconds of 600s (10m0s); the federator cancelled every placement")
    assert [(o.placement_id, o.reason) for o in drain(rec) if isinstance(o, CancelOrder)] == [
        (pid, f"job {job.message}")]  # the normal cancel path: the member deletes the workload
    assert [p.phase for p in job.placements] == [JobPhase.CANCELLED]
    stored = fed.store.load()[0]  # type: ignore[attr-defined]
    assert stored.phase is JobPhase.FAILED and stored.pending_reason == job.pending_reason
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_jobs_run_limit_exceeded_total{queue="default"} 1.0' in scrape
    assert 'federator_jobs_finished_total{phase="Failed",queue="default"} 1.0' in scrape

    fed.job_update(rec, pid, JobPhase.RUNNING, "still going")  # it does not stop: told again, and the job stays
    assert [o.placement_id for o in drain(rec) if isinstance(o, CancelOrder)] == [pid]
    assert job.phase is JobPhase.FAILED


def test_time_placed_and_not_started_does_not_count_and_no_limit_never_ends() -> None:
    """The clock starts at the first Running report, not the placement (a job in a member's queue holds no
    accelerators yet); a job without a limit runs as long as its member runs it."""
    clock = Clock()
    fed = make(MemoryStore(), clock, start_timeout=0.0)
    rec = join(fed, "slow")
    waiting = fed.submit(limited("waits", 60))
    unbounded_id, _ = running(fed, rec, spec("unbounded"))
    fed.schedule_once()
    (p,) = waiting.placements
    clock.now += 10_000
    assert fed.run_limits.check() == [] and waiting.phase is JobPhase.PLACED and waiting.started_at == 0
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
    clock.now += 59
    assert fed.run_limits.check() == [] and waiting.phase is JobPhase.RUNNING
    clock.now += 2
    assert fed.run_limits.check() == [waiting]
    assert fed.jobs[unbounded_id].phase is JobPhase.RUNNING


def test_the_clock_sums_the_attempts_of_a_job_placed_again() -> None:
    """A member that stopped the job (or was lost, or was preempted) does not reset the clock: the limit counts
    all the time the job held accelerators, as a bill does."""
    clock = Clock()
    fed = make(MemoryStore(), clock)
    first = join(fed, "first")
    job_id, pid = running(fed, first, limited("moves"))
    job = fed.jobs[job_id]
    clock.now += 400
    fed.job_update(first, pid, JobPhase.CANCELLED, "evicted")  # the member stopped it: queued again
    assert job.phase is JobPhase.PENDING and job.started_at == 0 and job.ran_seconds == 400
    clock.now += 1_000  # pending: no accelerators held, the clock stands
    fed.run_limits.check()
    fed.schedule_once()
    (p,) = job.placements
    fed.job_update(fed.clusters[p.cluster], p.placement_id, JobPhase.RUNNING, "")
    clock.now += 199
    assert fed.run_limits.check() == [] and run_seconds(job, clock.now) == 599
    clock.now += 2
    assert fed.run_limits.check() == [job] and job.phase is JobPhase.FAILED
    assert job.message == ("ran 10m1s (of which 6m40s in earlier attempts), past its spec.maxRunSeconds of 600s "
                           "(10m0s); the federator cancelled every placement")


def test_a_burst_of_jobs_at_their_limit_is_stopped_a_bounded_number_a_turn() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    jobs = []
    for i in range(MAX_PER_TURN + 5):
        job = fed.submit(limited(f"j{i}", 60))
        jobs.append(job)
        fed.run_limits.started(job, JobPhase.RUNNING)  # as a Running report would (no room needed here)
        job.phase = JobPhase.RUNNING
    clock.now += 61
    assert len(fed.run_limits.check()) == MAX_PER_TURN
    clock.now += CHECK_SECONDS
    assert len(fed.run_limits.check()) == 5
    assert all(j.phase is JobPhase.FAILED for j in jobs)


def test_the_clock_survives_a_restart_on_the_sqlite_store(tmp_path: Path) -> None:
    """Stored with the job: a federator that restarts counts from the attempt's first Running report, not from
    its own start; the time it was down counts (the member ran the job meanwhile)."""
    clock, db = Clock(), tmp_path / "fed.db"
    store = SqliteJobStore(db)
    fed = make(store, clock)  # type: ignore[arg-type]
    rec = join(fed, "member")
    job_id, pid = running(fed, rec, limited("long"))
    started = clock.now
    clock.now += 300
    store.close()

    clock.now += 200  # down 200 s
    store = SqliteJobStore(db)
    fed = make(store, clock)  # type: ignore[arg-type]
    job = fed.jobs[job_id]
    assert job.started_at == started and job.phase is JobPhase.RUNNING
    rec = fed.connect(cluster="member", region="r", labels={})
    fed.job_update(rec, pid, JobPhase.RUNNING, "")  # its re-sync
    fed.report(rec, capacity(pid))
    drain(rec)
    clock.now += 99  # 599 s since its start
    assert fed.run_limits.check() == [] and job.phase is JobPhase.RUNNING
    clock.now += 2
    assert fed.run_limits.check() == [job]
    assert job.phase is JobPhase.FAILED and job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.DEADLINE_EXCEEDED
    assert [o.placement_id for o in drain(rec) if isinstance(o, CancelOrder)] == [pid]
    store.close()
    (kept,) = SqliteJobStore(db).load()
    assert kept.phase is JobPhase.FAILED and kept.pending_reason == job.pending_reason
