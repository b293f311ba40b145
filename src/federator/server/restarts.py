"""A job's restart count: how many times a placement of it ended for a cause not its own and it was queued again.

Why: a gang placed again after its cluster was lost, its node went silent, it was preempted or failed early said
only "4 replicas running on nv-b"; its generation hinted it, and nothing said why the earlier placements ended
(outside pretraining QA, P5). A user reads kubectl's RESTARTS and Slurm's requeue count at a glance; `federator
get jobs` RESTARTS, `describe` and a FederatedJob's status.restarts say the same from these fields
(types.proto, Job.restarts). Counted here, where a job is queued again, and nowhere else, so each end counts once:
`requeue` (a Lost cluster, a refusal, a stop, an early failure, a failure with spec.failurePolicy restarts left
(server/failure_restarts.py, which counts Job.failure_restarts beside), a drain, a spec found invalid, a start deadline)
and a preemption. A scale up or down and a cancel never come here.
"""

from __future__ import annotations

from federator.model import Job, Reason

__all__ = ["count_restart"]


def count_restart(job: Job, reason: Reason, *, at: float, cluster: str = "") -> None:
    """One more restart of `job`, for `reason` (the code and words its wait begins with), at `at` (unix seconds);
    `cluster`: the one whose member reported the placement ended, if that was the cause (Job.last_restart_cluster)."""
    job.restarts += 1
    job.last_restart_reason = Reason(reason.code, reason.message)  # its words; `never` is of a wait, not stored
    job.last_restart_at = at
    job.last_restart_cluster = cluster
