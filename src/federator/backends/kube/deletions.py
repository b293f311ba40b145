"""A deleted FederatedJob's job: cancelled, its cancels recorded, and forgotten once the object is gone.

Why a module of its own: the controller (controller.py) decides when an object is being deleted and removes its
finalizer; what the deletion does to the job is here. The job is cancelled (the federator sends the member
cluster's agent a Cancel, and its Job or Deployment is deleted). Before the finalizer goes, the job's placements
are recorded as cancels their members have not confirmed, on each one's MemberCluster (cancel_records.py): the job's
own record goes with the object, and before, a federator restarted while an agent was away knew nothing of the job,
so the agent's workload was an orphan held for --orphan-grace (outside QA F7). The finalizer is not held until the
member confirms: `kubectl delete` (and a namespace's deletion) would hang for as long as an agent is away, a day
for a cluster that is down, and users would strip the finalizer to get on, losing the cancel altogether (F2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from federator.backends.kube.member_clusters import MemberClusters
from federator.model import Job, JobId, JobPhase
from federator.server.federator import NotFound
from federator.server.orders import CancelOrder
from federator.server.retention import forget_job
from federator.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from federator.backends.kube.store import KubeJobStore
    from federator.server.federator import Federator

log = logging.getLogger("federator.kube.controller")


class Deletions:
    """The job side of FederatedJobs that go: cancel, record the cancels members owe, forget."""

    def __init__(self, fed: Federator, store: KubeJobStore, members: MemberClusters, *,
                 clock: Callable[[], float]) -> None:
        self.fed = fed
        self.store = store
        self.members = members
        self.clock = clock
        # Jobs whose deletion is said already: every event of a deleting object (the deletionTimestamp, each status
        # write of the cancel, the finalizer's removal, DELETED) cancels again, and each said it, 3 to 8 lines for
        # one `kubectl delete` (vendor QA vendqa61 V8). Emptied by `forget`, when the object is gone, and by
        # `cancel_orphans` for an object that went while no federator watched (no event of it comes).
        self._said: set[str] = set()
        # Per job, the placements a deletion's cancel was sent for (a finished job's, whose workloads stay): each
        # event sent it again, harmless but noise on the member's stream and in its log. Sent once per placement
        # until the object is gone (`forget`) or the federator restarts (then once more: the member may have
        # missed it).
        self._ordered: dict[str, set[str]] = {}

    async def cancel_orphans(self, uids: Iterable[str | None]) -> None:
        """Jobs whose FederatedJob vanished while no federator watched (a forced delete) are cancelled: those whose
        owner's uid is none of `uids` (the objects the informer lists)."""
        present = set(uids)
        for job in list(self.fed.jobs.values()):
            owner = self.store.owner_of(job.job_id)
            if owner is not None and owner.uid not in present and not job.phase.is_terminal:
                try:
                    live: set[str] = {p.placement_id for p in job.placements if not p.phase.is_terminal}
                    await self.cancel(job.job_id, f"{owner.namespace}/{owner.name}")
                    self._ordered.pop(job.job_id, None)  # its object is gone: no event will ask again,
                    self._said.discard(job.job_id)  # nor a DELETED `forget` it (both kept it for good before)
                    self.record(job, live)  # written by the MemberCluster loop: no finalizer waits for it
                except StoreUnavailable as exc:  # the next start (or leader) tries again
                    log.warning("job %s of a vanished FederatedJob not cancelled: %s", job.job_id, exc)

    async def cancel(self, job_id: str, what: str) -> None:
        """The job of a deleted FederatedJob cancelled, its write awaited off the event loop (server/cancelling.py:
        a status write, an HTTP round trip, held the loop before)."""
        try:
            before = self.fed.get(job_id)
            finished = before.phase.is_terminal
            live = {p.placement_id for p in before.placements if not p.phase.is_terminal}
            job = await self.fed.cancel_async(job_id)
        except NotFound:
            return
        sent = self._ordered.setdefault(job_id, set())
        if not finished and job.phase is JobPhase.CANCELLED:
            sent |= live  # the cancel sent these: the events after it find the job ended, and must not again
        else:  # ended before its cancel, or while it was stored
            # A finished job's workloads (its Job and Service, a JobSet and its children) stay in the
            # member until their TTL, if any; the FederatedJob going means the user is done with them.
            # Best effort: a member whose agent is away keeps them (a Job until its TTL).
            for p in job.placements:
                if p.placement_id not in sent:
                    sent.add(p.placement_id)
                    self.fed.send(p.cluster, CancelOrder(p.placement_id, f"FederatedJob {what} deleted",
                                                         job_ended=True))
        if job_id not in self._said:
            self._said.add(job_id)
            log.info("FederatedJob %s deleted: job %s is %s", what, job_id, job.phase)

    def record(self, job: Job, live: set[str]) -> list[str]:
        """Record the cancels of a job's placements that a member may still run (server/unconfirmed_cancels.py):
        those that ran until this cancel (`live`), and the cancelled ones on a cluster that is away (a deletion
        tried again, or taken over by a new leader, after the cancel was stored). Not a finished placement: its
        agent lists it in no report, so it is never an orphan, and it would confirm nothing. The clusters of the
        job; a record past its bound drops its oldest entries, said here."""
        book = self.fed.orphans.cancels
        clusters: dict[str, list[str]] = {}
        for p in job.placements:
            rec = self.fed.clusters.get(p.cluster)
            if rec is None:
                continue  # forgotten: nothing of it is expected back
            clusters.setdefault(p.cluster, [])
            if p.placement_id in live or (p.phase is JobPhase.CANCELLED and not rec.connected):
                clusters[p.cluster].append(p.placement_id)
        for cluster, pids in clusters.items():
            dropped = book.record(cluster, pids, now=self.clock())
            if dropped:
                log.warning("cluster %s: the record of cancels its member has not confirmed is full (%d placements); "
                            "the oldest %d dropped, e.g. %s: if that member still runs them after a federator "
                            "restart they are orphans, held for --orphan-grace", cluster, book.count(cluster),
                            len(dropped), dropped[0])
        return list(clusters)

    async def keep_cancels(self, job: Job, live: set[str]) -> None:
        """The record of the job's cancels, written to its clusters' MemberClusters before its finalizer goes."""
        await self.members.flush_cancels(self.record(job, live))  # and cancels of moves, say

    def forget(self, job_id: str) -> None:
        """The object is gone, so is its job, from every view: `federator get jobs` (gRPC) listed a deleted
        FederatedJob's job until the federator restarted, while kubectl said NotFound. Its cancel is stored and
        sent already (`cancel`, before the finalizer went).

        Its earlier placements' index entries (refused, lost, moved, superseded) go with it, as retention's do
        (`forget_job`; soak S5: they stayed for ever), at the cost of the job's own placements, not of the index
        (server/placement_index.py): a namespace of 30,000 deleted costs what those jobs placed."""
        self._said.discard(job_id)
        self._ordered.pop(job_id, None)
        job = self.fed.jobs.get(JobId(job_id))
        if job is not None and job.phase.is_terminal:
            forget_job(self.fed, job)
            self.store.forget(job.job_id)  # and what the store kept of it (QA kubescaleqa62 M1)
            self.fed.notify([job])  # a Watch of it ends (NOT_FOUND)


__all__ = ["Deletions"]
