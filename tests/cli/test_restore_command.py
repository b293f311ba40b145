"""`federator restore --from COPY --db DB` (cli/restore.py): the host runbook in one step, in the safe order
(outside operator DR QA D3): the crashed store and its -wal kept aside, never applied to the copy; COPY only read."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from federator.cli import backup as backup_cli
from federator.cli import main
from federator.model import Job, JobId
from federator.store import SqliteJobStore

from builders import job as job_spec
from support import sha1_of, stored_ids

NOW = datetime(2026, 12, 6, 21, 43, 0, tzinfo=UTC)




@pytest.fixture
def crashed(tmp_path: Path) -> tuple[Path, Path]:
    """(a backup of 2 jobs, the file and -wal of the store that took 2 more and crashed), as a host holds them."""
    live = tmp_path / "live" / "db"
    store = SqliteJobStore(live)
    store.put([Job(JobId(n), job_spec(n), submitted_at=1.0) for n in ("j1", "j2")])
    backup_cli.backup(live, tmp_path / "backup.db")
    store.put([Job(JobId(n), job_spec(n), submitted_at=1.0) for n in ("j3", "j4")])
    db = tmp_path / "host" / "federator.db"
    db.parent.mkdir()
    shutil.copy(live, db)
    shutil.copy(f"{live}-wal", f"{db}-wal")
    store.close()
    return tmp_path / "backup.db", db


def test_restore_keeps_the_crashed_store_aside_and_the_copy_as_it_was(
        crashed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    backup, db = crashed
    before = sha1_of(backup)
    wal = Path(f"{db}-wal").read_bytes()
    assert main(["restore", "--from", str(backup), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{db}: restored from {backup} (2 jobs, a snapshot taken 20") and "replaced-" in out
    (aside,) = db.parent.glob("federator.db.replaced-*")
    assert sorted(p.name for p in aside.iterdir()) == ["federator.db", "federator.db-wal"]
    assert (aside / "federator.db-wal").read_bytes() == wal
    assert not Path(f"{db}-wal").exists()
    assert sha1_of(backup) == before  # copied, never moved nor written
    assert stored_ids(db) == ["j1", "j2"]  # the backup's jobs, not the crashed store's four
    assert stored_ids(aside / "federator.db") == ["j1", "j2", "j3", "j4"]  # and those kept, with their -wal


def test_restore_refuses_while_a_federator_runs_on_the_store(crashed: tuple[Path, Path],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    backup, db = crashed
    Path(f"{db}-wal").unlink()
    db.unlink()
    running = SqliteJobStore(db)  # a federator on the host's store
    try:
        assert main(["restore", "--from", str(backup), "--db", str(db)]) == 1
    finally:
        running.close()
    assert "is in use by another federator" in capsys.readouterr().err
    assert sorted(p.name for p in db.parent.iterdir() if not p.name.endswith(".lock")) == ["federator.db"]


def test_a_copy_that_fails_its_check_changes_nothing(crashed: tuple[Path, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _, db = crashed
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"")  # a copy that died on a full disk
    before = sha1_of(db), sha1_of(Path(f"{db}-wal"))
    assert main(["restore", "--from", str(bad), "--db", str(db)]) == 1
    assert "is not a federator job store" in capsys.readouterr().err
    assert sorted(p.name for p in db.parent.iterdir()) == ["federator.db", "federator.db-wal", "federator.db.lock"]
    assert (sha1_of(db), sha1_of(Path(f"{db}-wal"))) == before
