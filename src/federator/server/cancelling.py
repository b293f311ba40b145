"""A user's Cancel, stored before anything else changes.

Why: the cancel path used to change the job in memory, tell the agents, and only then write. With
the disk full the write failed, yet `get` showed the job Cancelled and its clusters had stopped it;
after a restart the store's copy (still Running) ran it again. Now the cancelled state is built on a
copy, written, and only once it is durable does the live job change and do the agents hear of it.
A failed write (StoreUnavailable) leaves the job exactly as it was.
"""

from __future__ import annotations

from federator.model import Job, JobPhase
from federator.store.group_commit import freeze

CANCELLED_BY_USER = "cancelled by user"


def cancelled(job: Job, now: float) -> Job:
    """What `job` becomes when a user cancels it at `now`: a copy, for the store; `job` is untouched."""
    out = freeze(job)
    for p in out.placements:
        if not p.phase.is_terminal:
            p.phase = JobPhase.CANCELLED
    out.phase = JobPhase.CANCELLED
    out.message = CANCELLED_BY_USER
    out.finished_at = now
    out.pending_reason = None
    return out


__all__ = ["CANCELLED_BY_USER", "cancelled"]
