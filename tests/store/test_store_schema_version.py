"""The store's schema version (store/schema.py): 0.7.0 writes 2, so 0.6.0 and 0.5.0, which read versions up to 1
and drop the fields they do not know when they rewrite a job, refuse its file instead (outside operator QA F1);
a 0.5/0.6 file is taken forward at open, with its jobs. 0.8.0 writes 3 (the members' kept facts), which 0.7.0
refuses; a 0.7 file's members are taken forward with them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from federator.model import Job, JobId, JobPhase
from federator.store import SqliteJobStore, StoreUnreadable, job_to_dict
from federator.store.members import Member, SqliteMemberStore

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


def test_a_store_this_code_writes_carries_version_4_which_0_14_refuses(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    SqliteJobStore(db).close()
    # 0.14.0 down to 0.8.0 refuse any value above "3": "schema version '4' found, this federator reads versions up to 3"
    assert _version(db) == "4"


def test_a_store_of_0_6_is_taken_forward_at_open_with_its_jobs(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _released_store(db, "1")
    store = SqliteJobStore(db)
    assert [(j.job_id, j.phase, j.generation) for j in store.load()] == [("old-1", JobPhase.RUNNING, 2)]
    assert _version(db) == "4"  # at open, before any job is written: the file now says 0.6 must not open it
    store.close()
    again = SqliteJobStore(db)  # and a second open changes nothing
    assert [j.job_id for j in again.load()] == ["old-1"] and _version(db) == "4"
    again.close()


def test_a_store_of_a_later_release_is_refused_naming_both_versions(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    _released_store(db, "5")
    with pytest.raises(StoreUnreadable) as got:
        SqliteJobStore(db)
    assert str(got.value) == (f"job store {db}: schema version '5' found, this federator reads versions up to 4: use "
                              "the federator that wrote it")
    assert _version(db) == "5"  # untouched
    SqliteJobStore(tmp_path / "other.db").close()  # the refusal released its lock


def test_a_version_no_federator_writes_is_refused_in_one_line(tmp_path: Path) -> None:
    """0.7.0 review: "0" reached the upgrade's steps and ended in a KeyError's traceback."""
    db = tmp_path / "zero.db"
    _released_store(db, "0")
    with pytest.raises(StoreUnreadable, match="schema version 0 found, which no federator writes"):
        SqliteJobStore(db)
    assert _version(db) == "0"  # untouched


def _store_of_0_7(db: Path) -> None:
    """A file as 0.7.0 wrote it: version 2, its members table of four columns, one member Lost."""
    _released_store(db, "2")
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE members (name TEXT PRIMARY KEY, region TEXT NOT NULL, labels TEXT NOT NULL, "
              "lost INTEGER NOT NULL)")
    c.execute("INSERT INTO members VALUES ('east-1', 'east', '{\"tier\": \"a\"}', 0), ('west-1', 'west', '{}', 1)")
    c.commit()
    c.close()


def test_a_store_of_0_7_is_taken_forward_with_its_members_in_one_step(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "seven.db"
    _store_of_0_7(db)
    with caplog.at_level("INFO", logger="federator.store"):
        SqliteJobStore(db).close()
    assert _version(db) == "4"
    said = [r.getMessage() for r in caplog.records if "taken forward" in r.getMessage()]
    assert len(said) == 1 and "schema version 2 taken forward to 4" in said[0] and "older than 0.15.0" in said[0]
    members = SqliteMemberStore(db)
    # 0.7.0's members, nothing known of their new facts yet
    assert members.load() == [Member("east-1", "east", {"tier": "a"}), Member("west-1", "west", {}, lost=True)]
    kept = Member("east-1", "east", {"tier": "a"}, features=frozenset({"resize"}), certificate_not_after=1.9e9,
                  resizes_owed=frozenset({"chat-1.g1.east-1"}))
    members.put([kept])
    members.close()
    assert SqliteMemberStore(db).load()[0] == kept


def test_a_failed_step_3_leaves_the_0_7_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One transaction: a step that fails half-way (a column added, the next refused) leaves version 2 and the old
    members table, which 0.7.0 still opens."""
    from federator.store import schema

    db = tmp_path / "seven.db"
    _store_of_0_7(db)
    # after the four columns, one SQLite refuses: NOT NULL with no default
    monkeypatch.setitem(schema.MEMBER_COLUMNS, "broken", "TEXT NOT NULL")
    with pytest.raises(sqlite3.OperationalError):
        SqliteJobStore(db)
    assert _version(db) == "2"
    c = sqlite3.connect(db)
    assert [row[1] for row in c.execute("PRAGMA table_info(members)")] == ["name", "region", "labels", "lost"]
    c.close()


_COLUMNS_0_9 = "name, region, labels, lost, features, certificate_not_after, lost_at, resizes_owed"


def _store_of_0_9(db: Path) -> None:
    """A file as 0.8.0 and 0.9.0 wrote it: version 3, its members table of eight columns, one member."""
    _released_store(db, "3")
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE members (name TEXT PRIMARY KEY, region TEXT NOT NULL, labels TEXT NOT NULL, "
              "lost INTEGER NOT NULL, features TEXT NOT NULL DEFAULT '[]', certificate_not_after REAL NOT NULL "
              "DEFAULT 0, lost_at REAL NOT NULL DEFAULT 0, resizes_owed TEXT NOT NULL DEFAULT '[]')")
    c.execute(f"INSERT INTO members ({_COLUMNS_0_9}) VALUES ('east-1', 'east', '{{}}', 0, '[\"resize\"]', 1.9e9, 0, "
              "'[]')")
    c.commit()
    c.close()


def test_a_store_of_0_9_gets_the_last_report_column_and_a_row_written_as_0_9_does_takes_its_default(
        tmp_path: Path) -> None:
    """0.10.0 keeps each member's last report time (store/members.py) in a column of its own, within version 3:
    0.8.0 and 0.9.0 name the columns they read and write, so they ran on such a file (a rollback to them from 0.10
    to 0.14), and a row they write takes the column's default, nothing known. From 0.15.0 the file is version 4,
    which they refuse; the column and its default stand."""
    db = tmp_path / "nine.db"
    _store_of_0_9(db)
    SqliteJobStore(db).close()
    members = SqliteMemberStore(db)
    assert members.load() == [Member("east-1", "east", {}, features=frozenset({"resize"}), certificate_not_after=1.9e9)]
    members.put([Member("east-1", "east", {}, features=frozenset({"resize"}), certificate_not_after=1.9e9,
                        last_report_at=1_796_520_000.0)])
    members.close()
    assert _version(db) == "4"  # 0.15.0 took it forward: 0.9.0 (up to 3) now refuses it
    assert SqliteMemberStore(db).load()[0].last_report_at == 1_796_520_000.0
    c = sqlite3.connect(db)  # what 0.9.0 does with the members table: its own columns, by name
    assert c.execute(f"SELECT {_COLUMNS_0_9} FROM members").fetchall() == [
        ("east-1", "east", "{}", 0, '["resize"]', 1.9e9, 0.0, "[]")]
    c.execute(f"INSERT OR REPLACE INTO members ({_COLUMNS_0_9}) VALUES ('west-1', 'west', '{{}}', 0, '[]', 0, 0, "
              "'[]')")
    c.commit()
    c.close()
    assert [m.last_report_at for m in SqliteMemberStore(db).load()] == [1_796_520_000.0, 0.0]
