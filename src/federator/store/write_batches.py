"""The group commit's queued writes, and the rules by which its writer thread makes them into batches.

Why a module of its own: which queued writes share one transaction (one fsync in SQLite, one round of status
writes in Kubernetes mode) is the rule of the group commit (store/group_commit.py) that decides what the store
holds; apart from the thread and the lock around it, it reads as the rules it is:

- a batch takes the queued writes in their order, at least one, and up to `max_batch` jobs (one transaction's
  size: it bounds the time one batch holds the writer);
- a `write_beside` (a transaction of another table of the same file) is a batch of its own, so the queue's order
  holds across tables;
- a write that moves a job of the batch to another phase waits for the next batch (`turns`): the store then holds
  each phase a job passes through (a re-queue's Pending between two placements, which the Kubernetes store says
  as a Requeued Event and Watch as the job's reason), never only the newest; two states of one phase coalesce;
- within a batch only the newest state of each job is written (`newest`: coalesced per object), in the order of
  each one's newest change.

How each writer hears of its write (`QueuedWrite.settle`, `finish`) is here too: it is what a batch's end does.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from federator.model import Job, JobId, JobPhase
from federator.store.errors import StoreRefused


@dataclass(slots=True)
class QueuedWrite:
    """One write queued to the group commit, and how its writer hears how it went."""

    jobs: list[Job]
    done: threading.Event | None = None  # a synchronous writer waits on this
    future: asyncio.Future[None] | None = None  # an asyncio writer awaits this
    loop: asyncio.AbstractEventLoop | None = None
    error: BaseException | None = field(default=None)
    owed: list[Job] = field(default_factory=list)  # the live jobs a `pay` write stands for: owed again if it fails
    live: list[Job] = field(default_factory=list)  # the live jobs a `write_or_owe` stands for: owed if it fails
    then: Callable[[list[Job]], None] | None = None  # write_or_owe's announcement, run on `loop` when settled
    beside: Callable[[], None] | None = None  # write_beside's write, alone in its batch
    settled: Callable[[BaseException | None], None] | None = None  # write_beside's outcome, on the writing thread
    number: int = 0  # the how-manyth write queued (GroupCommit.commit_newest)
    finished: bool = False  # its writer was told (a writer thread taking over a dead one's batch tells no one twice)

    def settle(self, error: BaseException | None) -> None:
        """This write's own outcome in a batch that ended with `error`."""
        if isinstance(error, StoreRefused):  # only the refused jobs' writers fail, each told of its own job
            error = error.about(j.job_id for j in self.jobs)
        self.error = error

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self.settled is not None:
            self.settled(self.error)
        if self.done is not None:
            self.done.set()
        if self.loop is None:
            return
        try:
            if self.future is not None:
                self.loop.call_soon_threadsafe(_resolve, self.future, self.error)
            if self.then is not None:
                self.loop.call_soon_threadsafe(self.then, self.live)
        except RuntimeError:  # the loop is closed (shutdown): nobody awaits this write any more
            pass


def take_batch(batch: list[QueuedWrite], queue: deque[QueuedWrite], max_batch: int) -> list[QueuedWrite]:
    """`batch` (a dead writer's, written again first: else empty) with the queued writes that join it, taken from
    the queue's front by the rules of the module docstring. Under the group commit's lock."""
    size = sum(len(w.jobs) for w in batch)
    phases = {j.job_id: j.phase for w in batch for j in w.jobs}
    while queue and (not batch or (size + len(queue[0].jobs) <= max_batch and batch[0].beside is None and
                                   queue[0].beside is None and not turns(phases, queue[0].jobs))):
        w = queue.popleft()  # a write_beside is a batch of its own: the queue's order holds
        batch.append(w)
        size += len(w.jobs)
        phases.update((j.job_id, j.phase) for j in w.jobs)
    return batch


def turns(phases: dict[JobId, JobPhase], jobs: list[Job]) -> bool:
    """Whether a queued write moves a job of the batch (`phases`: each one's phase in it) to another phase: it then
    waits for the next batch (module docstring)."""
    return any(phases.get(j.job_id, j.phase) is not j.phase for j in jobs)


def newest(batch: list[QueuedWrite]) -> list[Job]:
    """The jobs a batch writes: the newest state of each, in the order of each one's newest change."""
    latest: dict[JobId, Job] = {}
    for w in batch:
        for job in w.jobs:
            latest.pop(job.job_id, None)  # re-insert: written in the order of its newest change
            latest[job.job_id] = job
    return list(latest.values())


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # the awaiting coroutine was cancelled: the write happened all the same
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


__all__ = ["QueuedWrite", "newest", "take_batch", "turns"]
