"""A placement cancelled while its member was Partitioned is still awaited after a standalone restart: its usage
record ends when the member's word comes, not at the cancel for good (server/silent_cancels.py,
store/silent_cancels.py).

Before 0.11.0 the wait was in memory: a federator restarted before the word came left the record at the cancel,
billing the tenant the time nobody vouched for, and a window holding it read complete. Each test runs a federator on
a real SQLite file (jobs, members, usage and the awaited ends in one, as `federator serve --db`), drops it without a
goodbye (stores closed for the file lock, nothing else; the loop's last turn wrote the members), and opens a second
one on the same file, over a fake clock: the job Running from 10 on east, whose last report is at 50, Partitioned
from 61, cancelled at 80.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from full_disk import FullDisk

from federator.accounting import SqliteUsageStore
from federator.model import ClusterState, JobPhase
from federator.server.federator import Federator
from federator.store.silent_cancels import AwaitedEnd, SqliteSilentCancelStore
from tests.accounting.test_usage_requeued import LEASE, LOST_AFTER, Clock, join, report, running_job, start
from tests.accounting.test_usage_silent_cancel import CANCEL, LAST_REPORT, incomplete, span


def attached(db: Path, fed: Federator) -> SqliteSilentCancelStore:
    """The awaited ends' store as `serve` attaches it, after the members and the usage meter (server/app.py)."""
    store = SqliteSilentCancelStore(db)
    fed.silent_cancels.attach(store, now=fed.clock())
    return store


def dropped(fed: Federator, usage: SqliteUsageStore, store: SqliteSilentCancelStore) -> None:
    """SIGKILL, as far as the file is concerned: the members the loop's last turn wrote, every lock released."""
    fed.membership.flush()
    fed.cycles.close()
    fed.store.close()  # type: ignore[attr-defined]
    fed.membership.store.close()  # type: ignore[union-attr]
    store.close()
    usage.close()


def restarted(db: Path, clock: Clock) -> tuple[Federator, SqliteUsageStore, SqliteSilentCancelStore]:
    fed, usage = start(db, clock)
    return fed, usage, attached(db, fed)


def cancelled_before_a_restart(tmp_path: Path, clock: Clock) -> tuple[
        Federator, SqliteUsageStore, SqliteSilentCancelStore, str]:
    """`silent` with the store attached before the cancel, then the federator dropped at 100 and started again."""
    db = tmp_path / "db"
    fed, usage, job_id, pid = silent_attached(db, clock)
    assert span(usage, pid) == (10.0, CANCEL)
    clock.now = 100.0
    dropped(fed, usage, fed.silent_cancels._store)  # type: ignore[arg-type]
    clock.now = 110.0
    fed, usage, store = restarted(db, clock)
    assert fed.jobs[job_id].phase is JobPhase.CANCELLED  # type: ignore[index]
    return fed, usage, store, pid


def silent_attached(db: Path, clock: Clock) -> tuple[Federator, SqliteUsageStore, str, str]:
    """`silent` (test_usage_silent_cancel.py) on a federator whose store is attached from its start, as `serve`'s."""
    fed, usage, job_id = running_job(db, clock)
    attached(db, fed)
    (p,) = fed.jobs[job_id].placements  # type: ignore[index]
    clock.now = LAST_REPORT
    report(fed, "east", p.placement_id)
    clock.now = LAST_REPORT + LEASE + 1
    fed.check_leases()
    assert fed.clusters["east"].state is ClusterState.PARTITIONED
    clock.now = CANCEL
    fed.cancel(job_id)
    return fed, usage, job_id, p.placement_id


def test_the_end_its_agent_says_after_a_restart_still_shortens_the_record(tmp_path: Path) -> None:
    clock = Clock()
    fed, usage, store, pid = cancelled_before_a_restart(tmp_path, clock)
    assert store.load() == [AwaitedEnd("east", pid, CANCEL)]
    assert fed.clusters["east"].state is ClusterState.PARTITIONED  # expected back
    assert pid in fed.silent_cancels
    assert span(usage, pid) == (10.0, CANCEL)  # for now
    assert asyncio.run(incomplete(fed, usage, 0.0, 85.0))  # and the window says its end may yet move
    clock.now = 120.0
    fed.connect(cluster="east", region="east", labels={})  # its agent is back: it fenced the placement at 70
    fed.job_update(fed.clusters["east"], pid, JobPhase.CANCELLED, "fenced: cut off", ended_at=70.0)
    assert span(usage, pid) == (10.0, 70.0)
    assert not asyncio.run(incomplete(fed, usage, 0.0, 85.0))
    assert store.load() == []  # known: a third start waits for nothing
    dropped(fed, usage, store)
    fed, usage, store = restarted(tmp_path / "db", clock)
    assert pid not in fed.silent_cancels and not fed.silent_cancels
    assert span(usage, pid) == (10.0, 70.0)
    dropped(fed, usage, store)


