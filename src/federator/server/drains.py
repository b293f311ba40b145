"""Draining a member cluster: its federated work is moved off before it is taken down.

Why: a cordon (server/cordons.py) and a provider's maintenance (server/maintenance.py) keep new work off a
cluster and leave what runs there. Before a cluster is taken down for good, or for hours, its provider asked for
a way to move that work off (outside provider QA, F5): the only one was `federator cancel`, after which a job was
placed again only if its user resubmitted it, under a new id and with its history gone.

`federator drain CLUSTER --reason TEXT` (gRPC `ClusterService.Drain`; in Kubernetes mode also `spec.drain: true`
on the MemberCluster) cordons the cluster and then, a batch per turn of the federator's loop (`Drains.turn`),
requeues each job with a placement there as the same job (id, name and history kept), its pending reason
"Drained: cluster east-1 drained by alice: <reason>", for the normal cycle to place elsewhere:

- A training gang (all or nothing, on one cluster) is ended whole and placed again whole.
- A job spread over clusters (inference) is moved surge first (server/drain_surge.py): its drained replicas are
  placed elsewhere first, and only once those serve are exactly the drained cluster's replicas ended; it never
  serves short for the drain when there is room elsewhere. With no room, its replicas serve on where they are, and
  end anyway the drain's `surge_seconds` (10 minutes unless its operator set it) after the drain reached the job
  (owed then, as a gang's are), so a drain finishes in a known time. The rebalancer leaves such jobs alone
  meanwhile (server/rebalancing.py).
- Paced: at most `BATCH` jobs a turn over every drain. Each requeue is a store write on the loop, and the loop
  must not stall on 500 of them (leases, agent streams); the turn's cycle then places the batch before the next
  ends, so room elsewhere is taken in order and the cycle's cost stays bounded. The newest placements end first:
  an Uncordon midway spares the work that has run longest.
- Only while the cluster is Ready with its agent connected. A placement its cluster cannot be told to stop would
  run twice (two writers of one checkpoint): that trade is made in one place only, the failover of a Lost
  cluster (server/leases.py, with its `failover: keep`). Meanwhile the drain holds and waits (`waiting`).
- Every job is drained, `failover: keep` ones too: that policy is about a cluster that went away by itself; the
  admin is taking this one down.

Held in the store as part of the cordon (model/cordon.py `Cordon.drain`), so a federator that restarts mid-drain
goes on with the jobs not moved yet; the ones it moved are stored Pending (or short) before their agent hears of
it, so none is lost. A drain done stays until Uncordon, which ends the drain and the cordon together: the
cluster shows Drained (no federated work, none comes) instead of the drain disappearing by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

from federator.model import ClusterState, Job
from federator.model.cordon import Drain
from federator.server.drain_surge import Step, Surges, drained_reason, surges

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")

BATCH = 32
"""Jobs a loop turn requeues at most, over every drain: each is a store write on the loop (module docstring)."""
SHOWN_JOBS = 100
"""Job ids a Drain reply lists at most (DrainClusterResponse.jobs says how many)."""


class Drains:
    """The drains' progress: which jobs each still has to move, why one waits, and the loop's turn that moves
    them. What drains is the cordons' (`fed.cordons.draining()`), so it is stored and read back with them."""

    __slots__ = ("_done", "_waited", "batch", "fed", "surges")

    def __init__(self, fed: Federator, *, batch: int = BATCH) -> None:
        self.fed = fed
        self.batch = batch  # jobs a turn requeues at most
        self._waited: dict[str, str] = {}  # why each drain waited at its last turn: logged once, not every turn
        # The drains that found nothing left to move: no turn looks through the jobs for them again. Nothing comes
        # back while the drain holds (the cordon keeps new placements off), and a new drain is another Drain.
        self._done: dict[str, Drain] = {}
        self.surges = Surges(fed)  # serving jobs moved surge first (server/drain_surge.py)

    def on(self, clusters: Collection[str]) -> dict[str, list[Job]]:
        """The jobs with a placement not finished on each of `clusters`, in the order a drain ends them: newest
        placed first (Job.placed_at), then by id. One pass over the jobs that hold placements (`_holding`)."""
        out: dict[str, list[Job]] = {c: [] for c in clusters}
        for cluster, job in self._holding(out):
            out[cluster].append(job)
        for jobs in out.values():
            jobs.sort(key=lambda job: (-job.placed_at, job.job_id))
        return out

    def left(self, cluster: str) -> list[Job]:
        """The jobs with a placement on `cluster` not finished, in the order a drain ends them (`on`)."""
        return self.on((cluster,))[cluster]

    def counts(self) -> dict[str, int]:
        """Jobs left to move of every cluster a drain holds (0 once drained), in one pass over the jobs holding
        placements: what a scrape reports (server/state_sample.py). Counted as found, never listed and sorted
        in a drain's order (`on`) only for their number: a scrape asks this every 15 seconds."""
        out = dict.fromkeys(self.fed.cordons.draining(), 0)
        for cluster, _job in self._holding(out):
            out[cluster] += 1
        return out

    def _holding(self, clusters: Collection[str]) -> Iterator[tuple[str, Job]]:
        """Each job with a placement not finished on one of `clusters`, once for each such cluster. One pass over
        the jobs that hold placements (`Cycles.active_jobs`), never over every job: with a national backlog of
        100,000 pending jobs, the loop's turn, each scrape and each cluster List walked all of them for a drain of
        a few (docs/benchmarks.md, "Drains"). Only a Placed or Running job holds a placement: a requeue leaves a
        job Pending with none (Federator.supersede), a spread job that lost a part stays Placed or Running
        (server/partial.py)."""
        if not clusters:
            return
        for job in self.fed.cycles.active_jobs():
            for cluster in {p.cluster for p in job.placements if p.cluster in clusters and not p.phase.is_terminal}:
                yield cluster, job

    def waiting(self, cluster: str) -> str:
        """Why a drain of `cluster` cannot end placements now ("" when it can)."""
        rec = self.fed.clusters.get(cluster)
        if rec is None:
            return (f"no agent of cluster {cluster} has connected to this federator: it is cordoned from its first "
                    f"connection and holds no job")
        if not rec.connected or rec.closing:
            return (f"the agent of cluster {cluster} is not connected ({rec.state.value}): its placements would run on "
                    f"unstopped, so the drain waits for it to reconnect (if the cluster turns Lost, its jobs fail "
                    f"over as a Lost cluster's do)")
        if rec.state is not ClusterState.READY:
            return (f"cluster {cluster} is {rec.state.value}, not Ready: its agent could not stop its placements, so "
                    f"the drain waits until it is Ready again")
        return ""

    def turn(self) -> int:
        """Move up to `batch` jobs of the clusters being drained (module docstring): a gang ended, a serving job's
        surge placed or handed over (server/drain_surge.py); how many were."""
        draining = self.fed.cordons.draining()
        self._waited = {c: w for c, w in self._waited.items() if c in draining}
        self._done = {c: d for c, d in self._done.items() if draining.get(c) == d}
        self.surges.forget(list(draining))
        budget = self.batch
        on = self.on([c for c in draining if c not in self._done])  # one pass for every drain moving
        for cluster, drain in sorted(draining.items()):
            if budget <= 0:
                break
            if cluster in self._done:
                continue
            why = self.waiting(cluster)
            if why:
                if self._waited.get(cluster) != why:
                    log.warning("drain of cluster %s waits: %s", cluster, why)
                self._waited[cluster] = why
                continue
            self._waited.pop(cluster, None)
            # still there: an earlier drain's turn may have moved a job spread over both clusters
            left = [job for job in on[cluster] if job.phase.is_active and
                    any(p.cluster == cluster and not p.phase.is_terminal for p in job.placements)]
            self.surges.still(cluster, left)
            if not left:
                log.warning("cluster %s drained: no federated job has a placement there; it takes no new work until "
                            "uncordoned", cluster)
                self._done[cluster] = drain
            to_place: list[Job] = []
            for job in left:
                if budget <= len(to_place):
                    break
                if not surges(job):
                    self.end(job, cluster, drain)
                    budget -= 1
                    continue
                if self.fed.stored_first.busy(job.job_id):
                    continue  # its surge's start or end on its way to the disk (server/stored_first.py)
                step = self.surges.step(job, cluster, drain)
                if step is Step.PLACE:
                    to_place.append(job)
                elif step is not Step.STARTING:
                    budget -= 1
            if to_place:
                budget -= self.surges.place(cluster, to_place)
            else:
                self.surges.no_room.pop(cluster, None)
        return self.batch - budget

    def waiting_words(self, cluster: str) -> str:
        """Why the drain of `cluster` is not done moving now, in the operator's words ("" when it moves): its
        agent or state (`waiting`), or serving jobs that find no room elsewhere (ClusterStatus.drain_waiting)."""
        why = self.waiting(cluster)
        if why:
            return why
        n = self.surges.no_room.get(cluster, 0)
        drain = self.fed.cordons.draining().get(cluster)
        if not n or drain is None:
            return ""
        return (f"{n} serving job(s) find no room elsewhere for their replicas on cluster {cluster}: they serve there "
                f"meanwhile, and end anyway {self.surges.bound(drain):g} s after the drain reached them (then placed "
                f"elsewhere when room comes)")

    def end(self, job: Job, cluster: str, drain: Drain) -> None:
        """Requeue `job` off `cluster`: its placements there superseded (a spread job keeps its others), stored
        before its agent is told (Federator.requeue). A gang's way; a serving job's past the surge's bound."""
        ended = {p.placement_id for p in job.placements if p.cluster == cluster and not p.phase.is_terminal}
        self.fed.metrics.drained_placements.labels(cluster).inc(len(ended))
        log.info("job %s: %d placement(s) on cluster %s ended by its drain; placed again elsewhere", job.job_id,
                 len(ended), cluster)
        self.fed.requeue(job, drained_reason(cluster, drain), ended=ended)


__all__ = ["BATCH", "SHOWN_JOBS", "Drains", "drained_reason"]
