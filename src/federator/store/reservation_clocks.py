"""The clocks of gangs' reservations, kept in the SQLite file beside the jobs (server/reservations.py says why).

A reservation itself is not kept: after a restart the first cycle chooses it again from the stored jobs' waits
and the agents' reports, as it would have (scheduler/reservation.py). What no report and no job says is how long
a gang has had its reservation (reservations.maxHoldSeconds counts from its first) and until when a gang whose
reservation ran out rests. Forgotten at a restart, each restart gave every reserving gang a new maxHoldSeconds and
every resting gang its room back at once: the bound that returns reserved room to everyone at least half the time
(security finding S3) did not hold across restarts. One row per gang reserving or resting; a write is one small
transaction when a clock changes (a reservation begins, moves, ends), not per cycle. synchronous=NORMAL: a clock
written just before a power cut may be lost, which costs one reservation's length at most, never a job. Kubernetes
mode keeps the same clocks in the gangs' FederatedJob status (backends/kube/reservation_clocks.py): a new leader's
`--db` is its own.

The table keeps its name of 0.8.0, `reservation_holds` (this module was store/holds.py until 0.15.0, when "hold"
came to mean a user's hold of a waiting job alone: server/job_holds.py). Renamed, it would leave a 0.14.0 file's
clocks behind, and a downgrade would find none, for a name no user sees.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from federator.model import JobId
from federator.store.identity import identity
from federator.store.sqlite import close_sqlite, open_sqlite, write_all

CLOCKS_TABLE = ("CREATE TABLE IF NOT EXISTS reservation_holds (job_id TEXT PRIMARY KEY, cluster TEXT NOT NULL, "
                "since REAL NOT NULL, began REAL NOT NULL, rests_until REAL NOT NULL)")  # the name of 0.8.0: see above


@dataclass(frozen=True, slots=True)
class ReservationClock:
    """A gang's reservation on `cluster` since `since`, its first reservation's start at `began` (maxHoldSeconds
    counts from it), or (cluster "") its rest until `rests_until` after its reservation ran out."""

    job_id: JobId
    cluster: str = ""
    since: float = 0.0
    began: float = 0.0
    rests_until: float = 0.0


class ReservationClockStore(Protocol):
    def put(self, clocks: Iterable[ReservationClock], *, forget: Iterable[JobId] = ()) -> None:
        """Remember these clocks (one transaction), then forget the gangs in `forget` (another)."""

    def load(self) -> list[ReservationClock]: ...

    @property
    def due(self) -> int:
        """Changes `put` took and has not written yet (`federator_reservation_unwritten_clocks`)."""

    def close(self) -> None: ...


class SqliteReservationClockStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_sqlite(path, synchronous="NORMAL")
        self._db.execute(CLOCKS_TABLE)
        self.file = identity(path, what="reservation store", say=False)  # the job store's says it

    def put(self, clocks: Iterable[ReservationClock], *, forget: Iterable[JobId] = ()) -> None:
        rows = [(c.job_id, c.cluster, c.since, c.began, c.rests_until) for c in clocks]
        gone = [(job_id,) for job_id in forget]
        with self._lock:
            if self.file is not None and (rows or gone):
                self.file.check()
            if rows:
                write_all(self._db, "INSERT OR REPLACE INTO reservation_holds VALUES (?, ?, ?, ?, ?)", rows,
                          what="reservation store")
            if gone:
                write_all(self._db, "DELETE FROM reservation_holds WHERE job_id = ?", gone, what="reservation store")

    def load(self) -> list[ReservationClock]:
        with self._lock:
            rows = self._db.execute("SELECT job_id, cluster, since, began, rests_until FROM reservation_holds "
                                    "ORDER BY job_id").fetchall()
        return [ReservationClock(JobId(str(j)), str(c), float(s), float(b), float(r)) for j, c, s, b, r in rows]

    @property
    def due(self) -> int:
        """None: `put` writes before it returns, or raises (KeptReservations counts what it could not put)."""
        return 0

    def close(self) -> None:
        with self._lock:
            close_sqlite(self._db, self.file)


__all__ = ["CLOCKS_TABLE", "ReservationClock", "ReservationClockStore", "SqliteReservationClockStore"]
