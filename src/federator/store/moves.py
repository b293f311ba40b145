"""When each job last moved (the rebalancer's quiet time), kept in the SQLite file beside the jobs.

Why: a move is not stored while in flight, its surge placement is (server/rebalancing.py); what no job and no
report says is when a job last moved. Forgotten at a restart, a job that had just moved could be moved again at
once, within policy.rebalance.quietSeconds (600 s) of its last move, and the restart's minute allowed
maxMovesPerMinute more moves on top of those just started. One row per job moved within its quiet time; a write
is one small transaction per move started or ended, never per turn, run by the job store's writer thread
(store/group_commit.py `write_beside`), not on the event loop. synchronous=NORMAL: a time written just
before a power cut may be lost, which costs one quiet time, never a job. The table is made when missing, as
reservation_holds is (store/reservation_clocks.py), so the schema stays version 3 (store/schema.py). Kubernetes
mode keeps them in each job's FederatedJob status instead (backends/kube/move_times.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from federator.model import JobId
from federator.store.identity import identity
from federator.store.sqlite import close_sqlite, open_sqlite, write_all

MOVES_TABLE = "CREATE TABLE IF NOT EXISTS rebalance_moves (job_id TEXT PRIMARY KEY, moved_at REAL NOT NULL)"


class MoveStore(Protocol):
    def put(self, moved: Mapping[JobId, float], *, forget: Iterable[JobId] = ()) -> None:
        """Remember when these jobs last moved (Unix seconds), then forget the jobs in `forget`."""

    def load(self) -> dict[JobId, float]: ...

    def close(self) -> None: ...


class SqliteMoveStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_sqlite(path, synchronous="NORMAL")
        self._db.execute(MOVES_TABLE)
        self.file = identity(path, what="rebalance store", say=False)  # the job store's says it

    def put(self, moved: Mapping[JobId, float], *, forget: Iterable[JobId] = ()) -> None:
        rows = list(moved.items())
        gone = [(job_id,) for job_id in forget]
        with self._lock:
            if self.file is not None and (rows or gone):
                self.file.check()
            if rows:
                write_all(self._db, "INSERT OR REPLACE INTO rebalance_moves VALUES (?, ?)", rows,
                          what="rebalance store")
            if gone:
                write_all(self._db, "DELETE FROM rebalance_moves WHERE job_id = ?", gone, what="rebalance store")

    def load(self) -> dict[JobId, float]:
        with self._lock:
            rows = self._db.execute("SELECT job_id, moved_at FROM rebalance_moves ORDER BY job_id").fetchall()
        return {JobId(str(j)): float(t) for j, t in rows}

    def close(self) -> None:
        with self._lock:
            close_sqlite(self._db, self.file)


__all__ = ["MOVES_TABLE", "MoveStore", "SqliteMoveStore"]
