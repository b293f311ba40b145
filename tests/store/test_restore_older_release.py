"""A copy an older release runs on (outside upgrade QA U3): `federator restore` of an unmarked copy (a `cp`, or
0.14.0's `federator backup`) restores it unmarked, and a marked copy of schema version 3 that 0.14.0 ran on (0.14.0
keeps the mark) takes its own `-wal` back at the next upgrade; a newer store's `-wal` beside it is still refused.

0.14.0 is played by what it writes: a store of schema version 3 (3 -> 4 changes no table, store/schema.py), its rows
written by a plain SQLite connection in WAL mode that never reads nor removes `meta.backup_taken_at`, and a crash as
SQLite leaves one (the file and its -wal copied while that connection still has them open)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from federator.cli import backup as backup_cli
from federator.cli import main
from federator.model import Job, JobId
from federator.store import SqliteJobStore, StoreUnreadable
from federator.store.restore_checks import backup_mark, schema_version

from builders import job as job_spec
from support import stored_ids


def _rows(tmp_path: Path, *names: str) -> list[tuple[str, str, str]]:
    """The jobs table rows a store writes for `names` (what 0.14.0 writes for them: the document is unchanged)."""
    scratch = tmp_path / "rows" / "db"
    store = SqliteJobStore(scratch)
    store.put([Job(JobId(n), job_spec(n), submitted_at=1.0) for n in names])
    store.close()
    db = sqlite3.connect(scratch)
    try:
        return [tuple(r) for r in db.execute("SELECT job_id, phase, doc FROM jobs ORDER BY job_id")]
    finally:
        db.close()
        shutil.rmtree(scratch.parent)


def _as_0_14(db: Path) -> None:
    """A closed store's file made 0.14.0's: schema version 3, every commit in the file."""
    raw = sqlite3.connect(db)
    raw.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    raw.commit()
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()


def _store_0_14(path: Path, tmp_path: Path, *names: str) -> None:
    store = SqliteJobStore(path)
    store.put([Job(JobId(n), job_spec(n), submitted_at=1.0) for n in names])
    store.close()
    _as_0_14(path)


def _0_14_runs_and_crashes(db: Path, rows: list[tuple[str, str, str]], crashed: Path) -> None:
    """0.14.0 started on `db` takes `rows` and is killed: at `crashed`, the file as it was and the -wal holding them."""
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA wal_autocheckpoint=0")
    raw.executemany("INSERT INTO jobs (job_id, phase, doc) VALUES (?, ?, ?)", rows)
    raw.commit()
    crashed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(db, crashed)
    shutil.copy(f"{db}-wal", f"{crashed}-wal")
    raw.close()


def test_the_rollback_to_0_14_by_restore_then_its_crash_then_the_upgrade_keeps_every_job(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = tmp_path / "live" / "federator.db"
    _store_0_14(live, tmp_path, "quick")
    shutil.copy(live, tmp_path / "pre-016.db")  # 0.14.0's backup: a copy with no snapshot mark
    db = tmp_path / "host" / "federator.db"
    db.parent.mkdir()
    shutil.copy(live, db)

    assert main(["restore", "--from", str(tmp_path / "pre-016.db"), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    # it was "a snapshot taken <the restore's own moment>", written into the file as its mark
    assert "(1 jobs, a snapshot taken at an unknown time: " in out and "records none" in out
    assert backup_mark(db) is None

    _0_14_runs_and_crashes(db, _rows(tmp_path, "job2"), tmp_path / "crashed" / "federator.db")
    # it was refused: "db-wal beside it is another store's", and moving it aside dropped job2
    assert stored_ids(tmp_path / "crashed" / "federator.db") == ["job2", "quick"]


def test_a_marked_copy_0_14_ran_on_takes_its_own_wal_back(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A mark 0.15.0's `federator backup` (or an earlier 0.16.0's restore) put on a schema 3 copy stays while 0.14.0
    runs on it: the mark cannot say that nothing ran on the copy."""
    db = tmp_path / "host" / "federator.db"
    db.parent.mkdir()
    _store_0_14(db, tmp_path, "quick")
    raw = sqlite3.connect(db)
    raw.execute("INSERT INTO meta VALUES ('backup_taken_at', '2026-12-07T01:39:12Z')")
    raw.commit()
    raw.close()
    crashed = tmp_path / "crashed" / "federator.db"
    _0_14_runs_and_crashes(db, _rows(tmp_path, "after-rb"), crashed)
    assert backup_mark(crashed) == "2026-12-07T01:39:12Z"
    caplog.set_level("WARNING", logger="federator.store")
    assert stored_ids(crashed) == ["after-rb", "quick"]
    said = caplog.text
    assert "is taken as the store's own" in said and "may have run on it since" in said
    assert "run on for the first time" not in said  # a claim the start cannot make of a schema 3 copy
    assert backup_mark(crashed) is None and schema_version(crashed, with_wal=True) == 4


