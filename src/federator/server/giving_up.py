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
    """Fail `job` (Pending, no live placement) with `why`, stored first; False if the store could not take it (the
    job stays Pending, and the next turn tries again)."""
    now = fed.clock()
    reason = fed.refusals.condemned(job.job_id)  # InvalidSpec, or None: a Failed job has no reason code otherwise
    done = freeze(job)
    done.phase, done.message, done.finished_at, done.pending_reason = JobPhase.FAILED, why, now, reason
    try:
        fed.journal.write([done])
    except StoreUnavailable as exc:
        log.warning("job %s: not failed yet (%s); it stays Pending", job.job_id, exc)
        return False
    log.warning("job %s failed: %s", job.job_id, why)
    fed._finish(job, JobPhase.FAILED, why, at=now)
    job.pending_reason = reason
    fed.notify([job])
    return True


__all__ = ["give_up"]
