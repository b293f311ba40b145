"""Quarantined member clusters, kept in the SQLite file beside the jobs (server/quarantine_store.py says why).

One row per quarantined cluster, with its end (Unix seconds) and its reason; an end, a lift (uncordon) or the
cluster forgotten deletes it. A write is synchronous=FULL, as a cordon's: a quarantine that a power cut undid
would send the next tenants' jobs to a black hole again. In Kubernetes mode the MemberClusters' annotations hold
quarantines instead (backends/kube/quarantines.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

from federator.model.quarantine import Held
from federator.store.identity import identity
from federator.store.sqlite import close_sqlite, open_sqlite, write_all


class SqliteQuarantineStore:
    """QuarantineStore (server/quarantine_store.py) over the `quarantines` table of the SQLite file."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_sqlite(path, synchronous="FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS quarantines (cluster TEXT PRIMARY KEY, until REAL NOT NULL, "
                         "reason TEXT NOT NULL)")
        self.file = identity(path, what="quarantine store", say=False)  # the job store's says it (identity.py)

    def put(self, cluster: str, held: Held | None) -> None:
        with self._lock:
            if self.file is not None:
                self.file.check()
            if held is None:
                write_all(self._db, "DELETE FROM quarantines WHERE cluster = ?", [(cluster,)],
                          what="quarantine store")
            else:
                write_all(self._db, "INSERT OR REPLACE INTO quarantines VALUES (?, ?, ?)",
                          [(cluster, held.until, held.why)], what="quarantine store")

    def load(self) -> dict[str, Held]:
        with self._lock:
            rows = self._db.execute("SELECT cluster, until, reason FROM quarantines ORDER BY cluster").fetchall()
        return {str(c): Held(float(until), str(reason)) for c, until, reason in rows}

    def close(self) -> None:
        with self._lock:
            close_sqlite(self._db, self.file)


__all__ = ["SqliteQuarantineStore"]
