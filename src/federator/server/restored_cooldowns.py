"""On start, the cluster each waiting job last failed on is avoided for what is left of its cool-down.

Why: a job a cluster failed (early, server/early_failures.py; or late with restarts left, server/failure_restarts.py)
avoids that cluster 30 s (server/refusals.py), elsewhere first. The cool-down was memory only, so a federator
restarted, or a new leader, within it placed the job straight back where it had failed, and it failed again,
spending a restart of its spec.failurePolicy (QA new59 N7: 11 s after the failure). The store holds what it
needs, with no schema change: the job's last restart (`Job.last_restart_reason`, its code FailedEarly or
FailedRestarting; `Job.last_restart_at`, when; `Job.last_restart_cluster`, the cluster whose member reported the
placement Failed). A job still Pending with such a last restart is noted as failed on that cluster at that time,
so the cool-down ends when it would have without the restart.

The cluster is a field of its own, never read back out of the reason's words: 0.19.0 parsed "failed on CLUSTER
after ..." with a pattern, bound to the wording of two format strings elsewhere (review of stop 60). The failed
placement itself is gone from the job by then (a re-queue supersedes it), so the restart keeps its cluster. A
restart stored by 0.19.0 has none: its job is not kept off that cluster (the cool-down is 30 s; an upgrade
within it costs one placement there at most). The member's words are not noted again: the job's pending reason
says them first, in its restart's words.

Only the last failure is known: a job that had failed on that cluster before is avoided for the first cool-down
(30 s), not the doubled one it had reached, and a cluster it failed on before its last restart is not avoided.
A refusal (a cluster that would not launch it) stays memory only, as server/refusals.py says: it costs one more
timeout at most.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from federator.model import JobPhase, ReasonCode
from federator.server.failure_restarts import FAILED
from federator.server.refusals import FAILED_EARLY

if TYPE_CHECKING:
    from federator.server.federator import Federator

_DID = {ReasonCode.FAILED_EARLY: FAILED_EARLY, ReasonCode.FAILED_RESTARTING: FAILED}


def restore_cooldowns(fed: Federator) -> int:
    """Note, for each Pending job whose last restart was a failure, that failure's cluster at its time (see the
    module); how many were still cooling down."""
    now = fed.clock()
    refusals = fed.refusals
    kept = 0
    for job in fed.jobs.values():
        last = job.last_restart_reason
        if job.phase is not JobPhase.PENDING or last is None or last.code not in _DID:
            continue
        at, cluster = job.last_restart_at, job.last_restart_cluster
        if not cluster or not at or now >= at + refusals.first:
            continue  # its cool-down over already (or its cluster not stored: a restart stored by 0.19.0)
        refusals.note(job.job_id, cluster, at, did=_DID[last.code])
        kept += 1
    return kept


__all__ = ["restore_cooldowns"]
