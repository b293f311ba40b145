"""A member cluster with a maintenance window ahead takes only the jobs whose run ends before the window begins.

Why: a cordon acts now, so an admin who announced maintenance on east-1 for Tuesday 08:00 could not keep a 12-hour
job from starting there at 23:00 the night before (outside HPC QA, H12; Slurm answers it with a reservation and
backfill). The federator knows how long each job may run (its spec.maxRunSeconds, else its queue's bound:
`SchedulerConfig.run_limit`), so it can tell the jobs that will be done in time from those that would cross the
window.

The constraint as the cycle gets it: per cluster, an instant T (Unix seconds, `CycleContext.maintenance`) after
which no job it places there may still run, and the cycle's `now`. A request carries its run bound
(`PlacementRequest.run_seconds`, 0: none). A cluster passes when the bound ends by T; a job with no bound is not
started there (decided: a job that may run for ever would cross any window), and the reason says so in the words
users.md lists. Once the window has begun the cluster is cordoned (Cordoned; `ClusterReady` rejects it), so this
filter only ever speaks of a window still ahead: an instant already past rejects every job as a cordon does.

The code is ClusterNotReady, the code the cordon the window becomes gives, so a job's code does not change when the
window begins; the message tells the two apart. Pure: the server feeds T from its cordon records.
"""

from __future__ import annotations

from dataclasses import dataclass

from federator.model import ClusterInfo, Reason, ReasonCode
from federator.scheduler.framework import CycleContext, PlacementRequest
from federator.timestamps import duration, utc_seconds


def window_text(cluster: str, starts_at: float, run_seconds: int, now: float) -> str:
    """Why `cluster`, whose maintenance begins at `starts_at`, does not start a job that may run `run_seconds`
    (0: no bound) at `now`: the words users.md lists, then this job's case."""
    said = (f"{cluster} has maintenance from {utc_seconds(starts_at)}: a job with no run bound, or one that would "
            "cross it, is not started there")
    if run_seconds <= 0:
        return f"{said} (this job has no run bound: give spec.maxRunSeconds)"
    left = starts_at - now
    if left <= 0:
        return f"{said} (it has begun)"
    return f"{said} (this job may run {duration(run_seconds)}; it begins in {duration(left)})"


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """No job goes to a cluster whose maintenance window begins before the job's run bound would end."""

    name: str = "MaintenanceWindow"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        starts_at = ctx.maintenance.get(cluster.name)
        if starts_at is None:
            return None
        bound = request.run_seconds
        if bound > 0 and ctx.now + bound <= starts_at:
            return None
        return Reason(ReasonCode.CLUSTER_NOT_READY, window_text(cluster.name, starts_at, bound, ctx.now))


__all__ = ["MaintenanceWindow", "window_text"]
