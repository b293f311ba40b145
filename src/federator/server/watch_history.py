"""The numbered history of job changes that every Watch reads: a revision per change; each job's newest is kept.

Why one shared history, not a queue per watcher: a client that lost its stream must be able to say "I have
everything up to revision R" and hear only what came after, removals included (outside QA, portal M2: every
reconnect re-sent ~2,500 jobs, and a job removed while the client was away was never said to be gone). That
needs changes numbered in one order and kept for a while; the same ring then serves live watchers, each a
cursor into it, so a watcher costs no memory of its own (a queue each held up to 10,000 ids per watcher). It
also knows each held job's newest change (`newest`), so a watcher skips a change a newer one will send with
the same state, without a copy of what it sent (server/watch_stream.py).

Bounded by jobs, not by changes: the newest change of at most HISTORY_SIZE jobs (and removals, and policy
changes), each a revision, a job id and, for a removal, who may see it (the job itself is gone from memory). A
change of a job whose newer change is held says nothing a watcher needs (it reads the job's state when it sends
it), so it is dropped when the history is compacted; only the oldest *newest* change leaves when more than
HISTORY_SIZE jobs changed, and a cursor older than that one has lost changes: a live watcher is told it fell
behind, a resume is told to list again. Why by jobs: a parked backlog's pending reasons are told again as the
fleet changes (server/reason_refresh.py, up to 2,000 a second), so a ring of the last 50,000 changes held 25 to 35
seconds with 3,000 or 30,000 jobs waiting: a snapshot of 30,000 jobs outlasted it and its Watch could never
resume, nor a client cut for half a minute (outside QA, soak S1). Compaction keeps at most about twice the live
changes, each dropped once: the cost of a change stays a constant.

Not stored: the store (SQLite, or the host cluster's FederatedJobs) keeps jobs, not their history, so a restart
begins a new history. Revisions start at the start time in microseconds and grow by one per change, so they
stay above the previous run's while the hosts' clocks roughly agree (a run would need a million changes a
second to catch up with the clock), and a revision from before the start reads as too old, never as a resume
point. Microseconds since 1970 stay below 2^53 until the year 2255: a JavaScript number holds one exactly.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from federator.model import Job, JobId
from federator.security.authz import owner_of
from federator.woken import woken

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
    """Revisions, the newest change of the last `size` jobs to change, and the waking of watchers waiting for the
    next one."""

    def __init__(self, *, start: int, size: int = HISTORY_SIZE) -> None:
        self.base = start  # the revision of the jobs as loaded: no change numbered yet
        self.revision = start
        self.size = size
        self.ended = False
        self.policy_at = start  # the revision of the last change of the access policy (start: none since)
        self.floor = start  # the newest revision given up (`held`): every change after it is answered for
        self._log: list[Change] = []  # in revision order; from `_head` on, with the changes a newer one superseded
        self._head = 0  # the changes before it have left
        self._live = 0  # changes from `_head` on that no newer one superseded: at most `size`
        self._latest: dict[JobId, int] = {}  # job -> the revision of its newest change held
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
        self._log.append(change)
        if change.job_id:
            if change.job_id not in self._latest:
                self._live += 1  # else its older change is superseded: one live change a job
            self._latest[change.job_id] = change.revision
        else:
            self._live += 1
        while self._live > self.size:  # the oldest newest change leaves; a cursor before it has lost changes
            gone = self._log[self._head]
            self._head += 1
            if self._superseded(gone):
                continue
            self._live -= 1
            self.floor = gone.revision
            if gone.job_id:
                del self._latest[gone.job_id]
        if self._head > self.size or self.kept > 2 * self._live + min(self.size, 1_024):
            self._log = [c for c in self._log[self._head:] if not self._superseded(c)]
            self._head = 0

    def _superseded(self, change: Change) -> bool:
        return bool(change.job_id) and self._latest.get(change.job_id) != change.revision

    @property
    def kept(self) -> int:
        """Changes held, superseded ones not yet compacted away included: at most twice the live ones (one per
        job changed, at most `size`) and a little: a drained backlog's history shrinks with it."""
        return len(self._log) - self._head

    def newest(self, job_id: JobId) -> int:
        """The revision of `job_id`'s newest change held (0: none). A job's state is read when its change
        is sent, so a watcher that reads an older change of a job whose newer one is recorded skips it: the
        newer one sends the same state (at most once per job per batch of changes, with no copy per watcher)."""
        return self._latest.get(job_id, 0)

    def held(self, cursor: int) -> bool:
        """Whether every job changed after `cursor` is still answered for: it is one of this history's revisions,
        no older than the newest change given up (`floor`)."""
        return self.floor <= cursor <= self.revision

    def after(self, cursor: int, limit: int = 1_000) -> list[Change]:
        """Up to `limit` changes after `cursor`, oldest first (a copy: the history moves on while they are sent);
        a change a newer one superseded may be among them (the newer one's job state is the one to send:
        `newest`). The caller checks `held(cursor)` first."""
        start = bisect_right(self._log, cursor, lo=self._head, key=lambda c: c.revision)
        return self._log[start:start + limit]

    def too_old(self, cursor: int) -> str:
        """Why `cursor` is no resume point (OUT_OF_RANGE), in the words a client acts on."""
        if cursor > self.revision:
            return (f"watch: since_revision {cursor} is not a revision this federator issued (its newest is "
                    f"{self.revision}; a restart begins a new history); list again: watch without since_revision")
        if cursor < self.base:
            return (f"watch: since_revision {cursor} is from before this federator started (its history begins at "
                    f"{self.base}: a restart begins a new history); list again: watch without since_revision")
        return (f"watch: since_revision {cursor} is too old: this federator holds the newest change of only its "
                f"last {self.size} jobs to change, after revision {self.floor}; list again: watch without "
                "since_revision")

    async def wait(self, cursor: int, timeout: float) -> None:
        """Until a change after `cursor` is recorded, the history ends, or `timeout` seconds pass."""
        if self.revision > cursor or self.ended:
            return
        loop = asyncio.get_running_loop()
        if self._woken is None or self._woken[0] is not loop:
            self._woken = (loop, asyncio.Event())
        await woken(self._woken[1], timeout)  # not wait_for: on 3.11 it can drop a cancel (woken.py)

    def end(self) -> None:
        """The federator is stopping: every watcher wakes and ends its stream saying so."""
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        if self._woken is not None:
            self._woken[1].set()
            self._woken = None


__all__ = ["HISTORY_SIZE", "Change", "Removal", "WatchHistory"]
