"""The embedded job store: one SQLite file in WAL mode.

A job accepted by Submit is committed here before the reply goes out, so a
federator killed at any moment restarts with every accepted job and every
placement it had handed out (the fencing generations included).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from federator.model import Job
from federator.paths import make_parent
from federator.store.codec import job_from_dict, job_to_dict

SCHEMA_VERSION = 1


def open_sqlite(path: Path, *, synchronous: str) -> sqlite3.Connection:
    """A connection to a SQLite file of the federator's (jobs, members, usage: one file, a connection each): WAL,
    so readers never wait for the writer; autocommit, so each store says where its transactions are; usable
    from the group commit's thread. `synchronous`: FULL where a reply promises the write is on disk."""
    if str(path) != ":memory:":
        make_parent(path)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


def write_all(db: sqlite3.Connection, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
    """`sql` for every row in one transaction, all or none (the caller holds the connection's lock)."""
    if not rows:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(sql, rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class JobStore(Protocol):
    def put(self, jobs: Iterable[Job]) -> None:
        """Persist these jobs' current state atomically."""

    def load(self) -> list[Job]: ...

    def close(self) -> None: ...


class SqliteJobStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = open_sqlite(path, synchronous="FULL")  # an accepted job is on disk before the reply
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, phase TEXT NOT NULL, doc TEXT NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def put(self, jobs: Iterable[Job]) -> None:
        rows = [(j.job_id, j.phase.value, json.dumps(job_to_dict(j), separators=(",", ":"))) for j in jobs]
        with self._lock:
            write_all(self._db, "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)", rows)

    def load(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM jobs ORDER BY rowid").fetchall()
        return [job_from_dict(json.loads(doc)) for (doc,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
