"""Pending jobs per queue, counted as jobs enter and leave Pending: what Submit reads for a queue's cap.

Why: the only bound on waiting work was the federator's (`--max-pending-jobs`), so one tenant's queue could
fill it and every other organisation's Submit was refused. Submit now also checks the job's queue against
its own cap (server/intake.py), and is on the hot path: it reads a count kept here, never a scan of the
jobs. The count is exact, not an upper bound: a job is counted from the moment intake reserves it (its
write may still be on its way to disk) until it is placed, ends, or its write fails; it is counted again
when it is re-queued. Entering twice or leaving twice changes nothing, so a caller need not know whether
the job was counted already.
"""

from __future__ import annotations

from federator.model import Job, JobId


class PendingByQueue:
    """Each queue's pending jobs, by count; each counted job's queue, so that leaving needs only the id."""

    def __init__(self) -> None:
        self._queue_of: dict[JobId, str] = {}
        self._counts: dict[str, int] = {}

    def enter(self, job: Job) -> None:
        """The job is Pending (reserved by intake, re-queued, or found Pending at a start)."""
        if job.job_id in self._queue_of:
            return
        queue = job.spec.queue
        self._queue_of[job.job_id] = queue
        self._counts[queue] = self._counts.get(queue, 0) + 1

    def leave(self, job_id: JobId) -> None:
        """The job is no longer Pending (placed, ended, or its write failed)."""
        queue = self._queue_of.pop(job_id, None)
        if queue is None:
            return
        left = self._counts[queue] - 1
        if left:
            self._counts[queue] = left
        else:
            del self._counts[queue]  # a thousand queues that drained keep no entries

    def count(self, queue: str) -> int:
        """The queue's pending jobs now."""
        return self._counts.get(queue, 0)

    def __len__(self) -> int:
        return len(self._queue_of)


__all__ = ["PendingByQueue"]
