"""Where usage records live: a `usage` table in a SQLite file, so `federator usage` survives restarts.

The federator's `--db` file holds it (next to the jobs table, its own
connection). In Kubernetes mode jobs live in FederatedJobs, and the usage
table still goes to `--db`: mount a volume there to keep it across pod
restarts (the chart's `usage.persistence`). A record is written when its
placement starts running (open, `end` NULL) and again when it ends.

Closed records older than `federator serve --usage-retention` are deleted (`prune`, driven by
accounting/retention.py), a small batch per call. SQLite does not shrink the file after a delete: the pages
freed are reused by later records, so the file levels off at about one retention's worth of records.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import astuple
from pathlib import Path

from federator.accounting.records import UsageRecord
from federator.store.identity import identity
from federator.store.sqlite import close_sqlite, open_sqlite

_COLUMNS = ("placement_id", "job_id", "queue", "user", "namespace", "cluster", "provider", "model",
            "accelerators_milli", "start", "end_time")


class SqliteUsageStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        # NORMAL in WAL mode: a commit is in the OS before put returns (a killed process loses nothing) but is
        # not fsynced on the event loop; a power cut may lose the last moments of records, never corrupt them.
        self._db = open_sqlite(path, synchronous="NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS usage (placement_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, "
            "queue TEXT NOT NULL, user TEXT NOT NULL, namespace TEXT NOT NULL, cluster TEXT NOT NULL, "
            "provider TEXT NOT NULL, model TEXT NOT NULL, accelerators_milli INTEGER NOT NULL, "
            "start REAL NOT NULL, end_time REAL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS usage_window ON usage (start, end_time)")
        # Records stop (kept by the meter) if the path stops naming this file: store/identity.py. Quiet: the job
        # store says it, and the meter's warning carries the cause in Kubernetes mode, where --db is usage only.
        self.file = identity(path, what="usage records", say=False)

    def put(self, records: list[UsageRecord]) -> None:
        if not records:
            return
        with self._lock:
            if self.file is not None:
                self.file.check()
            self._db.executemany(f"INSERT OR REPLACE INTO usage VALUES ({', '.join('?' * len(_COLUMNS))})",
                                 [astuple(r) for r in records])

    def prune(self, *, ended_before: float, batch: int) -> int:
        """Delete at most `batch` closed records that ended before `ended_before`; how many went. Open records
        (still running) are never deleted. A small batch holds the lock (which `put`, on the event loop, waits
        for) a few milliseconds at most; the caller calls again until fewer than `batch` go."""
        with self._lock:
            if self.file is not None:
                self.file.check()
            # start < cutoff walks the usage_window index (start, end_time): a record that ended before the
            # cutoff started before it too.
            cur = self._db.execute(
                "DELETE FROM usage WHERE rowid IN (SELECT rowid FROM usage WHERE start < ? AND end_time IS NOT "
                "NULL AND end_time < ? LIMIT ?)", (ended_before, ended_before, batch))
            return cur.rowcount

    def open_records(self) -> list[UsageRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM usage WHERE end_time IS NULL").fetchall()
        return [UsageRecord(*row) for row in rows]

    def closed_records(self, placement_ids: Iterable[str]) -> list[UsageRecord]:
        """The closed records of these placements, if any (by the primary key, 500 at a time)."""
        ids, rows = list(placement_ids), []
        with self._lock:
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                rows += self._db.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM usage WHERE end_time IS NOT NULL AND placement_id IN "
                    f"({', '.join('?' * len(part))})", part).fetchall()
        return [UsageRecord(*row) for row in rows]

    def query(self, *, since: float, until: float) -> list[UsageRecord]:
        """Records that overlap [since, until)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM usage WHERE start < ? AND (end_time IS NULL OR end_time > ?) "
                "ORDER BY start", (until, since)).fetchall()
        return [UsageRecord(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            close_sqlite(self._db, self.file)


__all__ = ["SqliteUsageStore"]
