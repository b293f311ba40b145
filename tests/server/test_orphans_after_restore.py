"""After a restore from an older backup, an orphan of a job the store holds is not said to be of a job it "has no
record of" (outside operator QA F3: the WARNING said so of bk-0002, which `get jobs` showed Pending)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from server_support import Clock, MemoryStore, capacity, join, make, spec

from federator.model import JobHold, JobId
from federator.server.federator import Federator

from support import cancels_sent

GRACE = 1800.0


def _restored(clock: Clock) -> tuple[Federator, str, str]:
    """A federator on a backup taken after job a was submitted (Pending, generation 0) and before job b was; the
    agent of cluster c runs both, each at generation 1. The restored federator and the two placement ids."""
    live, backup = MemoryStore(), MemoryStore()
    first = make(live, clock)
    a = first.submit(spec("a"))
    backup.put([a])  # `federator backup`, then b submitted and both placed
    b = first.submit(spec("b"))
    join(first, "c")
    first.schedule_once()
    return make(backup, clock, orphan_grace=GRACE), a.placements[0].placement_id, b.placements[0].placement_id


def test_an_orphan_of_a_job_the_restored_store_holds_is_said_to_be_newer_than_it(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    fed, a, b = _restored(clock)
    job_a = a.split(".g")[0]
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        rec = join(fed, "c", a, b)
    assert cancels_sent(rec) == {}
    assert [r.getMessage() for r in caplog.records] == [
        "cluster c runs 2 placement(s) newer than this federator's store (it holds 1 jobs), 1 of jobs it holds at an "
        f"older generation, 1 of jobs it has no record of; e.g. {a}, whose job {job_a} the store holds as Pending at "
        "generation 0: held, and cancelled after --orphan-grace (1800s), unless the job is placed again on this "
        "cluster first: that placement is generation 1 again, this very id, which the agent runs already (it answers "
        "the Launch with it: the job's own, not run twice). Was --db replaced, deleted or restored from an old backup? "
        "Then stop the federator and restore the right store before that (docs/operators.md)"]  # goagentqa62 M4
    caplog.clear()
    clock.now += GRACE
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        fed.report(rec, capacity(a, b))  # the grace is over
        fed.report(rec, capacity(a, b))  # not said again
    assert cancels_sent(rec) == {
        a: "orphan: the federator's store holds its job only at an older generation (0) (--orphan-grace 1800s)",
        b: "orphan: the federator's store has no record of its job (--orphan-grace 1800s)"}
    assert [r.getMessage().split("; e.g.")[0] for r in caplog.records if "newer than" in r.getMessage()] == [
        "cluster c runs 2 placement(s) newer than this federator's store (it holds 1 jobs), 1 of jobs it holds at an "
        "older generation, 1 of jobs it has no record of"]
    assert caplog.records[-1].getMessage().endswith(": cancelling them now (reported for --orphan-grace, 1800s)")


def test_placed_again_on_the_same_cluster_the_job_takes_the_orphans_very_id_and_nothing_is_cancelled() -> None:
    """What docs/operators.md, "Restoring the store", promises: the job, Pending in the restored store, is placed
    again at the next generation, which on the same cluster is the id the agent already runs ("already here")."""
    clock = Clock()
    fed, a, _ = _restored(clock)
    rec = join(fed, "c", a)
    fed.schedule_once()
    job = fed.jobs[JobId(a.split(".g")[0])]
    assert [p.placement_id for p in job.placements] == [a]
    fed.report(rec, capacity(a))
    assert a not in cancels_sent(rec)


def test_the_warning_says_when_the_restored_job_is_held(caplog: pytest.LogCaptureFixture) -> None:
    """A job released after the backup is held again in the restored store while its work runs (QA new56 N7): the
    WARNING names it and says so, since its owner's `get jobs` shows only Held."""
    clock = Clock()
    live, backup = MemoryStore(), MemoryStore()
    first = make(live, clock)
    a = first.submit(spec("a"))
    backup.put([replace(a, hold=JobHold("admin", clock.now, admin=True))])  # the backup: a held; then released
    join(first, "c")
    first.schedule_once()
    pid = a.placements[0].placement_id
    fed = make(backup, clock, orphan_grace=GRACE)
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        rec = join(fed, "c", pid)
    assert cancels_sent(rec) == {}
    (said,) = [r.getMessage() for r in caplog.records if "newer than" in r.getMessage()]
    assert f"whose job {a.job_id} the store holds as Pending at generation 0 and held (a release since the " \
           "backup is undone; its owner sees only Held: a release adopts this placement, a cancel stops it)" in said
