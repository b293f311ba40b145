"""A placement its cluster does not start within --start-timeout is placed again elsewhere.

Why: a member is trusted to run what it takes. An agent that reported room, acknowledged every Launch and never
started one (a broken member, a provider's bug, or a provider that lies) held the jobs it took in Placed for
ever, with an empty message, while clusters with room sat idle: nothing but the cluster going Lost took them
back, and an agent that keeps its stream up never goes Lost. Outside QA's "black hole" agent held 11 of 12 jobs
that way.

The rule, checked every CHECK_SECONDS: a placement still Placed `timeout` seconds after the later of its job's
placement and its cluster's last turn to Ready (a cluster that was away had no chance to start it; the Lost path
is for that) has its job queued again, that cluster avoided for that job as after a refusal
(server/refusals.py), counted in `federator_placement_start_timeouts_total{cluster}`, and said in the job's
reason. Exempt: a placement a Kueue member holds in its own queue that the federator chose to leave there
(server/moving.py: no other cluster can run it now), which is waiting, not stuck.

The default, half an hour, is longer than a big image's pull on a slow link and a gang's admission; 0 turns it
off.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from federator.model import ClusterState, Job, JobPhase, Placement, Reason, ReasonCode
from federator.server.moving import is_kept
from federator.server.refusals import NOT_STARTED

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")

DEFAULT_START_TIMEOUT_SECONDS = 1_800.0
CHECK_SECONDS = 5.0


def overdue(job: Job, placement: Placement, *, started_clock: float, now: float, timeout: float) -> bool:
    """Still Placed `timeout` after `started_clock` (its job's placement, or its cluster's return if later),
    and not held in a member's queue by the federator's own answer."""
    return (placement.phase is JobPhase.PLACED and now - started_clock > timeout
            and not is_kept(placement.message, placement.cluster))


class StartDeadline:
    """Moves the jobs whose placements their clusters do not start; see the module docstring."""

    def __init__(self, fed: Federator, *, timeout: float = DEFAULT_START_TIMEOUT_SECONDS) -> None:
        self.fed = fed
        self.timeout = timeout
        self._checked_at = 0.0

    def check(self) -> list[Job]:
        """The jobs queued again this turn (at most one look every CHECK_SECONDS)."""
        fed = self.fed
        now = fed.clock()
        if self.timeout <= 0 or now - self._checked_at < CHECK_SECONDS:
            return []
        self._checked_at = now
        moved: list[Job] = []
        for job in fed.cycles.active_jobs():
            if job.phase is not JobPhase.PLACED and not any(p.phase is JobPhase.PLACED for p in job.placements):
                continue
            for p in job.placements:
                rec = fed.clusters.get(p.cluster)
                if rec is None or rec.state is not ClusterState.READY:
                    continue
                if overdue(job, p, started_clock=max(job.placed_at, rec.ready_at), now=now, timeout=self.timeout):
                    self._move(job, p)
                    moved.append(job)
                    break
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
