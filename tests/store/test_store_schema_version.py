"""The store's schema version (store/schema.py): 0.7.0 writes 2, so 0.6.0 and 0.5.0, which read versions up to 1
and drop the fields they do not know when they rewrite a job, refuse its file instead (outside operator QA F1);
a 0.5/0.6 file is taken forward at open, with its jobs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from federator.model import Job, JobId, JobPhase
from federator.store import SqliteJobStore, StoreUnreadable, job_to_dict

from builders import job


def _version(db: Path) -> str:
    c = sqlite3.connect(db)
    try:
        (value,) = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return str(value)
    finally:
        c.close()


def _released_store(db: Path, version: str) -> None:
    """A file as 0.5.0 and 0.6.0 wrote it (their tables, their version), with one running job."""
    c = sqlite3.connect(db)
    c.executescript("""
        PRAGMA journal_mode=WAL;
        CREATE TABLE jobs (job_id TEXT PRIMARY KEY, phase TEXT NOT NULL, doc TEXT NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """)
    c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (version,))
    doc = job_to_dict(Job(JobId("old-1"), job("old"), submitted_at=1.0, phase=JobPhase.RUNNING, generation=2))
    c.execute("INSERT INTO jobs VALUES ('old-1', 'Running', ?)", (json.dumps(doc),))
    c.commit()
    c.close()


def test_a_store_this_code_writes_carries_version_2_which_0_6_refuses(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    SqliteJobStore(db).close()
    # 0.5.0 and 0.6.0 refuse any value above "1": "schema version '2' found, this federator reads versions up to 1"
    assert _version(db) == "2"


def test_a_store_of_0_6_is_taken_forward_at_open_with_its_jobs(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _released_store(db, "1")
    store = SqliteJobStore(db)
    assert [(j.job_id, j.phase, j.generation) for j in store.load()] == [("old-1", JobPhase.RUNNING, 2)]
    assert _version(db) == "2"  # at open, before any job is written: the file now says 0.6 must not open it
    store.close()
    again = SqliteJobStore(db)  # and a second open changes nothing
    assert [j.job_id for j in again.load()] == ["old-1"] and _version(db) == "2"
    again.close()


def test_a_store_of_a_later_release_is_refused_naming_both_versions(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    _released_store(db, "3")
    with pytest.raises(StoreUnreadable) as got:
        SqliteJobStore(db)
    assert str(got.value) == (f"job store {db}: schema version '3' found, this federator reads versions up to 2: use "
                              "the federator that wrote it")
    assert _version(db) == "3"  # untouched
    SqliteJobStore(tmp_path / "other.db").close()  # the refusal released its lock


def test_a_version_no_federator_writes_is_refused_in_one_line(tmp_path: Path) -> None:
    """0.7.0 review: "0" reached the upgrade's steps and ended in a KeyError's traceback."""
    db = tmp_path / "zero.db"
    _released_store(db, "0")
    with pytest.raises(StoreUnreadable, match="schema version 0 found, which no federator writes"):
        SqliteJobStore(db)
    assert _version(db) == "0"  # untouched
