"""The placements cancelled on a silent member whose end is not known yet, kept in the SQLite file beside the jobs.

Why: a placement a user cancelled while its member was Partitioned has its usage record closed at the cancel, and
the federator waits for the member's word to date its end earlier (server/silent_cancels.py). The wait was in
memory: a restart before the word came left the record at the cancel for good, billing the tenant for time nobody
vouched for, and the window read complete. One row per placement awaited (its cluster, when it was cancelled),
written at the cancel and deleted when its end is known; a restart reads them back and waits on. A write is one
small transaction per cancel on a silent member, which are rare, run by the job store's writer thread
(store/group_commit.py `write_beside`), not on the event loop. synchronous=NORMAL: a row lost to a power cut
leaves that record at the cancel, as before 0.11.0, never a job.

The table is made when missing, as the reservations' clocks' is (store/reservation_clocks.py), within schema version
3: a release before 0.11.0 never reads it and runs on such a file unharmed (store/schema.py). Kubernetes mode keeps
the wait on the MemberClusters instead (its `--db` is its leader's own, usage only):
backends/kube/silent_cancels.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from federator.store.identity import identity
from federator.store.sqlite import close_sqlite, open_sqlite, write_all

TABLE = ("CREATE TABLE IF NOT EXISTS silent_cancels (placement_id TEXT PRIMARY KEY, cluster TEXT NOT NULL, "
         "cancelled_at REAL NOT NULL)")


@dataclass(frozen=True, slots=True)
class AwaitedEnd:
    """A placement on `cluster`, cancelled at `cancelled_at` while the cluster was silent: its end is awaited."""

    cluster: str
    placement_id: str
    cancelled_at: float


class SilentCancelStore(Protocol):
    def put(self, awaited: Iterable[AwaitedEnd]) -> None:
        """Remember these (one transaction)."""

    def drop(self, placement_ids: Iterable[str]) -> None:
        """Forget these: their end is known (one transaction)."""

    def load(self) -> list[AwaitedEnd]: ...

    def close(self) -> None: ...


class SqliteSilentCancelStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_sqlite(path, synchronous="NORMAL")
        self._db.execute(TABLE)
        self.file = identity(path, what="silent cancel store", say=False)  # the job store's says it

    def put(self, awaited: Iterable[AwaitedEnd]) -> None:
        rows = [(a.placement_id, a.cluster, a.cancelled_at) for a in awaited]
        self._write("INSERT OR REPLACE INTO silent_cancels VALUES (?, ?, ?)", rows)

    def drop(self, placement_ids: Iterable[str]) -> None:
        self._write("DELETE FROM silent_cancels WHERE placement_id = ?", [(pid,) for pid in placement_ids])

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        if not rows:
            return
        with self._lock:
            if self.file is not None:
                self.file.check()
            write_all(self._db, sql, rows, what="silent cancel store")

    def load(self) -> list[AwaitedEnd]:
        with self._lock:
            rows = self._db.execute("SELECT cluster, placement_id, cancelled_at FROM silent_cancels "
                                    "ORDER BY cluster, placement_id").fetchall()
        return [AwaitedEnd(str(c), str(p), float(at)) for c, p, at in rows]

    def close(self) -> None:
        with self._lock:
            close_sqlite(self._db, self.file)


__all__ = ["TABLE", "AwaitedEnd", "SilentCancelStore", "SqliteSilentCancelStore"]
