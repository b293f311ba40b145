"""A store whose --db file is deleted or replaced under it refuses writes, and a new store says it is new.

Outside SRE F1: `rm fed.db` under a running federator, and 300 Submits were acknowledged into the unlinked file
and lost at the next start, with no log line.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from federator.accounting import SqliteUsageStore
from federator.accounting.records import UsageRecord
from federator.cli import backup as backup_cli
from federator.model import Job, JobId
from federator.store import SqliteJobStore
from federator.store.errors import StoreFileGone, StoreUnavailable
from federator.store.members import Member, SqliteMemberStore
from federator.store.reservation_clocks import ReservationClock, SqliteReservationClockStore

from builders import job


def _job(name: str) -> Job:
    return Job(JobId(name), job(name), submitted_at=1.0)


def _deleted(db: Path) -> None:
    db.unlink()


def _replaced(db: Path) -> None:
    other = db.with_name("other.db")
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    os.replace(other, db)


@pytest.mark.parametrize(("lose", "said"), [(_deleted, "deleted"), (_replaced, "replaced by another file")],
                         ids=["deleted", "replaced"])
def test_a_job_store_whose_file_is_lost_refuses_writes_naming_the_path_and_says_it_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, lose: object, said: str) -> None:
    db = tmp_path / "fed.db"
    store = SqliteJobStore(db)
    store.put([_job("before")])
    caplog.clear()  # the new store's warning
    lose(db)  # type: ignore[operator]
    with caplog.at_level(logging.INFO, logger="federator.store"):
        for _ in range(3):
            with pytest.raises(StoreFileGone) as got:
                store.put([_job("during")])
        with pytest.raises(StoreFileGone):
            store.delete([JobId("before")])
    assert isinstance(got.value, StoreUnavailable)  # a Submit hears UNAVAILABLE: nothing was stored
    assert str(got.value).startswith(f"the job store file {db} was {said} while the federator ran: nothing is "
                                     "stored from now on")
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert caplog.records[0].getMessage().startswith(f"the job store file {db} was {said} while the federator ran")
    store.close()


def test_the_error_says_to_keep_the_federator_running_and_which_descriptor_to_copy(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Outside QA F11: the ERROR said "stop the federator, put back the right file (or restore a backup)", the
    opposite of the runbook: after `rm` there is no right file, and a stop closes the only copy of every job
    acknowledged since the backup. It now names this process's pid and the descriptors of the open file and its
    -wal, and the commands it prints save every job."""
    db = tmp_path / "fed.db"
    store = SqliteJobStore(db)
    store.put([_job("before")])
    store.put([_job("after")])  # the -wal holds it: the copy must take the -wal too
    caplog.clear()
    db.unlink()
    with caplog.at_level(logging.ERROR, logger="federator.store"), pytest.raises(StoreFileGone):
        store.put([_job("during")])
    said = caplog.records[0].getMessage()
    assert "stop" not in said.lower()
    assert f"Keep the federator (pid {os.getpid()}) running" in said
    assert "docs/operators.md, 'The store file was deleted or replaced'" in said
    copy = re.search(r"`mkdir -p SAFE && cp (/proc/\d+/fd/\d+) SAFE/fed.db && cp (\S+) SAFE/fed.db-wal && "
                     r"federator backup --db SAFE/fed.db --own-wal --to SAFE/restored.db`", said)
    assert copy is not None, said
    assert copy[1].startswith(f"/proc/{os.getpid()}/fd/") and copy[2].startswith(f"/proc/{os.getpid()}/fd/")
    assert f"{copy[1]} -> {db} (deleted)" in said
    safe = tmp_path / "safe"
    safe.mkdir()
    shutil.copyfile(copy[1], safe / "fed.db")
    shutil.copyfile(copy[2], safe / "fed.db-wal")
    # the command as said: the -wal beside SAFE/fed.db is its own (no federator holds that copy: --own-wal)
    assert backup_cli.backup(safe / "fed.db", safe / "restored.db", own_wal=True) == 2
    saved = SqliteJobStore(safe / "restored.db")
    assert sorted(j.job_id for j in saved.load()) == ["after", "before"]
    saved.close()
    store.close()


