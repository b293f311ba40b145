"""A user's Cancel, stored before anything else changes, and its write off the event loop.

Why stored first: the cancel path used to change the job in memory, tell the agents, and only then write. With
the disk full the write failed, yet `get` showed the job Cancelled and its clusters had stopped it;
after a restart the store's copy (still Running) ran it again. Now the cancelled state is built on a
copy, written, and only once it is durable does the live job change and do the agents hear of it.
A failed write (StoreUnavailable) leaves the job exactly as it was.

Why off the loop: that write was `GroupCommit.write`, which holds the event loop until the fsync is done, so every
agent stream, Watch and Submit waited behind each Cancel, and a CancelJobs of an organisation's thousands of jobs
was thousands of fsyncs in a row on the loop. The gRPC edge now awaits the write (`UserCancels.cancel`) and the
loop serves everyone else meanwhile. While it is awaited the job is untouched in memory, so other things may
happen to it; what each one does:

- it ends (its agent's update): the end is written after the cancel's copy, so it is what the store holds; the
  Cancel answers the job as it ended, as a Cancel of an ended job always has, and no agent is told anything.
- it is cancelled again (a second Cancel, a CancelJobs page): the second waits for the first and answers as it
  does (the job Cancelled, or the first's StoreUnavailable): one write, one CancelOrder per placement.
- it is placed, re-queued, moved, scaled, or merely written again (an owed write paid, a pending reason): that
  write holds the state it had before the cancel and lands after the copy (`GroupCommit.commit_newest` says so),
  so the cancel is built again from the job as it is now and written again; its CancelOrders name the placements
  it has then. After `ROUNDS` such rounds (a job its agents change faster than the disk writes) the last is
  written as before, holding the loop for one write, during which nothing else can change it.

The synchronous `cancel` stays for the callers with no loop to give back (the Kubernetes controller's deletion
handler, scripts, tests): it blocks until stored, as before.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from federator.model import Job, JobId, JobPhase
from federator.server.orders import CancelOrder
from federator.store.errors import StoreUnavailable
from federator.store.group_commit import freeze

if TYPE_CHECKING:
    from federator.server.federator import Federator

CANCELLED_BY_USER = "cancelled by user"
ROUNDS = 3  # async writes of one Cancel whose job others keep changing, before the last, which holds the loop


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


class UserCancels:
    """The Cancels of a federator: the synchronous one, and the awaited one with the Cancels in flight."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        self._flight: dict[JobId, asyncio.Task[Job]] = {}  # a job's Cancel whose write is awaited

    def cancel(self, key: str) -> Job:
        """Durable first, blocking until stored: StoreUnavailable leaves the job as it was and tells no agent."""
        job = self.fed.get(key)
        if job.phase.is_terminal:
            return job
        done = cancelled(job, self.fed.clock())
        self.fed.journal.write([done])
        return self._take(job, done)

    async def cancel_async(self, key: str) -> Job:
        """`cancel` with its write awaited, not held on the loop (module docstring: what may change meanwhile). The
        write and what follows it run in a task of their own: a caller that goes away (its RPC cancelled) leaves the
        cancel to finish, never a stored cancel that no agent hears of."""
        job = self.fed.get(key)
        if job.phase.is_terminal:
            return job
        flight = self._flight.get(job.job_id)
        if flight is None:  # else cancelled again while the first one's write is on its way: answered as it is
            flight = asyncio.get_running_loop().create_task(self._stored(job))
            self._flight[job.job_id] = flight
            flight.add_done_callback(lambda _: self._landed(job.job_id))
        return await asyncio.shield(flight)

    def _landed(self, job_id: JobId) -> None:
        flight = self._flight.pop(job_id)
        if not flight.cancelled():
            flight.exception()  # raised to every caller waiting; none may be left (the loop's warning otherwise)

    async def _stored(self, job: Job) -> Job:
        fed = self.fed
        wrote = False  # a cancelled copy is durable (then overtaken): a failure after it writes the live job again
        for _ in range(ROUNDS):
            basis = freeze(job)
            done = cancelled(job, fed.clock())
            try:
                newest = await fed.journal.commit_newest([done])
            except StoreUnavailable:
                if wrote:
                    fed.journal.write_or_owe([job])  # the store holds what memory does again (owed: once it can)
                raise
            wrote = True
            if job.phase.is_terminal or fed.jobs.get(job.job_id) is not job:
                return job  # it ended meanwhile, its end written after the copy: answered as it ended
            if newest and freeze(job) == basis:
                return self._take(job, done)
        # Others changed it in every round: written the old way, the loop held for one write (nothing changes it).
        done = cancelled(job, fed.clock())
        try:
            fed.journal.write([done])
        except StoreUnavailable:
            fed.journal.write_or_owe([job])
            raise
        return self._take(job, done)

    def _take(self, job: Job, done: Job) -> Job:
        """The stored cancel takes effect: the live job becomes `done`, and only now do the agents hear of it."""
        fed = self.fed
        fed.silent_cancels.cancelled(job, done.finished_at)  # on a silent member: billed to what it vouched for
        for p in job.placements:
            if not p.phase.is_terminal:
                fed.send(p.cluster, CancelOrder(p.placement_id, "job cancelled", job_ended=True))
                p.phase = JobPhase.CANCELLED
        fed._finish(job, JobPhase.CANCELLED, done.message, at=done.finished_at)
        fed.notify([job])
        fed.wake()
        return job


__all__ = ["CANCELLED_BY_USER", "ROUNDS", "UserCancels", "cancelled"]
