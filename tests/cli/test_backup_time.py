"""`federator backup` says when its copy was taken, so the jobs a restore loses can be listed from the audit log
(its submits since then): outside DR QA, D8, the copy's moment was left to guess."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from federator.model import Job, JobId
from federator.store import SqliteJobStore

from builders import job as job_spec


def test_backup_prints_the_moments_its_snapshot_lies_between(tmp_path: Path) -> None:
    db = tmp_path / "federator.db"
    store = SqliteJobStore(db)
    store.put([Job(job_id=JobId("j-1"), spec=job_spec("j1"), submitted_at=1.0)])
    before = datetime.now(UTC)
    out = subprocess.run([sys.executable, "-m", "federator", "backup", "--db", str(db), "--to",
                          str(tmp_path / "backup.db")], capture_output=True, text=True, timeout=60)
    after = datetime.now(UTC)
    store.close()
    assert out.returncode == 0, out.stderr
    m = re.search(r"the store as of a moment between (\S+) and (\S+): jobs accepted since the first may be missing",
                  out.stdout)
    assert m, out.stdout
    began, ended = (datetime.fromisoformat(t) for t in m.groups())
    assert began.tzinfo is not None and before <= began <= ended <= after
    assert "1 jobs (a consistent copy of" in out.stdout
