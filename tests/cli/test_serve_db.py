"""A --db that cannot be opened is one line naming the flag and the file, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _serve(db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", "serve", "--insecure", "--listen", "127.0.0.1:0",
                           "--metrics-listen", "127.0.0.1:0", "--db", str(db)],
                          capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize(("make", "why"), [
    ("parent is a file", "Not a directory"),
    ("not a database", "file is not a database"),
])
def test_a_db_that_cannot_be_opened_names_the_flag_and_the_file(tmp_path: Path, make: str, why: str) -> None:
    if make == "parent is a file":
        (tmp_path / "file").write_text("")
        db = tmp_path / "file" / "federator.db"
    else:
        db = tmp_path / "federator.db"
        db.write_text("these are not the jobs you are looking for\n" * 100)
    out = _serve(db)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    (line,) = [x for x in out.stderr.splitlines() if x.startswith("--db")]
    assert line.startswith(f"--db: cannot open the job store {db}: ") and why in line
