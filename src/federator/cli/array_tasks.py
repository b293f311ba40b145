"""`federator get jobs --array ARRAY_ID`: one array's tasks, and a line counting them by state.

Why: a sweep's owner asks "how far along is it?" (Slurm's `squeue -r -j 1234`, and the count by state `sacct` is
grepped for). `--name-prefix sweep-` also listed another array's tasks of the same name and any job named so; the
array's id names exactly its tasks. The federator filters (ListJobsFilter.array_id, since 0.16.0: the one array's
tasks in a page or two, not every job the caller may see); an older one's answer is filtered here (cli/job_list.py).

The counts follow what a task is waiting for, not only its phase: a Pending task past its array's throttle
(pending_reason ArrayThrottle) is `throttled`, a held one `held`; Placed and Running are `running` (both hold room on
a member). Every count is said, zeros too, in one order, so a script can read the line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from federator.model import Job, JobPhase, ReasonCode

STATES = ("pending", "throttled", "held", "running", "succeeded", "failed", "cancelled")
"""The states the line counts, in its order."""


def state_of(job: Job) -> str:
    """The state a task is counted under (one of STATES)."""
    if job.phase is JobPhase.PENDING:
        if job.hold is not None:
            return "held"
        reason = job.pending_reason
        return "throttled" if reason is not None and reason.code is ReasonCode.ARRAY_THROTTLE else "pending"
    if job.phase in (JobPhase.PLACED, JobPhase.RUNNING):
        return "running"
    return job.phase.value.lower()


def counts_line(array_id: str, tasks: Sequence[Job], *, filtered: bool) -> str:
    """`array sweep-3f9a1c: 100 tasks: 2 pending, 80 throttled, ...`; `filtered`: other flags narrowed the list,
    so the line counts the tasks listed ("tasks listed"), not the array."""
    counted = Counter(state_of(job) for job in tasks)
    what = "listed" if filtered else ""
    n = len(tasks)
    head = f"array {array_id}: {n} task{'s' if n != 1 else ''}{' ' + what if what else ''}"
    return f"{head}: " + ", ".join(f"{counted[state]} {state}" for state in STATES)


__all__ = ["STATES", "counts_line", "state_of"]
