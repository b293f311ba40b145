"""The numbered history of job changes that every Watch reads: a revision per change, the last HISTORY_SIZE kept.

Why one shared history, not a queue per watcher: a client that lost its stream must be able to say "I have
everything up to revision R" and hear only what came after, removals included (outside QA, portal M2: every
reconnect re-sent ~2,500 jobs, and a job removed while the client was away was never said to be gone). That
needs changes numbered in one order and kept for a while; the same ring then serves live watchers, each a
cursor into it, so a watcher costs no memory of its own (a queue each held up to 10,000 ids per watcher). It
also knows each held job's newest change (`newest`), so a watcher skips a change a newer one will send with
the same state, without a copy of what it sent (server/watch_stream.py).

Bounded: HISTORY_SIZE changes, each a revision, a job id and, for a removal, who may see it (the job itself is
gone from memory). A cursor older than that has lost changes: a live watcher is told it fell behind, a resume
is told to list again.

Not stored: the store (SQLite, or the host cluster's FederatedJobs) keeps jobs, not their history, so a restart
begins a new history. Revisions start at the start time in microseconds and grow by one per change, so they
stay above the previous run's while the hosts' clocks roughly agree (a run would need a million changes a
second to catch up with the clock), and a revision from before the start reads as too old, never as a resume
point. Microseconds since 1970 stay below 2^53 until the year 2255: a JavaScript number holds one exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from federator.model import Job, JobId
from federator.security.authz import owner_of

HISTORY_SIZE = 50_000


@dataclass(frozen=True, slots=True)
class Removal:
    """What is left of a removed job for the watchers: its id, and its recorded owner and groups, by which
    the tenancy policy decides who may hear that it went (`Authorizer.sees_owner`)."""

    job_id: JobId
    owner: str
    groups: frozenset[str]


@dataclass(frozen=True, slots=True)
class Change:
    """One numbered change: a job's new state (read from the job table when sent) or its removal, or a change of
    the access policy (no job: `job_id` is empty)."""

    revision: int
    job_id: JobId
    removal: Removal | None = None
    policy: bool = False  # no job's change: the access policy changed here (`WatchHistory.policy_changed`)


class WatchHistory:
    """Revisions and the last `size` changes, and the waking of watchers waiting for the next one."""

    def __init__(self, *, start: int, size: int = HISTORY_SIZE) -> None:
        self.base = start  # the revision of the jobs as loaded: no change numbered yet
        self.revision = start
        self.size = size
        self.ended = False
        self.policy_at = start  # the revision of the last change of the access policy (start: none since)
        self._ring: list[Change] = []
        self._latest: dict[JobId, int] = {}  # job -> the revision of its newest change still in the ring
        self._woken: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    def record(self, jobs: Iterable[Job], table: Mapping[JobId, Job]) -> None:
        """Number a change of each job; one no longer in `table` was removed (retention, a deleted FederatedJob)."""
        for job in jobs:
            self.revision += 1
            removal = None if job.job_id in table else Removal(job.job_id, *owner_of(job.spec))
            self._keep(Change(self.revision, job.job_id, removal))
        self._wake()

    def policy_changed(self) -> None:
        """The access policy changed (a policy file reload, a Queue object): who may see which job changed at
        once, for every job, and no job's change says so. A removal is sent only to those who may see the job,
        so a job leaving a caller's view is never sent as one; instead the change is a revision of its own, and a
        numbered Watch open across it, or resumed from before it, is told to list again (`policy_gone`)."""
        self.revision += 1
        self.policy_at = self.revision
        self._keep(Change(self.revision, JobId(""), policy=True))
        self._wake()

    def policy_gone(self, at: int) -> str:
        """Why a numbered Watch that was open across, or resumes from before, the last policy change must list
        again (OUT_OF_RANGE, as a cursor too old: the client's copy may hold jobs it may no longer see)."""
        return (f"watch: the access policy changed at revision {at}: which jobs this caller may see "
                "changed, and jobs that left its view are not sent as removals; list again: watch without "
                "since_revision")

    def _keep(self, change: Change) -> None:
        if len(self._ring) < self.size:
            self._ring.append(change)
        else:
            slot = (change.revision - self.base - 1) % self.size
            gone = self._ring[slot]
            if self._latest.get(gone.job_id) == gone.revision:
                del self._latest[gone.job_id]
            self._ring[slot] = change
        if change.job_id:
            self._latest[change.job_id] = change.revision

    def newest(self, job_id: JobId) -> int:
        """The revision of `job_id`'s newest change still held (0: none). A job's state is read when its change
        is sent, so a watcher that reads an older change of a job whose newer one is recorded skips it: the
        newer one sends the same state (at most once per job per batch of changes, with no copy per watcher)."""
        return self._latest.get(job_id, 0)

    def held(self, cursor: int) -> bool:
        """Whether every change after `cursor` is still here: it is one of this history's revisions, no older
        than its last `size` changes."""
        return max(self.base, self.revision - self.size) <= cursor <= self.revision

    def after(self, cursor: int, limit: int = 1_000) -> list[Change]:
        """Up to `limit` changes after `cursor`, oldest first (a copy: the ring moves on while they are sent).
        The caller checks `held(cursor)` first."""
        last = min(self.revision, cursor + limit)
        return [self._ring[(rev - self.base - 1) % self.size] for rev in range(cursor + 1, last + 1)]

    def too_old(self, cursor: int) -> str:
        """Why `cursor` is no resume point (OUT_OF_RANGE), in the words a client acts on."""
        if cursor > self.revision:
            return (f"watch: since_revision {cursor} is not a revision this federator issued (its newest is "
                    f"{self.revision}; a restart begins a new history); list again: watch without since_revision")
        if cursor < self.base:
            return (f"watch: since_revision {cursor} is from before this federator started (its history begins at "
                    f"{self.base}: a restart begins a new history); list again: watch without since_revision")
        return (f"watch: since_revision {cursor} is too old: this federator holds only its last {self.size} "
                f"changes, after revision {self.revision - self.size}; list again: watch without since_revision")

    async def wait(self, cursor: int, timeout: float) -> None:
        """Until a change after `cursor` is recorded, the history ends, or `timeout` seconds pass."""
        if self.revision > cursor or self.ended:
            return
        loop = asyncio.get_running_loop()
        if self._woken is None or self._woken[0] is not loop:
            self._woken = (loop, asyncio.Event())
        try:
            await asyncio.wait_for(self._woken[1].wait(), timeout=timeout)
        except TimeoutError:
            pass

    def end(self) -> None:
        """The federator is stopping: every watcher wakes and ends its stream saying so."""
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        if self._woken is not None:
            self._woken[1].set()
            self._woken = None


__all__ = ["HISTORY_SIZE", "Change", "Removal", "WatchHistory"]