def test_a_newer_stores_wal_beside_a_marked_schema_3_copy_is_still_refused(tmp_path: Path) -> None:
    """D3 where it can still be told: a -wal that takes the file to schema 4 was written by 0.15.0 or later."""
    live = tmp_path / "live" / "federator.db"
    _store_0_14(live, tmp_path, "quick")
    raw = sqlite3.connect(live)
    raw.execute("INSERT INTO meta VALUES ('backup_taken_at', '2026-12-07T01:39:12Z')")
    raw.commit()
    raw.close()
    shutil.copy(live, tmp_path / "copy.db")
    upgraded = SqliteJobStore(live)  # main on the store: schema 4, mark removed
    upgraded.put([Job(JobId("post-up"), job_spec("post-up"), submitted_at=1.0)])
    db = tmp_path / "host" / "federator.db"
    db.parent.mkdir()
    shutil.copy(live, db)
    shutil.copy(f"{live}-wal", f"{db}-wal")
    upgraded.close()
    shutil.copy(tmp_path / "copy.db", db)  # the rollback by `cp`, main's crashed -wal forgotten beside it
    with pytest.raises(StoreUnreadable, match="beside it is another store's"):
        SqliteJobStore(db)


def test_backup_marks_a_copy_only_where_every_release_that_runs_it_removes_the_mark(tmp_path: Path) -> None:
    old = tmp_path / "old" / "federator.db"
    _store_0_14(old, tmp_path, "quick")
    assert backup_cli.backup(old, tmp_path / "of-0.14.db") == 1
    assert backup_mark(tmp_path / "of-0.14.db") is None  # 0.14.0 would run on it and keep the mark
    new = tmp_path / "new" / "federator.db"
    store = SqliteJobStore(new)
    store.put([Job(JobId("quick"), job_spec("quick"), submitted_at=1.0)])
    assert backup_cli.backup(new, tmp_path / "of-0.16.db") == 1
    store.close()
    assert backup_mark(tmp_path / "of-0.16.db") is not None


def test_restoring_a_schema_3_copy_0_15_marked_leaves_no_mark_and_says_its_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "pre-015.db"
    _store_0_14(copy, tmp_path, "quick")
    raw = sqlite3.connect(copy)
    raw.execute("INSERT INTO meta VALUES ('backup_taken_at', '2026-12-07T01:39:12Z')")  # 0.15.0's backup of 0.14.0's
    raw.commit()
    raw.close()
    db = tmp_path / "host" / "federator.db"
    db.parent.mkdir()
    assert main(["restore", "--from", str(copy), "--db", str(db)]) == 0
    assert "(1 jobs, a snapshot taken 2026-12-07T01:39:12Z)" in capsys.readouterr().out
    assert backup_mark(db) is None and backup_mark(copy) == "2026-12-07T01:39:12Z"  # the copy only read


def test_a_0_14_stores_wal_older_than_the_marked_copy_put_over_it_is_still_refused(tmp_path: Path) -> None:
    """D3 on 0.14.0's own stores: its crashed -wal (schema 3, as the copy) was written before the copy was `cp`ed
    over the file, which no run on the copy could have done."""
    marked = tmp_path / "copy.db"
    _store_0_14(marked, tmp_path, "quick")
    raw = sqlite3.connect(marked)
    raw.execute("INSERT INTO meta VALUES ('backup_taken_at', '2026-12-07T01:39:12Z')")
    raw.commit()
    raw.close()
    live = tmp_path / "live" / "federator.db"
    _store_0_14(live, tmp_path, "quick")
    db = tmp_path / "host" / "federator.db"
    _0_14_runs_and_crashes(live, _rows(tmp_path, "lost"), db)  # 0.14.0 crashed on the host's store
    shutil.copy(marked, db)  # then the copy put over it, its -wal forgotten
    with pytest.raises(StoreUnreadable, match="beside it is another store's"):
        SqliteJobStore(db)
