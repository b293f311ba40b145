"""When a placement cancelled while its member was silent ended, for its usage record.

Why a module of its own: a user's Cancel ends the job at once (server/cancelling.py), and its placements' usage
records closed at the cancel, whatever their member. On a Ready member that is right: the cancel reaches the agent
within moments. On a silent one (Partitioned, or Lost with `federator.io/failover: keep`) it was not what the
usage docs promise: a silent member's placement is billed to its last report (server/silent_ends.py), since
nothing says it ran on after; yet a cancel billed it up to the cancel, however long the member had been silent. The
tenant paid for time nobody vouched for; and the provider, whose member may have run it until its agent heard the
cancel, is paid to the cancel, which is where the tenant said stop.

The rule, the bill never later than the cancel and never later than what the federator knows:

- its member is Lost at the cancel: the placement ended at the member's last report (`last_known_running`), the
  cancel if that is later; final at once;
- its member is Partitioned at the cancel: the record closes at the cancel for now, and the placement is awaited
  here. Its end is then the first of: the end its agent says (a JobUpdate with a final phase: its `ended_at`, or
  when it is heard if not said), a capacity report of the member that no longer lists it (the report before that
  one), or the member going Lost (its last report); each bounded by the cancel and, by the meter, by the record's
  start.

Either way the meter closes the record at the cancel, as the cancelled job is written, and its end is then lowered
to the placement's (`on_end`: accounting/meter.py `shorten`), never raised.

Meanwhile a usage window holding such a record is incomplete (UsageResponse.incomplete; usage_service.py): its end
may yet move earlier. Bounded: an entry leaves at the first of those events, and a silent member goes Lost after
--lost-after.

Kept across a restart (`attach`), standalone: each entry is a row of the --db file (store/silent_cancels.py),
written at the cancel and deleted when its end is known. Before 0.11.0 the wait was in memory, and a restart before
the member's word left the record closed at the cancel for good: billed the time nobody vouched for, in a window
read complete. After a restart the member is expected back (server/membership.py), and the same events end the
wait: its agent's word at its re-sync, a report that no longer lists the placement (the report before it is then
the last report time kept, server/silent_ends.py, coarse: the end may come up to half a minute early, never late),
or the member Lost after --lost-after. Standalone, its writes go through the job store's writer thread, in order
with the jobs' (store/group_commit.py `write_beside`): a cancel on a silent member no longer holds the event loop
for an SQLite transaction. A write the store refuses (a full disk) is said once and the entry kept in memory, as
before. Kubernetes mode keeps them on the members' MemberClusters (backends/kube/silent_cancels.py).
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from federator.model import ClusterState, Job, JobPhase
from federator.server.silent_ends import last_known_running
from federator.store.errors import StoreError
from federator.store.silent_cancels import AwaitedEnd, SilentCancelStore, SqliteSilentCancelStore

if TYPE_CHECKING:
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")


class SilentCancels:
    """The placements cancelled on a Partitioned member whose end is not known yet, per cluster (module docstring)."""

    __slots__ = ("_awaited", "_failing", "_store", "fed", "on_end")

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        self._awaited: dict[str, dict[str, float]] = {}  # cluster -> placement id -> when it was cancelled
        # The usage meter (accounting.attach): a placement's record ends at this time, if earlier than it does now.
        self.on_end: Callable[[str, float], None] = lambda placement_id, at: None
        self._store: SilentCancelStore | None = None  # standalone: the --db file (module docstring)
        self._failing = False  # the last write failed: said again only once one has worked

    def attach(self, store: SilentCancelStore, *, now: float) -> None:
        """Keep the entries in `store`, and take up those it kept: awaited again on a member known and not Lost;
        ended at its last report on one Lost meanwhile; left at the cancel for a cluster no longer known (its
        record needs no more than it has). After the members are restored and the usage meter attached (`on_end`):
        server/app.py."""
        self._store = store
        gone = []
        for a in store.load():
            rec = self.fed.clusters.get(a.cluster)
            if rec is not None and rec.state is not ClusterState.LOST:
                self._awaited.setdefault(a.cluster, {})[a.placement_id] = a.cancelled_at
                continue
            if rec is not None:
                self.on_end(a.placement_id, min(last_known_running(rec, now=now), a.cancelled_at))
            gone.append(a.placement_id)
        self._keep(partial(store.drop, gone))

    def __contains__(self, placement_id: object) -> bool:
        return any(placement_id in held for held in self._awaited.values())

    def __bool__(self) -> bool:
        """Whether any placement is awaited: a usage call skips looking its records up one by one when none is."""
        return bool(self._awaited)

    def cancelled(self, job: Job, now: float) -> None:
        """A user's cancel of `job` at `now`, just stored (its records closed at the cancel by the meter), its live
        placements not changed yet: one Running on a Lost member ends at its last report; one on a Partitioned
        member is awaited. Called after the write, so a cancel the store refused changes nothing here either."""
        awaited: list[AwaitedEnd] = []
        for p in job.placements:
            rec = self.fed.clusters.get(p.cluster)
            if p.phase is not JobPhase.RUNNING or rec is None:
                continue
            if rec.state is ClusterState.LOST:
                p.ended_at = min(last_known_running(rec, now=now), now)
                self.on_end(p.placement_id, p.ended_at)
            elif rec.state is ClusterState.PARTITIONED:
                self._awaited.setdefault(rec.name, {})[p.placement_id] = now
                awaited.append(AwaitedEnd(rec.name, p.placement_id, now))
        if awaited and self._store is not None:
            self._keep(partial(self._store.put, awaited))

    def heard(self, rec: ClusterRecord, placement_id: str, phase: JobPhase, said: float) -> None:
        """A JobUpdate: a final phase of an awaited placement is its end, as its agent says (0: not said, now)."""
        if phase.is_terminal and placement_id in self._awaited.get(rec.name, {}):
            now = self.fed.clock()
            self._ended(rec.name, [placement_id], said if math.isfinite(said) and 0 < said <= now else now)

    def reported(self, rec: ClusterRecord, placement_ids: Iterable[str]) -> None:
        """A capacity report of `rec` that counts, before its time is taken: an awaited placement it does not list
        ended by then, at the report before it (`rec.last_report_at`, still the previous one)."""
        held = self._awaited.get(rec.name)
        if held:
            listed = set(placement_ids)
            self._ended(rec.name, [pid for pid in held if pid not in listed], rec.last_report_at)

    def lost(self, rec: ClusterRecord) -> None:
        """`rec` went Lost: what it held awaited ended at its last report."""
        if rec.name in self._awaited:
            self._ended(rec.name, list(self._awaited[rec.name]), last_known_running(rec, now=self.fed.clock()))

    def _ended(self, cluster: str, placement_ids: list[str], at: float) -> None:
        held = self._awaited.get(cluster, {})
        ended = []
        for pid in placement_ids:
            cancelled_at = held.pop(pid, None)
            if cancelled_at is not None:
                self.on_end(pid, min(at, cancelled_at))
                ended.append(pid)
        if not held:
            self._awaited.pop(cluster, None)
        if ended and self._store is not None:
            self._keep(partial(self._store.drop, ended))

    def _keep(self, write: Callable[[], None]) -> None:
        """A write of the store's, on the job store's writer thread after the writes before it (the cancel's own):
        never on the event loop (GroupCommit.write_beside). Refused (a full disk), it is said once and the wait goes
        on in memory: a restart before the end is known then leaves the record at the cancel, or waits on for one
        already ended (its end is only ever lowered: accounting/meter.py `shorten`)."""
        if isinstance(self._store, SqliteSilentCancelStore):  # an SQLite transaction: off the loop
            self.fed.journal.write_beside(write, self._kept)
            return
        try:  # Kubernetes mode's only buffers (backends/kube/silent_cancels.py): its controller writes them, and a
            write()  # deletion's flush before its finalizer goes must find the entry already there
        except Exception as exc:
            self._kept(exc)
            return
        self._kept(None)

    def _kept(self, error: BaseException | None) -> None:
        if error is None:
            self._failing = False
        elif not isinstance(error, (sqlite3.Error, StoreError)):  # a bug: a traceback
            log.error("keeping the placements cancelled on a silent member in the store failed", exc_info=error)
        else:
            if not self._failing:
                log.warning("cannot keep the placements cancelled on a silent member in the store (%s): a restart "
                            "before their end is known leaves their usage ending at the cancel", error)
            self._failing = True


__all__ = ["SilentCancels"]