def test_a_member_never_back_after_a_restart_dates_it_at_its_last_report_kept(tmp_path: Path) -> None:
    clock = Clock()
    fed, usage, store, pid = cancelled_before_a_restart(tmp_path, clock)
    assert fed.clusters["east"].last_report_at == 50.0  # kept with the member (store/members.py)
    clock.now += LOST_AFTER + 1
    fed.check_leases()
    assert fed.clusters["east"].state is ClusterState.LOST
    assert span(usage, pid) == (10.0, 50.0)
    assert store.load() == [] and not fed.silent_cancels
    dropped(fed, usage, store)


def test_a_report_after_a_restart_that_no_longer_lists_it_dates_it_at_the_report_before(tmp_path: Path) -> None:
    clock = Clock()
    fed, usage, store, pid = cancelled_before_a_restart(tmp_path, clock)
    clock.now = 120.0
    join(fed, "east")  # back, and its first report does not list the placement: gone by the report before (50)
    assert span(usage, pid) == (10.0, 50.0)
    assert store.load() == []
    dropped(fed, usage, store)


def test_an_awaited_end_whose_member_was_forgotten_stays_at_the_cancel(tmp_path: Path) -> None:
    """A row of a cluster no member has any more (forgotten while the federator was down, or a row older than
    that): nothing will say its end, so the record keeps the cancel, and the row goes."""
    clock = Clock()
    db = tmp_path / "db"
    fed, usage, _, pid = silent_attached(db, clock)
    store = fed.silent_cancels._store
    assert isinstance(store, SqliteSilentCancelStore)
    store.put([AwaitedEnd("gone-1", "gone-placement", 70.0)])
    dropped(fed, usage, store)
    fed, usage, store = restarted(db, clock)
    assert "gone-placement" not in fed.silent_cancels and pid in fed.silent_cancels
    assert store.load() == [AwaitedEnd("east", pid, CANCEL)]
    assert span(usage, pid) == (10.0, CANCEL)
    dropped(fed, usage, store)


def test_a_full_disk_at_the_cancel_keeps_the_wait_in_memory_and_the_cancel_stands(tmp_path: Path,
                                                                                  caplog: pytest.LogCaptureFixture
                                                                                  ) -> None:
    """The row is written after the cancel is stored: refused (SQLite's "database or disk is full"), the cancel
    stands, the wait goes on in memory as before 0.11.0, and the refusal is said once."""
    clock = Clock()
    db = tmp_path / "db"
    fed, usage, job_id = running_job(db, clock)
    store = attached(db, fed)
    disk = FullDisk(store)
    (p,) = fed.jobs[job_id].placements  # type: ignore[index]
    clock.now = LAST_REPORT
    report(fed, "east", p.placement_id)
    clock.now = LAST_REPORT + LEASE + 1
    fed.check_leases()
    clock.now = CANCEL
    disk.full = True
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        fed.cancel(job_id)
    assert fed.jobs[job_id].phase is JobPhase.CANCELLED  # type: ignore[index]
    assert disk.refused == 1 and store.load() == []
    assert p.placement_id in fed.silent_cancels
    assert [r.message for r in caplog.records if "silent member" in r.message] == [
        "cannot keep the placements cancelled on a silent member in the store (silent cancel store: database or "
        "disk is full): a restart before their end is known leaves their usage ending at the cancel"]
    disk.full = False
    clock.now = 120.0
    fed.connect(cluster="east", region="east", labels={})
    fed.job_update(fed.clusters["east"], p.placement_id, JobPhase.CANCELLED, "fenced: cut off", ended_at=70.0)
    assert span(usage, p.placement_id) == (10.0, 70.0)  # the word still counts
    dropped(fed, usage, store)
