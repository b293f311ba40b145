"""The cluster a job just failed on stays avoided across a federator restart (server/restored_cooldowns.py).

QA new59 N7: a federator restarted 11 s after a job's failure on member-a placed it straight back there (the
cool-down, 30 s, was memory only) and it failed again, spending a restart of its spec.failurePolicy. The store holds
what the cool-down needs: the job's last restart, its reason naming the cluster, and when."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from server_support import Clock, join
from test_failure_restarts import budgeted, fail, fed_of, placed

from federator.model import Job, JobId, JobPhase, Reason, ReasonCode
from federator.server.federator import Federator
from federator.server.refusals import FIRST_REFUSAL_SECONDS
from federator.store import SqliteJobStore


def restarted(tmp_path: Path, clock: Clock, *, after: float, early: bool,
              stored: Callable[[Job], Job] | None = None) -> tuple[Federator, JobId, str]:
    """A job failed (early or not) on one of two clusters, then the federator restarted on its store `after`
    seconds on: (the new federator, the job's id, the cluster it failed on). `stored`: the job as the store is to
    hold it before the restart (as another release wrote it)."""
    db = tmp_path / "fed.db"
    store = SqliteJobStore(db)
    fed = fed_of(clock, store)
    join(fed, "east-1")
    join(fed, "west-1")
    job = fed.submit(budgeted("pretrain", 2))
    if not early:
        fail(fed, job, clock, after=4)  # its early rule's once-more placement spent first
        clock.now += 60  # that cool-down over
    failed_on = fail(fed, job, clock, after=4)
    code = ReasonCode.FAILED_EARLY if early else ReasonCode.FAILED_RESTARTING
    assert job.pending_reason is not None and job.pending_reason.code is code
    assert job.last_restart_cluster == failed_on
    if stored is not None:
        store.put([stored(job)])
    store.close()
    clock.now += after
    again = fed_of(clock, SqliteJobStore(db))
    join(again, "east-1")
    join(again, "west-1")
    return again, job.job_id, failed_on


def test_a_restart_inside_the_cooldown_places_the_job_elsewhere_not_back_where_it_failed(tmp_path: Path) -> None:
    clock = Clock()
    fed, job_id, failed_on = restarted(tmp_path, clock, after=11, early=False)
    job = fed.jobs[job_id]
    assert fed.refusals.avoided(job_id, clock.now) == (failed_on,)
    cluster, _ = placed(fed, job)
    assert cluster != failed_on
    assert job.phase is JobPhase.PLACED


def test_an_early_failure_is_remembered_too_and_the_cooldown_ends_when_it_would_have(tmp_path: Path) -> None:
    clock = Clock()
    fed, job_id, failed_on = restarted(tmp_path, clock, after=11, early=True)
    assert fed.refusals.avoided(job_id, clock.now) == (failed_on,)
    clock.now += FIRST_REFUSAL_SECONDS - 11  # 30 s from the failure, not from the restart
    assert fed.refusals.avoided(job_id, clock.now) == ()


def test_a_restart_after_the_cooldown_remembers_nothing(tmp_path: Path) -> None:
    clock = Clock()
    fed, job_id, _ = restarted(tmp_path, clock, after=FIRST_REFUSAL_SECONDS + 1, early=False)
    assert fed.refusals.avoided(job_id, clock.now) == ()
    assert not fed.refusals.remembers(job_id)


def test_the_cluster_is_the_stored_restarts_own_not_read_out_of_its_words(tmp_path: Path) -> None:
    """Review of stop 60: the cluster was parsed out of "failed on CLUSTER after ..." with a pattern, bound to the
    wording of the two format strings that write it; a reason worded any other way kept the job off nothing."""
    clock = Clock()

    def reworded(job: Job) -> Job:
        assert job.last_restart_reason is not None
        said = Reason(job.last_restart_reason.code, "the member reported the job Failed: NCCL timeout (rank 3)")
        return dataclasses.replace(job, last_restart_reason=said)

    fed, job_id, failed_on = restarted(tmp_path, clock, after=11, early=False, stored=reworded)
    assert fed.refusals.avoided(job_id, clock.now) == (failed_on,)
    cluster, _ = placed(fed, fed.jobs[job_id])
    assert cluster != failed_on


def test_a_restart_stored_without_its_cluster_keeps_the_job_off_nothing(tmp_path: Path) -> None:
    """A restart 0.19.0 stored has no cluster: nothing to go by (a 30 s cool-down an upgrade rarely falls in)."""
    clock = Clock()
    fed, job_id, _ = restarted(tmp_path, clock, after=11, early=True,
                               stored=lambda job: dataclasses.replace(job, last_restart_cluster=""))
    assert fed.refusals.avoided(job_id, clock.now) == ()
