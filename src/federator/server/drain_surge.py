"""A drain moves a serving job's replicas surge first: placed elsewhere, then ended on the drained cluster.

Why: a drain ended an inference job's replicas on the drained cluster and let the cycle place them again after
(server/drains.py), so the job served short for as long as the new ones took to start. A drain is planned (a
provider takes its cluster down on purpose), so there is time to surge: the replacements start first, and the
drained cluster's part ends only once they serve. Training gangs stay end-and-requeue (all or nothing on one
cluster: a surge would hold the accelerators of two gangs, and two writers of one checkpoint).

For each serving job (`surges`) with a placement on a cluster being drained, each turn (`Surges.step`):

1. Its parts elsewhere hold fewer replicas than it asks: the drained part's replicas are asked of the scheduler
   (no preemption; the gangs' reserved room kept clear), off the drained cluster (cordoned, so never back on it),
   the job's other regions counting toward its minRegions and spread as a rest does. All of them or none: a
   surge that fits in part is not started (its drained part could not end until the rest is found). Placed, the
   new parts are stored before any agent hears of them, at the job's next generation. Not placed: tried again
   next turn ("no room elsewhere").
2. Its parts elsewhere hold its count: once each serves (Running, all replicas ready), exactly the drained
   cluster's part is ended (stored first, then Cancel). Not the rebalancer's scale-down choice (server/
   rebalancing.py takes a surplus by `plan_down`, nearest kept, which could keep the drained replicas and stop
   the new ones): the rebalancer leaves alone every job with a part on a cluster being drained.
3. The bound: the drain's `surge_seconds` (its operator's, `DrainClusterRequest.surge_seconds`; else
   `SURGE_SECONDS`, 10 minutes) after the drain first reached the job, its drained part ends anyway: by step 2's
   hand-over if its replacements are placed (they go on starting), else as before (server/drains.py `end`: the
   job owes those replicas, and the cycle places them where room comes). Why end rather than wait: the drain is
   how an operator learns when the cluster may go down, and a drain that never finished would be taken down
   anyway, unannounced; the bound keeps "Drained" within a known time while the replicas serve until then.

Restart safety: nothing of a surge is only in memory but when the drain first reached the job. The new parts
are stored with the job; after a restart the same step finds the job holding its count off the drained cluster
and ends the drained part once they serve (never double replicas for good, never the new ones stopped). The
bound counts again from the restart (a surge is then given its full time again, not cut short).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING

from federator.model import Job, JobId, JobKind, Placement, Reason, ReasonCode
from federator.model.cordon import SURGE_SECONDS, Drain
from federator.scheduler import Assignment, PlacementRequest
from federator.server.job_message import job_message, placements_message
from federator.server.maintenance_windows import windowed
from federator.server.new_placements import new_placements
from federator.server.orders import LaunchOrder, Order
from federator.server.partial import kept_replicas, supersede_part
from federator.server.rebalance import serving
from federator.server.scaling import scaled
from federator.store.errors import StoreUnavailable
from federator.store.group_commit import freeze

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")


def drained_reason(cluster: str, drain: Drain) -> Reason:
    """The pending reason of a job a drain requeued, or whose drained part a surge ended:
    "Drained: cluster east-1 drained by alice: hw swap"."""
    return Reason(ReasonCode.DRAINED, f"cluster {cluster} {drain.describe()}")



class Step(StrEnum):
    """What a turn did, or found, for one serving job on a drained cluster."""

    PLACE = "place"  # no replacements yet: to be asked of the scheduler this turn
    STARTING = "starting"  # replacements placed, not all serving yet
    HANDED_OVER = "handed-over"  # the drained part ended, the replacements serving (or past the bound)
    ENDED = "ended"  # past the bound with no replacement: ended and owed, as a gang is


def surges(job: Job) -> bool:
    """Whether a drain moves `job` surge first: a serving (inference) job, placed or running; one replica too (it
    would serve nothing at all between its end and its new start)."""
    return job.phase.is_active and job.spec.kind is JobKind.INFERENCE


def split(job: Job, cluster: str) -> tuple[list[Placement], list[Placement]]:
    """The job's live parts on `cluster`, and elsewhere."""
    live = [p for p in job.placements if p.phase.is_active]
    return [p for p in live if p.cluster == cluster], [p for p in live if p.cluster != cluster]


