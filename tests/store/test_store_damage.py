"""A store with damaged pages stops the start with one line naming the file and the way back (outside operator
QA F6: `serve` died with a bare `sqlite3.DatabaseError` traceback, "database disk image is malformed")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from damaged_store import damaged_store

from federator.store import SqliteJobStore, StoreUnreadable


def test_a_damaged_store_is_refused_at_open_naming_the_file_and_the_recovery(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    db = damaged_store(tmp_path / "f.db")
    with pytest.raises(StoreUnreadable) as got:  # StoreDamaged, its kind for a damaged file
        SqliteJobStore(db)
    said = str(got.value)
    assert said.startswith(f"job store {db} is damaged (")
    assert "\n" not in said
    assert "federator backup --db COPY" in said and f"sqlite3 {db} .recover" in said
    assert f"`federator restore --from COPY --db {db}`" in said
    assert 'docs/reliability.md, "A corrupted store"' in said
    store = SqliteJobStore(good)  # the refusal released the damaged file's lock; a sound copy put there opens
    store.close()
    for leftover in ("-wal", "-shm"):
        Path(f"{db}{leftover}").unlink(missing_ok=True)
    shutil.copy(good, db)
    SqliteJobStore(db).close()


def test_serve_on_a_damaged_store_says_so_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    db = damaged_store(tmp_path / "f.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run([sys.executable, "-m", "federator", "serve", "--insecure", "--db", str(db),
                          "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().startswith(f"job store {db} is damaged ("), out.stderr
    assert out.stderr.strip().count("\n") == 0, out.stderr
