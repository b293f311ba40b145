"""Pending jobs counted by a key (their queue, their owner), as jobs enter and leave Pending: what Submit's caps read.

Why: the only bound on waiting work was the federator's (`--max-pending-jobs`), so one tenant could fill it and
every other organisation's Submit was refused. Submit now also checks the job's queue, then its owner, against
caps of their own (server/intake.py), and is on the hot path: it reads a count kept here, never a scan of the
jobs. One class serves both, keyed by a function of the job (`PendingCounts(key=...)`), so the two counts
cannot drift apart in how they follow a job. A count is exact, not an upper bound: a job is counted from the
moment intake reserves it (its write may still be on its way to disk) until it is placed, ends, or its write
fails; it is counted again when it is re-queued. Entering twice or leaving twice changes nothing, so a caller
need not know whether the job was counted already. A job's key is read once, when it enters: its spec never
changes while it is counted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from federator.model import Job, JobId
from federator.security.authz import DELEGATE_ANNOTATION, Submitter, submitter_of

K = TypeVar("K", bound=Hashable)


class PendingCounts(Generic[K]):
    """Pending jobs per key, by count; each counted job's key, so that leaving needs only the id."""

    def __init__(self, key: Callable[[Job], K], *, uncounted: K | None = None) -> None:
        self._key = key
        self._uncounted = uncounted  # a key not counted at all (no delegate): its jobs cost no entry here
        self._key_of: dict[JobId, K] = {}
        self._counts: dict[K, int] = {}

    def enter(self, job: Job) -> None:
        """The job is Pending (reserved by intake, re-queued, or found Pending at a start)."""
        if job.job_id in self._key_of:
            return
        key = self._key(job)
        if key == self._uncounted:
            return
        self._key_of[job.job_id] = key
        self._counts[key] = self._counts.get(key, 0) + 1

    def leave(self, job_id: JobId) -> None:
        """The job is no longer Pending (placed, ended, or its write failed)."""
        if job_id not in self._key_of:
            return
        key = self._key_of.pop(job_id)
        left = self._counts[key] - 1
        if left:
            self._counts[key] = left
        else:
            del self._counts[key]  # a thousand queues (or users) that drained keep no entries

    def count(self, key: K) -> int:
        """The key's pending jobs now."""
        return self._counts.get(key, 0)

    def __len__(self) -> int:
        return len(self._key_of)


def queue_of(job: Job) -> str:
    """A job's queue: the key of the per-queue count."""
    return job.spec.queue


def submitter(job: Job) -> Submitter:
    """A job's owner (its recorded user, else its namespace): the key of the per-owner count."""
    return submitter_of(job.spec)


def delegate_of(job: Job) -> str:
    """The delegate that submitted a job on its owner's behalf ("" for none): the key of the per-delegate count."""
    return job.spec.annotation(DELEGATE_ANNOTATION)


__all__ = ["PendingCounts", "delegate_of", "queue_of", "submitter"]
