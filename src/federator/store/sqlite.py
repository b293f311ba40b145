"""The embedded job store: one SQLite file in WAL mode.

A job accepted by Submit is committed here before the reply goes out, so a
federator killed at any moment restarts with every accepted job and every
placement it had handed out (the fencing generations included).
"""

from __future__ import annotations

import errno
import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from federator.model import Job
from federator.store.codec import job_from_dict, job_to_dict

SCHEMA_VERSION = 1


class JobStore(Protocol):
    def put(self, jobs: Iterable[Job]) -> None:
        """Persist these jobs' current state atomically."""

    def load(self) -> list[Job]: ...

    def close(self) -> None: ...


class SqliteJobStore:
    def __init__(self, path: Path) -> None:
        if path.parent.exists() and not path.parent.is_dir():  # mkdir would say "File exists", naming no problem
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path.parent))
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, phase TEXT NOT NULL, doc TEXT NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def put(self, jobs: Iterable[Job]) -> None:
        rows = [(j.job_id, j.phase.value, json.dumps(job_to_dict(j), separators=(",", ":"))) for j in jobs]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def load(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM jobs ORDER BY rowid").fetchall()
        return [job_from_dict(json.loads(doc)) for (doc,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
