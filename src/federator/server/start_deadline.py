"""A placement its cluster does not start within --start-timeout is placed again elsewhere.

Why: a member is trusted to run what it takes. An agent that reported room, acknowledged every Launch and never
started one (a broken member, a provider's bug, or a provider that lies) held the jobs it took in Placed for
ever, with an empty message, while clusters with room sat idle: nothing but the cluster going Lost took them
back, and an agent that keeps its stream up never goes Lost. Outside QA's "black hole" agent held 11 of 12 jobs
that way.

The rule, checked every CHECK_SECONDS: a placement still Placed `timeout` seconds after the later of its own
placement and its cluster's last turn to Ready (a cluster that was away had no chance to start it; the Lost path
is for that) has its job queued again, that cluster avoided for that job as after a refusal
(server/refusals.py), counted in `federator_placement_start_timeouts_total{cluster}`, and said in the job's
reason. Exempt: a placement a Kueue member holds in its own queue that the federator chose to leave there
(server/moving.py: no other cluster can run it now), which is waiting, not stuck.

Its own placement, not its job's: job.placed_at moves whenever any part of the job is placed (a spread job's
part placed again, server/partial.py), and a rebalance's or a drain surge's new part does not move it at all. Counted
from job.placed_at, a part stuck for 25 minutes was given a fresh half hour when its sibling was placed again
(review60 R1), and a surge's new part of a job placed hours ago was overdue at the first look. No field of the
store says when a placement was made (schema 4), so the deadline notes it (`_placed`): the first look that sees a
placement dates it from the look before (it was made since), or from job.placed_at if that is later, which is the
case for the cycle's placements. A look comes every CHECK_SECONDS, so a date is at most that early. After a restart
the looks start again: a placement the store holds is dated from job.placed_at, the only clock stored, and its
cluster's return (after the restart) bounds it anyway, as for any cluster that was away.

The default, half an hour, is longer than a big image's pull on a slow link and a gang's admission; 0 turns it
off.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from federator.model import ClusterState, Job, JobPhase, Placement, PlacementId, Reason, ReasonCode
from federator.server.moving import is_kept
from federator.server.refusals import NOT_STARTED

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")

DEFAULT_START_TIMEOUT_SECONDS = 1_800.0
CHECK_SECONDS = 5.0


def overdue(job: Job, placement: Placement, *, started_clock: float, now: float, timeout: float) -> bool:
    """Still Placed `timeout` after `started_clock` (its own placement, or its cluster's return if later),
    and not held in a member's queue by the federator's own answer."""
    return (placement.phase is JobPhase.PLACED and now - started_clock > timeout
            and not is_kept(placement.message, placement.cluster))


class StartDeadline:
    """Moves the jobs whose placements their clusters do not start; see the module docstring."""

    def __init__(self, fed: Federator, *, timeout: float = DEFAULT_START_TIMEOUT_SECONDS) -> None:
        self.fed = fed
        self.timeout = timeout
        self._checked_at = 0.0
        self._placed: dict[PlacementId, float] = {}  # placement id -> when it was placed, for those still Placed

    def check(self) -> list[Job]:
        """The jobs queued again this turn (at most one look every CHECK_SECONDS)."""
        fed = self.fed
        now = fed.clock()
        if self.timeout <= 0 or now - self._checked_at < CHECK_SECONDS:
            return []
        looked, self._checked_at = self._checked_at, now
        was, placed = self._placed, dict[PlacementId, float]()
        moved: list[Job] = []
        for job in fed.cycles.active_jobs():
            waiting = [p for p in job.placements if p.phase is JobPhase.PLACED]
            for p in waiting:
                placed[p.placement_id] = was.get(p.placement_id, max(looked, job.placed_at))
            for p in waiting:
                rec = fed.clusters.get(p.cluster)
                if rec is None or rec.state is not ClusterState.READY:
                    continue
                if overdue(job, p, started_clock=max(placed[p.placement_id], rec.ready_at), now=now,
                           timeout=self.timeout):
                    self._move(job, p)
                    moved.append(job)
                    break
        self._placed = placed  # only those still Placed: memory in proportion to them
        return moved

    def _move(self, job: Job, p: Placement) -> None:
        fed = self.fed
        why = (f"{p.cluster} did not start placement {p.placement_id} within {self.timeout:g}s "
               "(--start-timeout); placing the job again, elsewhere if another cluster has room")
        log.warning("job %s: %s", job.job_id, why)
        fed.metrics.placement_start_timeouts.labels(p.cluster).inc()
        said = f": {p.message}" if p.message else ""  # the member's words on why it waits (Kueue, unschedulable)
        fed.refusals.note(job.job_id, p.cluster, fed.clock(), f"for {self.timeout:g}s{said}", did=NOT_STARTED)
        fed.requeue(job, Reason(ReasonCode.REFUSED_BY_CLUSTER, why), ended={p.placement_id})


__all__ = ["DEFAULT_START_TIMEOUT_SECONDS", "StartDeadline", "overdue"]
