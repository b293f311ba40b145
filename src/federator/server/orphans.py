"""Placements agents run of jobs this federator's store has no record of: held for a grace time, not cancelled.

Why: a federator restarted on an empty store (its --db deleted, a mistyped path, an emptyDir after a pod move)
took every placement its agents reported for a stray and cancelled it: about 2,070 running jobs across a fleet,
without one log line of its own (outside SRE F1). Fencing is right for a placement the store superseded; it is
wrong for one the store never heard of, because then the store, not the placement, is what is missing.

The rule (proto/federator/v1/agent.proto, CapacityReport.placement_ids):

- A placement not current on its cluster whose job the store knows at that generation or a later one (the id is
  JOB.gGEN.CLUSTER, server/scheduling.py) is cancelled at once: superseded or ended (fencing, unchanged). So is
  one of a job this federator removed itself while it runs (retention, a deleted FederatedJob).
- Any other is an *orphan*: its job is unknown, or its generation is newer than the store's (a store restored
  from an old backup). It is counted (`federator_orphan_placements{cluster}`, FederatorOrphanPlacements), said
  once per cluster as a WARNING, and cancelled only once its cluster has reported it for `--orphan-grace`
  (0: at once, as before). The grace gives an operator time to stop the federator and restore the right store;
  it always ends, so a workload whose job is really gone (a FederatedJob whose finalizer was removed by hand
  while no federator ran) is stopped all the same. An orphan of a job the store does hold, at an older
  generation, is said as such (`_say_older`): "no record of" it read false to an operator looking at that job
  in `get jobs` after a restore (outside operator QA F3). A training job held Pending and not held takes it
  back (server/adoption.py: the Launch's seal its agent says back proves whose it is; outside QA, Kubernetes DR,
  K8); a held one at its release. Any other (an inference job's share, an agent that said no phase or no valid
  seal: secqa61 H2) stays an orphan; its job, Pending,
  is placed again, and placed on the same cluster its placement takes the very id, which the agent already runs.

A cluster's capacity report lists every placement it holds, so each report replaces its orphans (keeping when
each was first reported): an orphan that ends leaves the count, and the count is bounded by the report's size.
A JobUpdate of an orphan starts nothing; it is cancelled only if its report's grace is over.

A placement in `cancels` (server/unconfirmed_cancels.py: a job removed while its member was away, recorded
durably in Kubernetes mode) is no orphan, even after a restart: its job's end is known, so it is cancelled at once
(outside QA F7). What an orphan most likely is depends on the store: `story` says it in the WARNING (Kubernetes
mode sets its own: the store is the FederatedJobs, and no --db was replaced).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from federator.model import Job, JobId, JobPhase
from federator.security.limits import RejectReason
from federator.server.adoption import Adoption, next_same_id
from federator.server.orders import CancelOrder, ErrorNotice, Order, ResizeOrder, stray_reason
from federator.server.placement_ids import head as _head
from federator.server.placement_ids import job_of
from federator.server.unconfirmed_cancels import UnconfirmedCancels

if TYPE_CHECKING:
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")
DEFAULT_ORPHAN_GRACE_SECONDS = 1800.0  # half an hour: time for an alert, an operator and a restore
REMOVED_KEPT = 20_000  # jobs removed while running whose stray placements are still fenced at once
SQLITE_STORY = ("Was --db replaced, deleted or restored from an old backup? Then stop the federator and restore the "
                "right store before that (docs/operators.md)")
FULL_SAID_EVERY = 60.0  # seconds between `unsent`'s WARNINGs of one cluster's full record (a Lost cluster's jobs)
FOREIGN = "not a placement of this cluster"  # the Cancel's words for an id not of its form (agent.proto)
KEPT = "the cancel was kept until its cluster confirmed it"
DELETED_REASON = f"its job was deleted ({KEPT})"


class Orphans:
    """The orphans of each cluster and when each was first reported; see the module docstring."""

    def __init__(self, fed: Federator, *, grace: float) -> None:
        self.fed = fed
        self.grace = grace
        self._held: dict[str, dict[str, float]] = {}  # cluster -> orphan placement id -> first reported
        self._due: dict[str, set[str]] = {}  # cluster -> orphans whose cancel was said
        self._removed: OrderedDict[JobId, int] = OrderedDict()  # job -> its generation when removed
        self._foreign: dict[str, set[str]] = {}  # cluster -> other clusters' placements its last report listed
        self.cancels = UnconfirmedCancels(
            on_count=lambda cluster, n: fed.metrics.unconfirmed_cancels.labels(cluster).set(n))
        self._full_said: dict[str, float] = {}  # cluster -> when `unsent` last said its record is full
        # (cluster, placement id) -> why its recorded cancel was queued (`unsent`), said when it is sent at last.
        # In memory only, bounded by `cancels`: after a restart the store says what it can (`_kept_reason`).
        self._why: dict[tuple[str, str], str] = {}
        self.story = SQLITE_STORY  # what an orphan most likely means with this store (said in the WARNING)
        self.adoption = Adoption(fed)  # one of a job the store holds Pending at an older generation: its own again

    def removed(self, job: Job) -> None:
        """This federator removed a job (retention, a deleted FederatedJob): a placement of it is not an orphan."""
        self._removed[job.job_id] = job.generation
        self._removed.move_to_end(job.job_id)
        while len(self._removed) > REMOVED_KEPT:
            self._removed.popitem(last=False)

    def known(self, cluster: str, placement_id: str) -> bool:
        """Whether the store knows this placement's job at its generation or a later one, or its cancel is
        recorded (`cancels`)."""
        if self.cancels.holds(cluster, placement_id):
            return True
        named = job_of(placement_id, cluster)
        if named is None:
            return False
        job_id, generation = named
        job = self.fed.jobs.get(job_id)
        stored = job.generation if job is not None else self._removed.get(job_id)
        return stored is not None and generation <= stored

    def unsent(self, rec: ClusterRecord | None, order: Order) -> None:
        """An order `Federator.send` dropped, its cluster's agent being away (its re-sync brings it up to date). A
        cancel is recorded (`cancels`, durable in Kubernetes mode): should its job be gone by the time the agent is
        back (a FederatedJob deleted, then a federator restart), the agent's copy is cancelled at once at its
        re-sync, not held for --orphan-grace as an orphan. A job moved off a Lost cluster and then deleted left
        that copy an orphan before, as a requeue keeps no history of the placements it superseded.

        A Resize is remembered as owed (`ClusterRecord.resizes_owed`): the re-sync sends the stored count
        (server/shrink.py `resend`), or replaces the part should the agent come back without the resize feature.
        Both kinds of owed order are kept here, where every dropped order passes, not by the code that sent it."""
        if rec is not None and isinstance(order, ResizeOrder):
            rec.resizes_owed.add(order.placement_id)
        if rec is None or not isinstance(order, CancelOrder):
            return
        now = self.fed.clock()
        dropped = self.cancels.record(rec.name, [order.placement_id], now=now)
        self._why[(rec.name, order.placement_id)] = order.reason
        for pid in dropped:
            self._why.pop((rec.name, pid), None)
        if dropped and now - self._full_said.get(rec.name, -math.inf) >= FULL_SAID_EVERY:
            self._full_said[rec.name] = now
            log.warning("cluster %s: the record of cancels its member has not confirmed is full (%d placements); the "
                        "oldest dropped, e.g. %s: if that member still runs them after a federator restart they are "
                        "orphans, held for --orphan-grace", rec.name, self.cancels.count(rec.name), dropped[0])

    def cancel_strays(self, rec: ClusterRecord, placement_ids: Iterable[str]) -> None:
        """A cluster holding a placement that is not current there is told to stop it (fencing); one of a job the
        store has no record of, only after --orphan-grace."""
        fed = self.fed
        placement_ids = list(placement_ids)
        self.cancels.resynced(rec.name, session=rec.session, listed=placement_ids)
        for pid in placement_ids:  # a placement newer than the store, of a job it holds Pending: adopted first
            if pid not in fed.placement_index and (named := job_of(pid, rec.name)) is not None:
                self.adoption.adopt(rec, pid, *named)
        self._why = {k: why for k, why in self._why.items() if self.cancels.holds(*k)}
        strays: dict[str, Job | None] = {}
        for pid in placement_ids:
            job = fed.jobs.get(fed.placement_index.get(pid, JobId("")))
            current = job is not None and not job.phase.is_terminal and any(
                p.placement_id == pid and p.cluster == rec.name and p.phase.is_active for p in job.placements)
            if not current:
                strays[pid] = job
        # An id not of this cluster's form (JOB.gGEN.<this cluster>) is never its placement, whatever the store
        # knows of it: each is cancelled at once, in the same words, so an agent cannot tell from the answer
        # whether another tenant's job exists (security m2). The owner is named only in the federator's log.
        foreign = {pid: self._other_cluster(rec.name, pid, job) for pid, job in strays.items()
                   if job_of(pid, rec.name) is None}
        for pid in foreign:
            del strays[pid]
            fed.send(rec.name, CancelOrder(pid, f"{FOREIGN}: {pid} does not end with .g<generation>.{rec.name}"))
        self._say_foreign(rec, foreign)
        for order in self.fence(rec.name, strays):
            fed.send(rec.name, order)

    def _other_cluster(self, cluster: str, placement_id: str, job: Job | None) -> str:
        """The other cluster whose placement `placement_id` is, current or not, of a job the store knows at that
        generation or a later one; "" if none. Each '.' of the id is tried as the start of a cluster's name."""
        owner = other_owner(job, placement_id, cluster)
        if owner:
            return owner
        head = _head(placement_id)
        at = head.find(".")
        while at >= 0:
            name = head[at + 1:]
            if name != cluster and name in self.fed.clusters and self.known(name, placement_id):
                return name
            at = head.find(".", at + 1)
        return ""

    def _say_foreign(self, rec: ClusterRecord, foreign: dict[str, str]) -> None:
        """Placements of OTHER clusters a report lists (an agent that mixed up ids; outside QA F1): the store knows
        them, so they are no orphans. Each is cancelled on this cluster only, in case its agent runs a copy; the
        owner's placement is not touched, and the report counts nothing for it (server/scheduling.py reserves a
        placement by its own cluster's report). The agent is told (Error `unexpected` naming the field, counted),
        and the log says so once per cluster per change of what it lists."""
        before = self._foreign.get(rec.name, set())
        self._foreign[rec.name] = set(foreign)
        if not foreign:
            return
        pid = min(foreign)
        field = "capacity.placement_ids"
        self.fed.metrics.messages_rejected.labels(RejectReason.UNEXPECTED.value).inc()
        self.fed.send(rec.name, ErrorNotice(RejectReason.UNEXPECTED.value,
                                            f"{field}: {len(foreign)} id(s) are not placement ids of this cluster "
                                            f"(JOB.g<generation>.{rec.name}), e.g. {pid!r}; a report lists only "
                                            "this cluster's placements. Each is cancelled on this cluster (no other "
                                            "cluster's placement is touched) and counts for nothing here", pid))
        if foreign.keys() - before:
            owner = f" (a placement of cluster {foreign[pid]})" if foreign[pid] else ""
            log.warning("cluster %s reports %s%s, %d id(s) not of its placements in all: cancelled there, no other "
                        "cluster's placement is touched. Its agent mixes up placement ids", rec.name, pid, owner,
                        len(foreign))

    def fence(self, cluster: str, strays: dict[str, Job | None]) -> list[CancelOrder]:
        """The cancels for the placements a cluster's report lists that are not current there (with their job, if
        still held): now, or once an orphan's grace is over. The report lists all the cluster holds, so it
        replaces the cluster's orphans."""
        now = self.fed.clock()
        before = self._held.get(cluster, {})
        held: dict[str, float] = {}
        cancel: list[CancelOrder] = []
        for pid, job in strays.items():
            if self.known(cluster, pid):
                cancel.append(self._fence_order(cluster, pid, job))
                continue
            held[pid] = first = before.get(pid, now)
            if now - first >= self.grace:
                cancel.append(self._order(cluster, pid))
        self._held[cluster] = held
        self.fed.metrics.orphan_placements.labels(cluster).set(len(held))
        self._say(cluster, held, new=held.keys() - before.keys(), cancel=held.keys() & {o.placement_id for o in cancel})
        return cancel

    def fence_one(self, cluster: str, placement_id: str) -> CancelOrder | None:
        """The cancel for a placement a JobUpdate names that is not current there: None while it is an orphan in
        its grace (or one no report has listed yet: the report decides)."""
        if self.known(cluster, placement_id):
            return self._fence_order(cluster, placement_id, None)
        first = self._held.get(cluster, {}).get(placement_id)
        due = self.grace <= 0 or (first is not None and self.fed.clock() - first >= self.grace)
        return self._order(cluster, placement_id) if due else None

    def heard(self, rec: ClusterRecord, placement_id: str, phase: JobPhase) -> None:
        """A JobUpdate: one of a placement whose cancel is recorded confirms it if it ended, and what a finished one
        left in its member (a Job kept until its TTL) is deleted, as for a FederatedJob deleted while its agent
        was connected (backends/kube/deletions.py)."""
        if placement_id not in self.fed.placement_index and (named := job_of(placement_id, rec.name)) is not None:
            self.adoption.heard(rec.name, placement_id, phase, self.fed.jobs.get(named[0]), named[1])
        recorded = self.cancels.heard(rec.name, placement_id, ended=phase.is_terminal, session=rec.session)
        if recorded and phase in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            self.fed.send(rec.name, CancelOrder(placement_id, self._kept_reason(rec.name, placement_id)))

    def _fence_order(self, cluster: str, placement_id: str, job: Job | None) -> CancelOrder:
        ended = self._job_ended(cluster, placement_id, job)
        if self.cancels.holds(cluster, placement_id):
            return CancelOrder(placement_id, self._kept_reason(cluster, placement_id, job), job_ended=ended)
        return CancelOrder(placement_id, stray_reason(job, placement_id), job_ended=ended)

    def _job_ended(self, cluster: str, placement_id: str, job: Job | None) -> bool:
        """Cancel.job_ended for a placement that is not current: whether its job has ended (gone from the store:
        deleted, or a finished one removed; or held ended). Said of what the store holds now, not of why the
        cancel was first queued: a cancel kept while its agent was away (`unsent`) of a job its owner cancelled
        then ends the job as the live one would have (an agent repeats it for a day: a store restored to before
        that cancel ends the job, not runs it again), and one of a job moved elsewhere and running there does not
        (it said job_ended at every restart's re-send, and such a restore ended a running job Cancelled)."""
        if job is None and (named := job_of(placement_id, cluster)) is not None:
            job = self.fed.jobs.get(named[0])
        return job is None or job.phase.is_terminal

    def resend_kept(self) -> None:
        """The kept cancels (`cancels`, just read back from the store) sent at once to each agent already
        connected: gRPC serves before the records are read, and an agent that re-synced meanwhile named its
        placements to a federator that did not know them yet (held as orphans then). A Cancel of a placement the
        agent does not hold is a no-op there."""
        for name in self.cancels.clusters():
            rec = self.fed.clusters.get(name)
            if rec is not None and rec.connected:
                for pid in self.cancels.entries(name):
                    self.fed.send(name, self._fence_order(name, pid, None))

    def _kept_reason(self, cluster: str, placement_id: str, job: Job | None = None) -> str:
        """Why a recorded cancel (`unsent`) is sent now: the reason it was queued with ("superseded: member-b is
        Lost ..." for a job moved off a Lost cluster); after a restart, what the store says (the job moved on, or
        gone). It said "its job was deleted" for every one, also for a job moved elsewhere and running there
        (outside provider QA F11)."""
        why = self._why.get((cluster, placement_id), "")
        if why:
            return f"{why} ({KEPT})"
        if job is None and (named := job_of(placement_id, cluster)) is not None:
            job = self.fed.jobs.get(named[0])
        return DELETED_REASON if job is None else f"{stray_reason(job, placement_id)} ({KEPT})"

    def _order(self, cluster: str, placement_id: str) -> CancelOrder:
        older = self._held_older(placement_id, cluster)
        if older is not None:
            return CancelOrder(placement_id, f"orphan: the federator's store holds its job only at an older "
                                             f"generation ({older.generation}) (--orphan-grace {self.grace:g}s)")
        return CancelOrder(placement_id, f"orphan: the federator's store has no record of its job "
                                         f"(--orphan-grace {self.grace:g}s)")

    def _held_older(self, placement_id: str, cluster: str) -> Job | None:
        """The job of an orphan if the store holds it (at an older generation than the placement's: a store
        restored from a backup taken before this placement was made); None if the store has no record of it."""
        named = job_of(placement_id, cluster)
        if named is None:
            return None
        job = self.fed.jobs.get(named[0])
        return job if job is not None and job.generation < named[1] else None

    def held_of(self, cluster: str) -> dict[str, tuple[JobId, int]]:
        """The cluster's orphans of a job the store holds, each with the job id and generation its id names."""
        out = {}
        for pid in self._held.get(cluster, {}):
            if (named := job_of(pid, cluster)) is not None and named[0] in self.fed.jobs:
                out[pid] = named
        return out

    def adopted(self, cluster: str, placement_id: str) -> None:
        """An orphan adopted by its job (server/adoption.py) between two reports: no longer one."""
        held = self._held.get(cluster, {})
        held.pop(placement_id, None)
        self.fed.metrics.orphan_placements.labels(cluster).set(len(held))

    def count(self, cluster: str) -> int:
        """How many orphans the cluster's last report listed (ClusterStatus.orphan_placements, the metric)."""
        return len(self._held.get(cluster, {}))

    def clusters_holding(self) -> list[str]:
        """The clusters with orphans, in name order."""
        return sorted(name for name, held in self._held.items() if held)

    def cancel_now(self, cluster: str, *, by: str) -> list[str]:
        """An admin's cancel of the cluster's orphans before their grace is over (server/orphan_cancel.py): each is
        sent a Cancel now and recorded in `cancels`, so a later report naming it (or the agent's re-sync, if it is
        away) is answered at once, until the member confirms; it leaves the orphans, and the count, now. Returns
        the placement ids cancelled, in id order."""
        held = self._held.get(cluster, {})
        pids = sorted(held)
        if not pids:
            return []
        reason = f"orphan: cancelled by {by} (federator cancel --orphans)"
        self.cancels.record(cluster, pids, now=self.fed.clock())
        for pid in pids:
            self._why[(cluster, pid)] = reason
            self.fed.send(cluster, CancelOrder(pid, reason))
        self._held[cluster] = {}
        self._due.pop(cluster, None)
        self.fed.metrics.orphan_placements.labels(cluster).set(0)
        log.warning("cluster %s: %d orphan placement(s) cancelled by %s before --orphan-grace, e.g. %s", cluster,
                    len(pids), by, pids[0])
        return pids

    def forget(self, cluster: str) -> None:
        """A cluster forgotten (server/leases.py): its series goes with it."""
        self._held.pop(cluster, None)
        self._due.pop(cluster, None)
        self._foreign.pop(cluster, None)
        self.adoption.forget(cluster)
        self.cancels.forget(cluster)
        for gauge in (self.fed.metrics.orphan_placements, self.fed.metrics.unconfirmed_cancels):
            try:
                gauge.remove(cluster)
            except KeyError:
                pass

    def _say(self, cluster: str, held: dict[str, float], *, new: set[str], cancel: set[str]) -> None:
        """A WARNING when orphans appear on a cluster (held, with the count), and when their cancels start."""
        said = self._due[cluster] = self._due.get(cluster, set()) & held.keys()  # those still held
        waiting = new - cancel
        older = {pid: job for pid in waiting | cancel if (job := self._held_older(pid, cluster)) is not None}
        if older:  # "no record of" these jobs would be false (outside operator QA F3): say what the store holds
            self._say_older(cluster, held, waiting=waiting, due=cancel - said, older=older)
            self._due[cluster] = said | cancel
            return
        if waiting:
            log.warning("cluster %s runs %d placement(s) of jobs this federator's store has no record of (it holds "
                        "%d jobs), e.g. %s: held, and cancelled after --orphan-grace (%gs). %s", cluster, len(held),
                        len(self.fed.jobs), min(waiting), self.grace, self.story)
        due = cancel - said
        if due:
            log.warning("cluster %s: cancelling %d placement(s) of jobs this federator's store has no record of "
                        "(reported for --orphan-grace, %gs), e.g. %s", cluster, len(due), self.grace, min(due))
            said |= due


    def _say_older(self, cluster: str, held: dict[str, float], *, waiting: set[str], due: set[str],
                   older: dict[str, Job]) -> None:
        """`_say` when some orphans are of jobs the store holds at an older generation (a restored backup): the
        job is there, its placement is newer than the store."""
        known = sum(1 for pid in held if self._held_older(pid, cluster) is not None)
        which = (f"{known} of jobs it holds at an older generation, {len(held) - known} of jobs it has no record of"
                 if known < len(held) else "of jobs it holds at an older generation")
        for pids, what in ((waiting, f"held, and cancelled after --orphan-grace ({self.grace:g}s)"),
                           (due, f"cancelling them now (reported for --orphan-grace, {self.grace:g}s)")):
            if not pids:
                continue
            pid = min(pids & older.keys() or pids)
            job = older.get(pid)
            example = (f"{pid}, whose job {job.job_id} the store holds as {job.phase.value} at generation "
                       f"{job.generation}" if job is not None else f"{pid}, of a job the store has no record of")
            if job is not None and job.hold is not None:  # released since the backup: its owner sees only Held
                example += (" and held (a release since the backup is undone; its owner sees only Held: a release "
                            "adopts this placement, a cancel stops it)")
            elif (job is not None and pids is waiting and job.phase is JobPhase.PENDING
                  and (named := job_of(pid, cluster)) is not None):  # goagentqa62 M4: it may become the job's own
                what += next_same_id(job.generation, named[1]).replace(", and the job placed again", "")
            if pids is waiting:
                what += f". {self.story}"
            log.warning("cluster %s runs %d placement(s) newer than this federator's store (it holds %d jobs), %s; "
                        "e.g. %s: %s", cluster, len(held), len(self.fed.jobs), which, example, what)


def other_owner(job: Job | None, placement_id: str, cluster: str) -> str:
    """The other cluster whose placement (of a job the store holds) `placement_id` is; "" if none."""
    if job is None:
        return ""
    owner = next((p.cluster for p in job.placements if p.placement_id == placement_id), "")
    return owner if owner != cluster else ""


__all__ = ["DEFAULT_ORPHAN_GRACE_SECONDS", "DELETED_REASON", "FOREIGN", "SQLITE_STORY", "Orphans", "job_of"]
