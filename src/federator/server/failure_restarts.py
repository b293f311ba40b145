"""A job its member reports Failed is placed again while its spec.failurePolicy.maxRestarts allows.

Why: a failure was final, whenever it came: a job that failed at hour 30 (an NCCL timeout, a flaky node's ECC
error, a loss spike that crashed it) was Failed for good and its user resubmitted by hand (outside migration QA,
M12: SkyPilot's `max_restarts_on_errors`, JobSet's `failurePolicy.maxRestarts`, Slurm's `--requeue`). Such a job
now asks for a budget (model/failure_policy.py) and this module spends it.

What counts (types.proto FailurePolicy says it to clients): a Failed report that would end the job, as
server/early_failures.py leaves it: a late failure, or an early one once the early rule's own once-more
placement is spent (that one is the federator's guard against a cluster failing work, not the user's budget).
Never: a placement its agent lost (it may still run: a second run beside it), an early failure of a job
annotated `federator.io/early-failure: fail` (its user said a crash at start is the job's own), a part of a
spread job placed again alone (the job did not fail), and no end the federator makes itself (a cancel,
DeadlineExceeded, a dependency, an invalid spec): those never reach here.

A restart is a re-queue as any other (server/requeue.py): the whole job, a gang as one (its other placements
cancelled), an array's task alone (each task is a job); Job.restarts counts it (server/restarts.py) and
Job.failure_restarts too, stored by the re-queue's write before any agent hears of it, so a federator restart
never grants a restart twice. The cluster it failed on is avoided a while (server/refusals.py: 30 s at first,
doubling): elsewhere first, as after an early failure, then anywhere (a node's fault is often gone from the same
cluster by then, and a job pinned there must still run). It waits with pending reason FailedRestarting, kept until
placed (server/job_message.py), each run billed as it ran, its run-time clock summed over its runs, a job that waits on
it (afterok) waiting on: it has not ended. Cancelled while it waits, it ends Cancelled.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from federator.model import Job, Placement, Reason, ReasonCode
from federator.server.clusters import ClusterRecord
from federator.server.refusals import brief
from federator.timestamps import duration

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")

FIELD = "spec.failurePolicy.maxRestarts"
FAILED = "saw this job fail"
"""How a cluster the job failed on reads among those it avoids (server/refusals.py's `did`)."""


def restart_on_failure(fed: Federator, rec: ClusterRecord, job: Job, placement: Placement, message: str, *,
                       took: float, ends: str | None = None) -> str | None:
    """`placement` of `job` on `rec` was reported Failed with `message`, `took` seconds after its start: None when
    the job was queued again (the budget had a restart left), else the words the job ends with: `ends` (`message`
    if None: the early rule's names both clusters), and for a job that had a budget, that it is spent. The
    restart's reason says `message` once: passed the early rule's words, it nested them inside its own ("failed
    on east-1 after 0s: ... (failed on east-1 after 0s: ...)", outside QA, new59 N4)."""
    final = message if ends is None else ends
    budget = job.spec.failure_policy.max_restarts
    if not budget:
        return final
    used = job.failure_restarts
    if used >= budget:
        log.info("job %s failed on %s; its %d restart(s) on failure are spent", job.job_id, rec.name, budget)
        return f"{final} (not placed again: restarted {used} of {budget} times on failure, {FIELD})"
    now = fed.clock()
    job.failure_restarts = used + 1  # stored by the re-queue's write below, with Job.restarts
    why = (f"failed on {rec.name} after {duration(took)}: {brief(message) if message else 'no message'}; placing "
           f"it again, elsewhere first (restart {used + 1} of {budget} on failure, {FIELD})")
    log.warning("job %s %s", job.job_id, why)
    fed.refusals.note(job.job_id, rec.name, now, message, did=FAILED)  # avoided a while, not refused: not counted
    # The whole job, its other parts cancelled (a spread job's part failing while others serve never reaches here,
    # but one annotated failover: keep does: `ended` superseded that part alone, the others kept, and the restart
    # placed nothing new, new59 N4). The failed placement was reported Failed by its agent: no Cancel for it.
    fed.requeue(job, Reason(ReasonCode.FAILED_RESTARTING, why), stopped={placement.placement_id})
    return None


__all__ = ["FAILED", "FIELD", "restart_on_failure"]
