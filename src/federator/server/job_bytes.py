"""Bytes of unfinished jobs' specs, per owner and in all: what Submit's byte budgets read.

Why: every bound on waiting work counted jobs, none counted bytes. A job may carry up to 512 KiB of templates and
256 KiB of annotations, so 300 near-limit pending jobs of one user grew the federator by 195 MB of RAM and 221 MB
of SQLite (red team F01); at the default per-user cap of 125,000 pending jobs that is ~80 GB. Submit now also
checks the size of the new job's spec, as the store writes it (`store.codec.spec_bytes`), against
`--max-unfinished-bytes-per-user` and `--max-unfinished-bytes` (server/intake.py).

Unfinished, not only pending: a placed or running job's spec is held in memory and on disk just the same, and a
tenant whose jobs fit some member's room (a thousand tiny CPU jobs) would otherwise turn the budget over as fast
as they are placed. Finished jobs are bounded apart, by count and age (server/retention.py).

A job counts from the moment intake reserves it (its write may still be on its way to disk) until it finishes
(`Federator._finish`: succeeded, failed, cancelled, before or after its write) or its write fails. Its size and
owner are read once, when it enters: a spec never changes. Entering twice or leaving twice changes nothing.
Submit reads two sums; nothing here scans the jobs but the start, which counts the unfinished jobs it loads.
"""

from __future__ import annotations

from collections.abc import Iterable

from federator.model import Job, JobId
from federator.security.authz import DELEGATE_ANNOTATION, Submitter, submitter_of
from federator.store.codec import spec_bytes


class UnfinishedBytes:
    """Spec bytes of unfinished jobs, per owner and in all; each counted job's owner and size."""

    def __init__(self) -> None:
        self._held: dict[JobId, tuple[Submitter, int]] = {}
        self._by_owner: dict[Submitter, int] = {}
        self._delegate_of: dict[JobId, str] = {}  # the jobs a delegate submitted (security/delegates.py budget)
        self._by_delegate: dict[str, int] = {}
        self.total = 0

    @classmethod
    def of(cls, jobs: Iterable[Job]) -> UnfinishedBytes:
        """The counts of a start: every job loaded that has not finished."""
        out = cls()
        for job in jobs:
            if not job.phase.is_terminal:
                out.enter(job.job_id, submitter_of(job.spec), spec_bytes(job.spec),
                          delegate=job.spec.annotation(DELEGATE_ANNOTATION))
        return out

    def enter(self, job_id: JobId, owner: Submitter, size: int, *, delegate: str = "") -> None:
        """The job is accepted (or reserved by intake) and not finished; `delegate`: who submitted it for its
        owner ("" for none)."""
        if job_id in self._held:
            return
        self._held[job_id] = (owner, size)
        self._by_owner[owner] = self._by_owner.get(owner, 0) + size
        if delegate:
            self._delegate_of[job_id] = delegate
            self._by_delegate[delegate] = self._by_delegate.get(delegate, 0) + size
        self.total += size

    def leave(self, job_id: JobId) -> None:
        """The job finished, or its write failed."""
        held = self._held.pop(job_id, None)
        if held is None:
            return
        owner, size = held
        left = self._by_owner[owner] - size
        if left:
            self._by_owner[owner] = left
        else:
            del self._by_owner[owner]  # owners whose work is done keep no entries (a spec is never 0 bytes)
        delegate = self._delegate_of.pop(job_id, "")
        if delegate:
            rest = self._by_delegate[delegate] - size
            if rest:
                self._by_delegate[delegate] = rest
            else:
                del self._by_delegate[delegate]
        self.total -= size

    def owner(self, owner: Submitter) -> int:
        """The owner's unfinished jobs' spec bytes now."""
        return self._by_owner.get(owner, 0)

    def delegate(self, name: str) -> int:
        """The unfinished jobs' spec bytes delegate `name` submitted for anyone, now."""
        return self._by_delegate.get(name, 0)

    def __len__(self) -> int:
        return len(self._held)


__all__ = ["UnfinishedBytes"]