def test_a_file_put_back_is_written_again(tmp_path: Path) -> None:
    """Moved away and back (the same file): nothing was lost, so the store takes writes again."""
    db = tmp_path / "fed.db"
    store = SqliteJobStore(db)
    os.rename(db, tmp_path / "aside.db")
    with pytest.raises(StoreFileGone):
        store.put([_job("a")])
    os.rename(tmp_path / "aside.db", db)
    store.put([_job("a")])
    store.close()
    again = SqliteJobStore(db)
    assert [j.job_id for j in again.load()] == ["a"]
    again.close()


def test_the_member_and_usage_stores_of_the_file_refuse_too(tmp_path: Path) -> None:
    """They share the file (the reservations' clocks too): a write of theirs would land in the lost one, and keep
    it changing under an operator copying it out of the running process (docs/operators.md)."""
    db = tmp_path / "fed.db"
    jobs, members, usage = SqliteJobStore(db), SqliteMemberStore(db), SqliteUsageStore(db)
    clocks = SqliteReservationClockStore(db)
    db.unlink()
    with pytest.raises(StoreFileGone, match="member store file"):
        members.put([Member("c", "r")])
    with pytest.raises(StoreFileGone, match="usage records file"):
        usage.put([UsageRecord("p", "j", "q", "u", "ns", "c", "", "H100", 1000, 1.0, None)])
    with pytest.raises(StoreFileGone, match="reservation store file"):
        clocks.put([ReservationClock(JobId("gang"), rests_until=1.0)])
    for s in (members, usage, clocks, jobs):
        s.close()


def test_a_store_created_at_a_path_with_no_file_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "typo.db"
    with caplog.at_level(logging.WARNING, logger="federator.store"):
        store = SqliteJobStore(db)
    store.close()
    assert store.created
    assert [r.getMessage() for r in caplog.records] == [
        f"creating a new, empty job store at {db}: no file was there. If this federator ran before, --db names the "
        "wrong path (its jobs, and what its agents run, are unknown to this store)"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="federator.store"):
        again = SqliteJobStore(db)
    again.close()
    assert not again.created and not caplog.records


def test_closing_a_store_whose_file_was_replaced_leaves_its_wal_off_the_new_file(tmp_path: Path) -> None:
    """SQLite left the lost file's -wal at the path, and the next start applied its pages to the file there: a
    backup restored under a running federator read back the jobs it did not have (or was corrupted)."""
    db = tmp_path / "fed.db"
    store = SqliteJobStore(db)
    store.put([_job("in-the-lost-file")])
    restored = SqliteJobStore(tmp_path / "backup.db")
    restored.put([_job("in-the-backup")])
    restored.close()
    os.replace(tmp_path / "backup.db", db)
    store.close()
    again = SqliteJobStore(db)
    assert [j.job_id for j in again.load()] == ["in-the-backup"]
    again.close()


def test_a_lost_wal_is_copied_into_the_file_and_then_writes_are_refused(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Outside QA, chaos F3: the -wal deleted under a running federator, and at the next crash every job acknowledged
    since the last checkpoint was gone (20 of 20), without a log line. Now what the lost -wal holds is copied into
    the file (the store's connection still has it open) as soon as it is seen, and writes stop."""
    db = tmp_path / "fed.db"
    store = SqliteJobStore(db)
    store.put([_job("a"), _job("b")])
    wal = Path(f"{db}-wal")
    assert wal.exists()
    wal.unlink()
    with caplog.at_level(logging.ERROR, logger="federator.store"):
        assert store.rescue()
    crashed = tmp_path / "after-a-crash.db"  # what a start after a crash reads: the file, no -wal beside it
    crashed.write_bytes(db.read_bytes())
    again = SqliteJobStore(crashed)
    assert sorted(j.job_id for j in again.load()) == ["a", "b"]
    again.close()
    with pytest.raises(StoreFileGone) as refused:
        store.put([_job("c")])
    assert "left without its -wal file (deleted or replaced)" in str(refused.value)
    assert "every job it held is now in the file itself" in caplog.text
    store.close()