class Surges:
    """When the drain first reached each serving job, and what waits for room (module docstring)."""

    __slots__ = ("fed", "no_room", "seconds", "since")

    def __init__(self, fed: Federator, *, seconds: float | None = None) -> None:
        self.fed = fed
        self.seconds = seconds  # every drain's bound, over its own (tests); None: each drain's `surge_seconds`
        self.since: dict[tuple[str, JobId], float] = {}  # (cluster, job) -> when the drain first reached it
        self.no_room: dict[str, int] = {}  # per drained cluster: jobs whose last surge found no room elsewhere

    def bound(self, drain: Drain) -> float:
        """The surge bound of `drain` (module docstring, 3)."""
        return drain.surge_seconds if self.seconds is None else self.seconds

    def forget(self, draining: Sequence[str]) -> None:
        """Drop what belongs to drains no longer held (an Uncordon ends one)."""
        self.since = {k: t for k, t in self.since.items() if k[0] in draining}
        self.no_room = {c: n for c, n in self.no_room.items() if c in draining}

    def still(self, cluster: str, left: Sequence[Job]) -> None:
        """Forget when the drain of `cluster` reached the jobs no longer on it (ended, cancelled, moved)."""
        ids = {job.job_id for job in left}
        self.since = {k: t for k, t in self.since.items() if k[0] != cluster or k[1] in ids}

    def starting(self, cluster: str, left: Sequence[Job]) -> int:
        """Of `left`, the jobs on `cluster` (Drains.left, read once by the caller), those whose replacements are
        placed and not all serving yet (ClusterStatus)."""
        out = 0
        for job in left:
            if surges(job):
                _, off = split(job, cluster)
                out += sum(p.replicas for p in off) >= job.spec.replicas
        return out

    def step(self, job: Job, cluster: str, drain: Drain) -> Step:
        """Steps 2 and 3 of the module docstring for one job; PLACE when step 1 is due."""
        now = self.fed.clock()
        first = self.since.setdefault((cluster, job.job_id), now)
        over = now - first >= self.bound(drain)
        _, off = split(job, cluster)
        if sum(p.replicas for p in off) >= job.spec.replicas:
            if over or all(serving(p) for p in off):
                return Step.HANDED_OVER if self.hand_over(job, cluster, drain, late=not all(map(serving, off))) \
                    else Step.STARTING
            return Step.STARTING
        if over:
            self.fed.drains.end(job, cluster, drain)
            self.since.pop((cluster, job.job_id), None)
            return Step.ENDED
        return Step.PLACE

    def place(self, cluster: str, jobs: Sequence[Job]) -> int:
        """Step 1 for `jobs` of `cluster`, in one scheduler call: how many surges started."""
        fed = self.fed
        now = fed.clock()
        requests, leaving = [], set()
        for job in jobs:
            here, off = split(job, cluster)
            avoid = tuple(sorted({cluster, *fed.refusals.avoided(job.job_id, now)}))
            requests.append(PlacementRequest(job.job_id, job.spec, sum(p.replicas for p in here), job.submitted_at,
                                             avoid_clusters=avoid,
                                             kept_regions=tuple(sorted({p.region for p in off})),
                                             kept_replicas=kept_replicas(job.spec, off)))
            leaving.add(job.job_id)
        # The drained parts' hold on their queue's quota is leaving with them: the surge replaces it, so it is not
        # counted twice (a job at its quota could never surge).
        running = [a for a in fed.cycles.running() if not (a.job_id in leaving and a.cluster == cluster)]
        reserved = fed.cycles.reserved
        scheduler = fed.cycles.rebalancer.scheduler(fed.scheduler.config)  # no preemption: a surge evicts nobody
        asked, ahead = windowed(fed, requests)  # a maintenance window ahead (server/maintenance_windows.py)
        result = scheduler.schedule(fed.cycles.snapshot(), asked, running=running, now=now,
                                    reservations=reserved.current(), resting=reserved.resting(), maintenance=ahead)
        decided = {d.job_id: d for d in result.decisions}
        started = 0
        for job, request in zip(jobs, requests, strict=True):
            d = decided.get(job.job_id)
            whole = d is not None and sum(a.replicas for a in d.assignments) == request.replicas and \
                all(a.cluster != cluster for a in d.assignments)
            if d is not None and whole and self._start(job, cluster, d.assignments):
                started += 1
        self.no_room[cluster] = len(jobs) - started
        return started

    def _start(self, job: Job, cluster: str, assignments: Sequence[Assignment]) -> bool:
        """Place a surge's new parts: stored before any agent hears of them, the write awaited off the loop
        (server/stored_first.py); whether it was decided (not stored: asked again next turn)."""
        fed = self.fed
        n = sum(a.replicas for a in assignments)
        to = sorted({a.region for a in assignments})
        said = f"surging {n} replica{'s' if n != 1 else ''} to {' and '.join(to)} before cluster {cluster}'s end"
        stored = freeze(job)
        stored.generation += 1
        stored.placements = [*stored.placements, *new_placements(job.job_id, stored.generation, assignments)]
        stored.message = f"{said}; {placements_message(stored)}"

        def apply() -> None:  # stored: the surge starts
            job.generation = stored.generation
            new = new_placements(job.job_id, job.generation, assignments)
            job.placements = [*job.placements, *new]
            job.message = stored.message
            orders: list[tuple[str, Order]] = []
            for p in new:
                fed.placement_index.add(p.placement_id, job.job_id)
                orders.append((p.cluster, LaunchOrder(p, job.spec)))
            fed.cycles._held(job)  # a preemptible job's new parts may be preempted, as the cycle's are
            fed.metrics.drain_surges.labels("started").inc()
            log.info("job %s: %s", job.job_id, said)
            for target, order in orders:
                fed.send(target, order)
            fed.notify([job])

        return fed.stored_first.run(job, stored, apply=apply, failed=partial(_not_stored, job, "a drain's surge"))

    def hand_over(self, job: Job, cluster: str, drain: Drain, *, late: bool) -> bool:
        """End exactly the job's parts on `cluster`, its replacements elsewhere holding its count (serving, or
        `late`: past the bound): stored first (off the loop: server/stored_first.py), then Cancel; whether it was
        decided (not stored: tried again next turn)."""

        fed = self.fed
        here, off = split(job, cluster)
        reason = drained_reason(cluster, drain)
        n = sum(p.replicas for p in here)
        to = " and ".join(sorted({p.region for p in off}))
        said = (f"moved {n} replica{'s' if n != 1 else ''} off cluster {cluster} ({drain.describe()}) to {to}"
                + (f", ended after {self.bound(drain):g} s with their replacements still starting" if late
                   else ", their replacements serving first"))
        stored = scaled(fed, job, job.spec, here, reason)
        stored.message = f"{said}; {stored.message}"

        def apply() -> None:  # stored: the drained part ends
            cancels = supersede_part(fed, job, {p.placement_id for p in here}, reason, surged=True) or []
            job.generation += 1
            if not job.replicas_waiting:
                job.pending_reason = None  # it holds all it asked for: nothing waits
            job.message = f"{said}; {job_message(job, fed.clusters, lost_after=fed.lost_after_seconds)}"
            self.since.pop((cluster, job.job_id), None)
            fed.metrics.drained_placements.labels(cluster).inc(len(here))
            fed.metrics.drain_surges.labels("late" if late else "completed").inc()
            log.info("job %s: %s", job.job_id, said)
            for target, order in cancels:
                fed.send(target, order)
            fed.notify([job])

        return fed.stored_first.run(job, stored, apply=apply,
                                    failed=partial(_not_stored, job, "the end of a drain's surge"))


def _not_stored(job: Job, what: str, error: StoreUnavailable | None) -> None:
    """A surge's start or end not stored (`error`), or not applied since the job changed meanwhile (None): the next
    turn decides again from the job as it is."""
    if error is not None:
        log.warning("job %s: %s not stored (%s): tried again next turn", job.job_id, what, error)


__all__ = ["SURGE_SECONDS", "Step", "Surges", "drained_reason", "split", "surges"]
