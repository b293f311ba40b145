"""A pending job no member will take fails, instead of being placed and refused with no end.

Why: outside QA (an ML user, F2) submitted jobs whose workload no member could run (a container without an image,
a nodeSelector no node has, a volume claim missing in the member): each was placed, refused (at once, or after the
gang timeout, holding its accelerators meanwhile), placed again elsewhere or after a back-off, and refused again,
for ever, the job Pending and its owner never told it would not run. RecentRefusals (server/refusals.py) counts a
job's refusals in a row, reset when a placement of it runs; at `--max-refusals` the next scheduling turn fails it
here, with the last refusal's words, as a Job whose pods keep failing ends at its backoffLimit. A job whose spec
members' APIs found invalid (server/invalid_specs.py) fails here too, at the turn after the verdict, and keeps
its reason (code InvalidSpec) as the one code that says why it never ran.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from federator.model import Job, JobPhase
from federator.store import StoreUnavailable
from federator.store.group_commit import freeze

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")


def give_up(fed: Federator, job: Job, why: str) -> bool:
    """Fail `job` (Pending, no live placement) with `why`, stored first, the write awaited off the event loop
    (server/stored_first.py); whether it was decided (it leaves the cycle's candidates). Not stored (a full disk), or
    changed meanwhile: the job stays Pending, a candidate again, and the next turn decides again."""
    if fed.stored_first.busy(job.job_id):
        return True  # its failure is on its way to the disk: left out of this cycle
    now = fed.clock()
    reason = fed.refusals.condemned(job.job_id)  # InvalidSpec, or None: a Failed job has no reason code otherwise
    done = freeze(job)
    done.phase, done.message, done.finished_at, done.pending_reason = JobPhase.FAILED, why, now, reason

    def apply() -> None:
        log.warning("job %s failed: %s", job.job_id, why)
        fed._finish(job, JobPhase.FAILED, why, at=now)
        job.pending_reason = reason
        fed.notify([job])

    def failed(error: StoreUnavailable | None) -> None:
        if error is not None:
            log.warning("job %s: not failed yet (%s); it stays Pending", job.job_id, error)
        if job.phase is JobPhase.PENDING and fed.jobs.get(job.job_id) is job:
            fed.cycles.pending(job)  # a candidate again: the next turn gives it up, or places it

    return fed.stored_first.run(job, done, apply=apply, failed=failed)


__all__ = ["give_up"]
