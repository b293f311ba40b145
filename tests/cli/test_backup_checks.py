"""`federator backup` checks its copy and leaves nothing at --to when it fails (outside operator QA F6, F12).

F6: a store with damaged pages was copied page for page and reported as "a consistent copy". F12: a backup
onto a full disk left a 0-byte --to that the next run refused as existing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from damaged_store import damaged_store

from federator.cli import backup as backup_cli
from federator.model import Job, JobId
from federator.store import SqliteJobStore

from builders import job


def _run(db: Path, to: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "federator", "backup", "--db", str(db), "--to", str(to)],
                          capture_output=True, text=True, timeout=60)


def test_a_backup_of_a_damaged_store_fails_and_keeps_no_copy(tmp_path: Path) -> None:
    db = damaged_store(tmp_path / "c.db")
    out_dir = tmp_path / "backups"
    out_dir.mkdir()
    out = _run(db, out_dir / "c-bk.db")
    assert out.returncode == 1, out.stdout
    assert out.stdout == ""
    assert out.stderr.startswith(f"federator backup: the copy of {db} fails SQLite's integrity_check ("), out.stderr
    assert f"it was deleted: {db} itself is damaged" in out.stderr and "A corrupted store" in out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1
    assert list(out_dir.iterdir()) == []  # neither --to nor the temporary copy


class _FullDisk:
    """A store's connection whose online backup writes a little of the copy and then fails as SQLite does when
    the target's disk is full (SQLITE_FULL). A tmpfs of 1 MiB needs root; this needs none."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real = real

    def backup(self, target: sqlite3.Connection) -> None:
        target.execute("CREATE TABLE half_written (x)")  # the copy has pages on disk by now
        raise sqlite3.OperationalError("database or disk is full")

    def close(self) -> None:
        self.real.close()


def test_a_backup_onto_a_full_disk_leaves_nothing_and_the_next_run_writes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "s.db"
    store = SqliteJobStore(db)
    store.put([Job(JobId(f"j-{i}"), job(f"j{i}"), submitted_at=float(i)) for i in range(50)])
    store.close()
    to = tmp_path / "full" / "b.db"
    to.parent.mkdir()
    connect = sqlite3.connect
    monkeypatch.setattr(backup_cli.sqlite3, "connect",  # --db is read through a URI (read-only): "file:...s.db?mode=ro"
                        lambda path, *a, **k: (_FullDisk(connect(path, *a, **k)) if str(db) in str(path)
                                               else connect(path, *a, **k)))
    with pytest.raises(backup_cli.BackupFailed) as got:
        backup_cli.backup(db, to)
    assert str(got.value) == (f"--to: writing the copy in {to.parent} failed: database or disk is full; nothing "
                              "was kept")
    assert list(to.parent.iterdir()) == []  # no 0-byte b.db to block the next run, no partial copy either

    monkeypatch.setattr(backup_cli.sqlite3, "connect", connect)  # room again: the next (cron) run
    assert backup_cli.backup(db, to) == 50
    assert [p.name for p in to.parent.iterdir()] == ["b.db"]
    assert to.stat().st_mode & 0o777 == 0o600  # every job's spec: its owner's only (docs/operators.md)


def test_a_sqlite_file_that_is_no_job_store_is_refused_in_one_line_and_keeps_nothing(tmp_path: Path) -> None:
    """0.7.0 review: a --db that is SQLite but not a federator's store ended in a traceback ("no such table")."""
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()
    out = tmp_path / "out"
    out.mkdir()
    proc = _run(other, out / "copy.db")
    assert proc.returncode == 1
    assert "is not a federator job store" in proc.stderr and "Traceback" not in proc.stderr
    assert list(out.iterdir()) == []


def test_a_backup_is_kept_under_its_name_and_nothing_else_is_left(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.db")
    store.put([Job(JobId("kept"), job("kept"), submitted_at=1.0)])
    store.close()
    out = tmp_path / "out"
    out.mkdir()
    proc = _run(tmp_path / "jobs.db", out / "copy.db")
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in out.iterdir()] == ["copy.db"]  # linked into place, the partial file removed
    assert "1 jobs" in proc.stdout
