"""The reservations the live federator's cycles hand on, one cycle to the next (scheduler/reservation.py).

Why a module: the scheduler is pure, so what a gang's reservation was last cycle (its cluster, since
when) must be kept by the server and handed back, or every cycle would pick afresh and room gathered on
one cluster would be lost to another pick. The reservations are kept in memory: after a restart or a change
of leader the first cycle chooses them again from the stored jobs' submission times and the agents' reports
(a SIGKILL test shows the room is not given away meanwhile: tests/reliability/test_crash_memory.py). Their
clocks are stored (`attach`: store/reservation_clocks.py, or in Kubernetes mode the gangs' FederatedJob status,
backends/kube/reservation_clocks.py), since nothing else says them: since when a gang has had its reservation
(maxHoldSeconds counts from its first) and until when a gang whose reservation ran out rests. Forgotten, each
restart gave every reserving gang a new maxHoldSeconds and every resting gang its room back at once.

Names: a reservation's words are "reserve" and "reservation" (maxHoldSeconds, the policy key users set, keeps its
name); a "hold" is a user's hold of a waiting job (server/job_holds.py), which ends any reservation its gang had.

Three duties besides, all about parking (parking.py: a job no cycle could place is left out of cycles until
an event could change that):
- a gang that has a reservation comes to every cycle, parked or not, since only a cycle that sees it
  keeps its room (`gangs`);
- a parked gang whose wait passes the threshold comes back once then (`due`), so it can ask for a
  reservation without waiting for a placement of its model to end (a heap by submission time: each job
  is looked at once, when it is due, not at every cycle);
- when a reservation ends (the gang placed, cancelled, or its cluster gone) the jobs it kept off may fit
  now, which no capacity event announces: `update` returns the ended ones, whose model's jobs come back;
- a gang whose reservation ran out (reservations.maxHoldSeconds) rests, and comes back once when its rest ends
  (`due`), so it may reserve room again without waiting for an event of its model.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

from federator.model import Job, JobId
from federator.scheduler.reservation import Reservation, may_reserve
from federator.store.reservation_clocks import ReservationClock, ReservationClockStore

log = logging.getLogger("federator.server")


class KeptReservations:
    """The last committed cycle's reservations, by gang."""

    def __init__(self) -> None:
        self._by_job: dict[JobId, Reservation] = {}
        self._waits: list[tuple[float, JobId]] = []  # (submitted at, job): pending gangs not yet due
        self._resting: dict[JobId, float] = {}  # gangs whose reservation ran out (maxHoldSeconds): until when
        self._rest_ends: list[tuple[float, JobId]] = []  # (rest ends at, job): brought back then
        self._store: ReservationClockStore | None = None
        self._written: dict[JobId, ReservationClock] = {}  # what the store keeps
        self._restored: dict[JobId, ReservationClock] = {}  # the clocks before a restart, until the first cycle's
        self._failing = False  # the last write failed: not said again until one works
        self._refused = 0  # changes the store did not take at the last write (tried again at the next cycle's)

    def attach(self, store: ReservationClockStore, *, now: float) -> None:
        """Keep the clocks in `store`, and take up those it kept: the resting gangs rest on (brought back when
        their rest ends), and a gang the first cycle reserves for again keeps the clocks it had before."""
        self._store = store
        self._written = {c.job_id: c for c in store.load()}
        for c in self._written.values():
            if c.cluster:
                self._restored[c.job_id] = c
            elif c.rests_until > now:
                self._resting[c.job_id] = c.rests_until
                heapq.heappush(self._rest_ends, (c.rests_until, c.job_id))

    @property
    def store(self) -> ReservationClockStore | None:
        """Where the clocks are kept (None: nowhere); Kubernetes mode's controller flushes its writes."""
        return self._store

    def waiting(self, job: Job) -> None:
        """A job is Pending: if it is a gang that could reserve room, it is brought back when it is due."""
        if may_reserve(job.spec):
            heapq.heappush(self._waits, (job.submitted_at, job.job_id))

    def due(self, now: float, after: float) -> list[JobId]:
        """The gangs (maybe placed or gone since: the caller checks) whose wait passed `after` by `now`, or
        whose rest ended by then."""
        out: list[JobId] = []
        waits, ends = self._waits, self._rest_ends
        while waits and waits[0][0] + after <= now:
            out.append(heapq.heappop(waits)[1])
        while ends and ends[0][0] <= now:
            out.append(heapq.heappop(ends)[1])
        return out

    def current(self) -> tuple[Reservation, ...]:
        """What the next cycle is handed (`Scheduler.schedule(reservations=...)`)."""
        return tuple(self._by_job.values())

    def resting(self) -> dict[JobId, float]:
        """The gangs that may not reserve room again yet, and until when (`Scheduler.schedule(resting=...)`)."""
        return dict(self._resting)

    def gangs(self) -> list[JobId]:
        """The gangs that have a reservation."""
        return list(self._by_job)

    def __contains__(self, job_id: object) -> bool:
        """Whether the job has a reservation: it stays a candidate, never parked."""
        return job_id in self._by_job

    def update(self, reservations: Sequence[Reservation],
               resting: Mapping[JobId, float] | None = None) -> list[Reservation]:
        """Take a cycle's reservations and resting gangs; the reservations that ended with it."""
        for job_id, until in (resting or {}).items():
            if self._resting.get(job_id) != until:
                heapq.heappush(self._rest_ends, (until, job_id))
        self._resting = dict(resting or {})
        now = {r.job_id: self._restore(r) for r in reservations}
        self._restored.clear()  # only the first cycle after a start takes them up: a gang it did not reserve for
        ended = [r for job_id, r in self._by_job.items() if job_id not in now or now[job_id].cluster != r.cluster]
        self._by_job = now
        self._write()
        return ended

    def _restore(self, r: Reservation) -> Reservation:
        """`r` with the clocks its gang had before the restart: its first reservation's start, and its `since`
        if on the same cluster."""
        before = self._restored.get(r.job_id)
        if before is None:
            return r
        return replace(r, began=min(before.began, r.first_reserved),
                       since=before.since if before.cluster == r.cluster else r.since)

    def _write(self) -> None:
        """Store the clocks that changed. A failed write is tried again at the next cycle's (said once, not every
        cycle): a clock is a bound's memory, and a full disk must not stop the cycles."""
        if self._store is None:
            return
        want = {job_id: ReservationClock(job_id, rests_until=until) for job_id, until in self._resting.items()}
        want.update({r.job_id: ReservationClock(r.job_id, r.cluster, r.since, r.first_reserved)
                     for r in self._by_job.values()})
        changed = [c for job_id, c in want.items() if self._written.get(job_id) != c]
        gone = [job_id for job_id in self._written if job_id not in want]
        if not (changed or gone):
            return
        try:
            self._store.put(changed, forget=gone)
        except Exception as exc:  # sqlite3.Error, OSError or StoreError: the cycles go on either way
            if not self._failing:
                log.warning("cannot store the clocks of %d reservation(s), will retry: %s", len(changed) + len(gone),
                            exc)
            self._failing = True
            self._refused = len(changed) + len(gone)
            return
        self._failing, self._refused = False, 0
        self._written = want

    def unwritten(self) -> int:
        """`federator_reservation_unwritten_clocks`: changed clocks not written yet, those the store refused and
        those it took to write later (Kubernetes mode's buffer: backends/kube/reservation_clocks.py). Above 0 for
        long, a restart or a change of leader would find the clocks last written."""
        return self._refused + (self._store.due if self._store is not None else 0)

    def count(self) -> int:
        """`federator_reservations`."""
        return len(self._by_job)

    def held_accelerators(self) -> int:
        """`federator_reservation_held_accelerators`: free accelerators the gangs count on, kept idle for them."""
        return sum(r.held for r in self._by_job.values())


__all__ = ["KeptReservations"]
