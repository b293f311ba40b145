"""`federator backup` copies the store as one transaction sees it, the WAL's commits included, while it runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from federator.model import Job, JobId
from federator.store import SqliteJobStore, StoreUnreadable

from builders import job as job_spec


def test_a_backup_of_a_running_store_has_every_job_a_copy_of_the_file_misses(tmp_path: Path) -> None:
    db = tmp_path / "federator.db"
    store = SqliteJobStore(db)  # stays open: the federator running, its commits in federator.db-wal
    store.put([Job(job_id=JobId(f"j-{i}"), spec=job_spec(f"j{i}"), submitted_at=float(i)) for i in range(300)])
    assert Path(f"{db}-wal").exists()

    shutil.copy(db, tmp_path / "copied.db")  # what the docs' "back up the file" read as
    # every commit is in the -wal: the file alone holds no table, and a start on it stops (it started empty: DR QA D9)
    with pytest.raises(StoreUnreadable, match="exists but holds no job store"):
        SqliteJobStore(tmp_path / "copied.db")

    out = subprocess.run([sys.executable, "-m", "federator", "backup", "--db", str(db), "--to",
                          str(tmp_path / "backup.db")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "300 jobs" in out.stdout
    restored = SqliteJobStore(tmp_path / "backup.db")
    assert len(restored.load()) == 300
    restored.close()
    store.close()

    again = subprocess.run([sys.executable, "-m", "federator", "backup", "--db", str(db), "--to",
                            str(tmp_path / "backup.db")], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "--to:" in again.stderr and "exists" in again.stderr
