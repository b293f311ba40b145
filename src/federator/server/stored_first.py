"""A change decided on a copy of a job, stored, and only then applied to the live job and told to agents; its write
awaited off the event loop.

Why: the rebalancer's moves (start: the new parts; end: the surplus taken), a drain's surges (the replacements;
the drained part's end), a job failed past its run-time limit (server/run_limits.py) and one no member takes
(server/giving_up.py) each wrote the copy with `GroupCommit.write`, which holds the event loop for the fsync: every
agent stream, Watch and Submit waited behind each of them. They keep their promise (the store holds the
change before any agent hears of it; a full disk leaves the job as it was and tells no agent), and the loop goes on
while the disk writes. `StoredFirst.run` queues the copy and returns; once it is durable:

- the job is unchanged since the copy was made and no other write of it was queued behind the copy
  (`GroupCommit.commit_newest`): the change is applied (`apply`), and its orders sent;
- the job changed meanwhile (an agent's update, a Cancel, a re-queue), or was written again: the change is not
  applied (it was decided on a state that is gone) and the caller is told (`failed(None)`): each of these callers
  decides again at its next turn. Should the store hold the copy still (nothing wrote the job after it), the live
  job is written again (`write_or_owe`), so that a restart never finds parts no agent was told of;
- the store refused it (StoreUnavailable): the job is as it was, no agent is told, `failed(error)`.

While a job's change is on its way (`busy`), its callers leave it alone: a turn that comes first would decide on
the state the change is about to replace. With no event loop running (the simulator, a test of the Federator
alone, `schedule_once`) the copy is written on the caller's thread, and `apply` or `failed` runs before `run`
returns, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from federator.model import Job, JobId
from federator.store.errors import StoreUnavailable
from federator.store.group_commit import freeze

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")


class StoredFirst:
    """The jobs whose stored-first change is on its way to the disk (module docstring)."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        self._flight: dict[JobId, asyncio.Task[None]] = {}

    def busy(self, job_id: JobId) -> bool:
        """Whether a change of this job is on its way to the disk: its callers leave it alone until it lands."""
        return job_id in self._flight

    async def settled(self) -> None:
        """Until every change on its way has landed (applied, or not): a test's, a benchmark's end."""
        while self._flight:
            await asyncio.gather(*self._flight.values(), return_exceptions=True)

    def run(self, job: Job, stored: Job, *, apply: Callable[[], None],
            failed: Callable[[StoreUnavailable | None], None]) -> bool:
        """Store `stored` (a copy of `job` with the change), then `apply()` the change to `job`; or `failed(error)`:
        StoreUnavailable, or None when the job changed meanwhile and the change was not applied. False if nothing
        was done (a change of the job is on its way already), or, with no loop running, if the write failed."""
        if self.busy(job.job_id):
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                self.fed.journal.write([stored])
            except StoreUnavailable as exc:
                failed(exc)
                return False
            apply()
            return True
        task = loop.create_task(self._landed(job, freeze(job), stored, apply, failed))
        self._flight[job.job_id] = task
        task.add_done_callback(lambda _: self._flight.pop(job.job_id, None))
        return True

    async def _landed(self, job: Job, basis: Job, stored: Job, apply: Callable[[], None],
                      failed: Callable[[StoreUnavailable | None], None]) -> None:
        fed = self.fed
        try:
            newest = await fed.journal.commit_newest([stored])
        except StoreUnavailable as exc:
            failed(exc)
            return
        except Exception:  # a bug, or a store refusing the job itself (its object gone): not applied, said
            log.exception("job %s: a change not stored", job.job_id)
            failed(None)
            return
        if fed.jobs.get(job.job_id) is job and newest and freeze(job) == basis:
            try:
                apply()
            except Exception:  # a bug: said, and the loop goes on (a turn's exception was caught by the turn)
                log.exception("job %s: applying a stored change failed", job.job_id)
            return
        if newest and fed.jobs.get(job.job_id) is job:
            fed.journal.write_or_owe([job])  # the store holds the copy: it holds the live job again
        log.info("job %s changed while a change decided before was stored: not applied, decided again", job.job_id)
        failed(None)


__all__ = ["StoredFirst"]
