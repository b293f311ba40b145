"""Moving a placement the member's own queue holds too long: only to where the job can run now.

Why: a member running Kueue admits work in its own order and to its own quota,
which the federator sees only in part (a cohort's loans, local work queued
first). The agent used to delete a placement Kueue had held past its admission
timeout, and the federator placed the job again; where no other cluster could
run it (the only member with its model), that was the same member, at the back
of Kueue's queue, again after every timeout, so the job never reached the front.
Whether a job can run elsewhere is known only here, with every member's report.
So the agent asks (`JobUpdate.admission_overdue`) and the federator answers:
it moves the job when a cycle would place all of it on another Ready cluster
now, and otherwise leaves it in the member's queue, where it keeps its place.

The test is the scheduler's own cycle over the snapshot without the holding
cluster, with the job's queue usage as it stands and no preemption: a move
never evicts anyone. Jobs spread over several clusters are not moved: their
other replicas run, and a share is not a job.
"""

from __future__ import annotations

from federator.model import Job
from federator.scheduler import Allocation, Scheduler, Snapshot
from federator.scheduler.framework import PlacementRequest


def room_elsewhere(scheduler: Scheduler, snapshot: Snapshot, running: list[Allocation], job: Job, cluster: str,
                   avoid: tuple[str, ...], now: float) -> str:
    """The cluster a cycle would place the whole of `job` on now, `cluster` and `avoid` left out ("" when none
    would, when it would only by preempting, or when the job runs on more than `cluster`)."""
    active = [p for p in job.placements if p.phase.is_active]
    if len(active) != 1 or active[0].cluster != cluster:
        return ""
    others = Snapshot.of([c for c in snapshot.clusters if c.name != cluster])
    request = PlacementRequest(job.job_id, job.spec, job.spec.replicas, job.submitted_at,
                               avoid_clusters=tuple(sorted(set(avoid) | {cluster})))
    result = scheduler.schedule(others, [request], running=[a for a in running if a.job_id != job.job_id], now=now)
    if result.preemptions or not result.decisions:
        return ""
    assignments = result.decisions[0].assignments
    if sum(a.replicas for a in assignments) < job.spec.replicas:
        return ""
    return ",".join(sorted({a.cluster for a in assignments}))


def moved_reason(cluster: str, placement_id: str, message: str, target: str, chars: int) -> str:
    """The job's re-queue reason when its held placement moves."""
    return (f"{cluster} held placement {placement_id} unadmitted past its admission timeout "
            f"({message[:chars]}); moved: {target} can run it now")


def kept_message(cluster: str, message: str) -> str:
    """The placement's message when no other cluster can run the job: it stays in the member's queue."""
    return f"{message}; no other cluster can run it now, so it keeps its place in {cluster}'s queue"


__all__ = ["kept_message", "moved_reason", "room_elsewhere"]
