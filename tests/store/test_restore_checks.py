"""A restore the store can tell went wrong stops the start with every file left as it is (store/restore_checks.py;
outside operator DR QA D3, D9), and `federator backup` only ever reads its --db.

A crash is simulated as SQLite leaves one: the file and its -wal copied while the store still has them open."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from federator.cli import backup as backup_cli
from federator.model import Job, JobId
from federator.store import SqliteJobStore, StoreUnreadable
from federator.store.restore_checks import backup_mark

from builders import job as job_spec
from support import sha1_of, stored_ids


def _jobs(*names: str) -> list[Job]:
    return [Job(JobId(n), job_spec(n), submitted_at=1.0) for n in names]


def _crash_copy(db: Path, to: Path) -> None:
    """What a kill -9 of the federator on `db` leaves, at `to`: the file, and its -wal with the commits since the
    last checkpoint."""
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(db, to)
    shutil.copy(f"{db}-wal", f"{to}-wal")




@pytest.fixture
def crashed_after_a_backup(tmp_path: Path) -> tuple[Path, Path]:
    """A store backed up at 3 jobs that took 3 more and crashed: (the backup, the crashed file with its -wal)."""
    live = tmp_path / "a" / "db"
    store = SqliteJobStore(live)
    store.put(_jobs("j1", "j2", "j3"))
    assert backup_cli.backup(live, tmp_path / "backup.db") == 3  # the federator running: its -wal is its own
    store.put(_jobs("j4", "j5", "j6"))
    crashed = tmp_path / "w" / "db"
    _crash_copy(live, crashed)
    store.close()
    return tmp_path / "backup.db", crashed


def test_a_restored_copy_with_the_crashed_stores_wal_beside_it_is_refused_with_every_file_as_it_was(
        crashed_after_a_backup: tuple[Path, Path]) -> None:
    backup, db = crashed_after_a_backup
    shutil.copy(backup, db)  # the restore, the crashed db-wal forgotten beside it
    wal = Path(f"{db}-wal")
    wal_sha = sha1_of(wal)
    with pytest.raises(StoreUnreadable) as got:
        SqliteJobStore(db)
    assert "is a `federator backup` copy (taken 20" in str(got.value)
    assert "Move db-wal and db-shm aside" in str(got.value)
    # it was: "6 jobs loaded" (the crashed store back), or the copy damaged and the -wal merged into it and gone
    assert sha1_of(db) == sha1_of(backup) and sha1_of(wal) == wal_sha

    wal.rename(db.parent / "aside.db-wal")  # the runbook's step
    assert stored_ids(db) == ["j1", "j2", "j3"]
    assert backup_mark(db) is None  # run on once: a -wal beside it from now on is its own


def test_after_its_first_start_a_restored_copy_takes_its_own_wal_back_after_a_crash(tmp_path: Path) -> None:
    live = tmp_path / "a" / "db"
    store = SqliteJobStore(live)
    store.put(_jobs("j1"))
    backup_cli.backup(live, tmp_path / "backup.db")
    store.close()
    db = tmp_path / "b" / "db"
    db.parent.mkdir()
    shutil.copy(tmp_path / "backup.db", db)
    restored = SqliteJobStore(db)
    restored.put(_jobs("j2"))  # accepted after the restore: only in db-wal until a checkpoint
    _crash_copy(db, tmp_path / "c" / "db")
    restored.close()
    assert stored_ids(tmp_path / "c" / "db") == ["j1", "j2"]


def test_checking_a_copy_with_another_stores_wal_beside_it_refuses_and_changes_nothing(
        crashed_after_a_backup: tuple[Path, Path], tmp_path: Path) -> None:
    backup, db = crashed_after_a_backup
    shutil.copy(backup, db)
    wal = Path(f"{db}-wal")
    before = (sha1_of(db), sha1_of(wal))
    with pytest.raises(ValueError, match=r"--db: .*db-wal is beside .*db and no federator runs on it"):
        backup_cli.backup(db, tmp_path / "check.db")  # it was "6 jobs ... integrity_check ok", the copy rewritten
    assert (sha1_of(db), sha1_of(wal)) == before and not (tmp_path / "check.db").exists()

    wal.rename(db.parent / "aside.db-wal")
    assert backup_cli.backup(db, tmp_path / "check.db") == 3
    assert sha1_of(db) == sha1_of(backup)  # only read


def test_a_crashed_stores_own_wal_is_copied_with_own_wal_and_left_where_it_was(
        crashed_after_a_backup: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = crashed_after_a_backup
    wal = Path(f"{db}-wal")
    before = (sha1_of(db), sha1_of(wal))
    assert backup_cli.backup(db, tmp_path / "saved.db", own_wal=True) == 6
    assert (sha1_of(db), sha1_of(wal)) == before
    assert stored_ids(db) == [f"j{i}" for i in range(1, 7)]  # and the crashed store itself still starts with all six


def test_a_zero_byte_db_stops_the_start_and_stays_zero_bytes(tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.touch()  # a restore's cp that died on a full disk; a `> db`
    with pytest.raises(StoreUnreadable, match=r"is an empty file \(0 bytes\), not a job store: .*delete"):
        SqliteJobStore(db)
    assert db.stat().st_size == 0
    with pytest.raises(backup_cli.BackupFailed, match="is not a federator job store"):
        backup_cli.backup(db, tmp_path / "check.db")


def test_the_file_of_a_store_copied_without_its_wal_stops_the_start(tmp_path: Path) -> None:
    live = tmp_path / "a" / "db"
    store = SqliteJobStore(live)
    store.put(_jobs("j1", "j2"))
    nowal = tmp_path / "b" / "db"
    nowal.parent.mkdir()
    shutil.copy(live, nowal)  # a volume snapshot, a backup agent: the file only
    store.close()
    before = sha1_of(nowal)
    with pytest.raises(StoreUnreadable, match=r"exists but holds no job store \(no -wal beside it: a copy of the "
                                              r"file taken without its db-wal"):
        SqliteJobStore(nowal)
    assert sha1_of(nowal) == before


def test_a_store_that_crashed_before_its_first_checkpoint_starts_with_every_job(tmp_path: Path) -> None:
    """Not refused as "no table": the file alone holds none, its own -wal holds the store."""
    live = tmp_path / "a" / "db"
    store = SqliteJobStore(live)
    store.put(_jobs("j1", "j2"))
    _crash_copy(live, tmp_path / "b" / "db")
    store.close()
    assert stored_ids(tmp_path / "b" / "db") == ["j1", "j2"]


def test_a_backup_of_a_store_with_no_job_says_so_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    SqliteJobStore(tmp_path / "db").close()
    args = argparse.Namespace(db=tmp_path / "db", to=tmp_path / "copy.db", own_wal=False)
    assert backup_cli._backup(args) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{tmp_path / 'copy.db'}: 0 jobs")
    assert "WARNING: the copy holds no job" in err and "without its -wal" in err
