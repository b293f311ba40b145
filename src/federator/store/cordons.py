"""Cordoned member clusters, kept in the SQLite file beside the jobs (server/cordons.py says why).

One row per cordoned cluster, with its drain's who, when and why when one holds (columns added to a file an older
federator made); an uncordon deletes it. A write is synchronous=FULL: an operator who was told a
cluster is cordoned must not find it taking work after a power cut. In Kubernetes mode the MemberClusters' spec
holds cordons instead (backends/kube/cordons.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

from federator.model.cordon import SURGE_SECONDS, Cordon, Drain
from federator.store.identity import identity
from federator.store.sqlite import close_sqlite, open_sqlite, write_all

DRAIN_COLUMNS = (("drain_by", "TEXT"), ("drain_at", "REAL"), ("drain_reason", "TEXT"),
                 ("drain_surge_seconds", "REAL"))
"""A drain's who, when and why (NULL: no drain holds), and its surge bound (NULL: the default, a drain an older
federator stored); server/drains.py, server/drain_surge.py."""
WINDOW_COLUMNS = (("window_from", "REAL"), ("window_until", "REAL"))
"""A maintenance window's start and end (NULL: none; a cordon an older federator stored). An older federator
reading a row that has them reads a cordon in force now, with no end; its re-cordon writes the row without them."""


class SqliteCordonStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_sqlite(path, synchronous="FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS cordons (cluster TEXT PRIMARY KEY, by_whom TEXT NOT NULL, "
                         "at REAL NOT NULL, reason TEXT NOT NULL)")
        have = {str(row[1]) for row in self._db.execute("PRAGMA table_info(cordons)")}
        for column, kind in (*DRAIN_COLUMNS, *WINDOW_COLUMNS):
            if column not in have:  # a file an older federator made: no drain, no window
                self._db.execute(f"ALTER TABLE cordons ADD COLUMN {column} {kind}")
        self.file = identity(path, what="cordon store", say=False)  # the job store's says it (store/identity.py)

    def put(self, cluster: str, cordon: Cordon | None) -> None:
        with self._lock:
            if self.file is not None:
                self.file.check()
            if cordon is None:
                write_all(self._db, "DELETE FROM cordons WHERE cluster = ?", [(cluster,)], what="cordon store")
            else:
                drain = cordon.drain
                write_all(self._db, "INSERT OR REPLACE INTO cordons (cluster, by_whom, at, reason, drain_by, "
                          "drain_at, drain_reason, drain_surge_seconds, window_from, window_until) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [(cluster, cordon.by, cordon.at, cordon.reason, drain.by if drain else None,
                            drain.at if drain else None, drain.reason if drain else None,
                            drain.surge_seconds if drain else None, cordon.window_from or None,
                            cordon.window_until or None)], what="cordon store")

    def load(self) -> dict[str, Cordon]:
        with self._lock:
            rows = self._db.execute("SELECT cluster, by_whom, at, reason, drain_by, drain_at, drain_reason, "
                                    "drain_surge_seconds, window_from, window_until FROM cordons "
                                    "ORDER BY cluster").fetchall()
        return {str(c): Cordon(str(by), float(at), str(reason),
                               Drain(str(d_by), float(d_at or 0.0), str(d_reason or ""),
                                     float(surge or SURGE_SECONDS)) if d_by is not None else None,
                               float(w_from or 0.0), float(w_until or 0.0))
                for c, by, at, reason, d_by, d_at, d_reason, surge, w_from, w_until in rows}

    def close(self) -> None:
        with self._lock:
            close_sqlite(self._db, self.file)


__all__ = ["SqliteCordonStore"]
