"""The job store under faults: a full disk, a second federator, a file it cannot read.

Each failure is one line naming its cause (the db, the row, the version), never a traceback, and
nothing stored before it is lost.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from full_disk import FullDisk

from federator.model import Job, JobId, JobPhase
from federator.store import SqliteJobStore, StoreInUse, StoreUnavailable, StoreUnreadable, job_to_dict

from builders import job


def _job(name: str) -> Job:
    return Job(JobId(f"{name}-1"), job(name), submitted_at=1.0)


@pytest.mark.parametrize("at", ["COMMIT", "INSERT"])
def test_a_full_disk_is_store_unavailable_naming_it_and_loses_nothing_stored(tmp_path: Path, at: str) -> None:
    store = SqliteJobStore(tmp_path / "f.db")
    store.put([_job("before")])
    disk = FullDisk(store, at=at)
    disk.full = True
    with pytest.raises(StoreUnavailable) as got:
        store.put([_job("during")])
    assert str(got.value) == "job store: database or disk is full"  # the cause, not "cannot rollback"
    assert not disk.in_transaction
    disk.full = False
    store.put([_job("after")])  # the connection is usable again once the disk is
    store.close()
    reopened = SqliteJobStore(tmp_path / "f.db")
    assert [j.job_id for j in reopened.load()] == ["before-1", "after-1"]
    reopened.close()


def test_a_second_store_on_one_file_is_refused_and_a_closed_one_frees_it(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    first = SqliteJobStore(db)
    with pytest.raises(StoreInUse) as got:
        SqliteJobStore(db)
    assert str(got.value) == f"--db {db} is in use by another federator (pid {os.getpid()})"
    first.close()
    second = SqliteJobStore(db)  # a restart from the store in one process: closed properly, free again
    second.close()
    memory = [SqliteJobStore(Path(":memory:")) for _ in range(2)]  # private to each: no lock
    for store in memory:
        store.close()


def test_a_killed_holder_never_blocks_the_next_start(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from federator.store import SqliteJobStore; "
        f"SqliteJobStore(Path({str(db)!r})); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreInUse, match=rf"in use by another federator \(pid {holder.pid}\)"):
            SqliteJobStore(db)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    SqliteJobStore(db).close()  # the kernel released the lock with the process


def _stored(tmp_path: Path, *jobs: Job) -> Path:
    db = tmp_path / "f.db"
    store = SqliteJobStore(db)
    store.put(jobs)
    store.close()
    return db


def _edit(db: Path, sql: str) -> None:
    with sqlite3.connect(db) as c:
        c.execute(sql)
    c.close()


def test_a_truncated_document_stops_the_load_naming_the_row(tmp_path: Path) -> None:
    db = _stored(tmp_path, _job("a"), _job("b"))
    _edit(db, "UPDATE jobs SET doc = substr(doc, 1, 40) WHERE job_id = 'b-1'")
    store = SqliteJobStore(db)
    with pytest.raises(StoreUnreadable) as got:
        store.load()
    store.close()
    assert str(got.value).startswith(f"job store {db}: row 2 (job 'b-1') cannot be read: its document is not JSON")
    assert "\n" not in str(got.value)


def test_a_document_missing_a_key_stops_the_load_naming_the_row_and_key(tmp_path: Path) -> None:
    doc = job_to_dict(_job("a"))
    del doc["spec"]
    db = _stored(tmp_path, _job("ok"))
    _edit(db, f"INSERT INTO jobs VALUES ('a-1', 'Pending', '{json.dumps(doc)}')")
    store = SqliteJobStore(db)
    with pytest.raises(StoreUnreadable, match=rf"^job store {db}: row 2 \(job 'a-1'\) cannot be read: "
                                              "its document has no 'spec'; "):
        store.load()
    store.close()


def test_a_jobs_table_of_another_layout_is_refused_at_open(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _edit(db, "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, phase TEXT NOT NULL, spec TEXT)")
    with pytest.raises(StoreUnreadable, match=rf"^job store {db}: its jobs table has no column doc "
                                              r"\(it has job_id, phase, spec\)"):
        SqliteJobStore(db)
    SqliteJobStore(tmp_path / "new.db").close()  # the refused open released its lock and connection


def test_a_newer_schema_version_is_refused_naming_both_versions(tmp_path: Path) -> None:
    db = _stored(tmp_path, _job("a"))
    _edit(db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreUnreadable, match=rf"^job store {db}: schema version '99' found, this federator "
                                              "reads versions up to 4"):
        SqliteJobStore(db)
    _edit(db, "UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store = SqliteJobStore(db)  # and the lock went with the refusal
    assert [j.phase for j in store.load()] == [JobPhase.PENDING]
    store.close()


def _serve(db: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    return subprocess.Popen([sys.executable, "-m", "federator", "serve", "--insecure", "--db", str(db),
                             "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_serve_on_a_corrupt_store_or_a_store_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    db = _stored(tmp_path, _job("a"))
    _edit(db, "UPDATE jobs SET doc = '{\"job_id\": ' WHERE job_id = 'a-1'")
    _, err = _serve(db).communicate(timeout=60)
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert err.strip().startswith(f"job store {db}: row 1 (job 'a-1') cannot be read"), err

    (tmp_path / "good").mkdir()
    good = _stored(tmp_path / "good", _job("b"))
    first = _serve(good)
    try:
        deadline = time.monotonic() + 60
        while "federator serving" not in (line := first.stderr.readline() if first.stderr else ""):
            assert line and time.monotonic() < deadline, "the first federator did not start"
        second = _serve(good)
        _, err = second.communicate(timeout=60)
        assert second.returncode != 0
        assert err.strip() == f"--db {good} is in use by another federator (pid {first.pid})"
    finally:
        first.terminate()
        first.wait(timeout=30)
