"""A job that runs past its spec.maxRunSeconds is stopped by the federator and fails, reason DeadlineExceeded.

Why: users of a network that bills accelerator hours expect what Slurm's `--time` and a Job's
`activeDeadlineSeconds` give, a bound on how long a job holds accelerators; and operators had nothing to catch a
member (or a third-party agent) that reports a placement Running for ever, a hung job, a stuck controller or a
lying member, whose accelerators stayed the job's in the federator's books for ever. The federator enforces the
limit from its own clock, so no agent has to be trusted with it (types.proto, JobSpec.max_run_seconds).

The clock (Job.started_at, Job.ran_seconds; both stored, so a federator restart keeps it): it starts at the first
Running report of an attempt (`started`), not at the placement (that is the start deadline's clock, and a job
waiting in a member's queue holds no accelerators yet); it stops when the attempt ends and the job is queued
again (`paused`: a member lost, a preemption, an early failure), and the seconds that attempt ran are kept: the
limit counts all the time the job held accelerators, as a bill does, so a job that keeps losing its cluster
cannot run for ever in slices. A federator that was down counts the time it was down (the member ran the job).

The check runs off the scheduling cycle: a heap of the instants jobs reach their limits, looked at every
CHECK_SECONDS from the loop's turn, at most MAX_PER_TURN entries a turn (the rest at the next), so a burst of
jobs reaching their limits together cannot stall the loop. An entry is only a hint: the job's clock is read again
when it pops, and an attempt that ended early, or was queued again and started later, is pushed again by its
own `started`.

The limit is the job's own spec.maxRunSeconds or its queue's maxRunSeconds (policy file, Queue object), the
shorter: a queue's bound is the limit of its jobs that give none, and Submit refuses a longer one
(`SchedulerConfig.run_limit`). Read when a job starts and again when its entry pops; when the scheduler's config
changes (a policy reload, a Queue object) every running job's due time is pushed again, so a bound that shrank
applies to the jobs running under it at once.

Past the limit: the failed job is stored first (as a user's cancel, server/cancelling.py), then every live
placement is sent a Cancel, so the members delete the workloads, and the job ends Failed with its reason code
kept (as InvalidSpec's, server/giving_up.py) and counted in `federator_jobs_run_limit_exceeded_total{queue}`.
A store that cannot take the write leaves the job running; it is tried again next check.
"""

from __future__ import annotations

import heapq
import logging
from typing import TYPE_CHECKING

from federator.model import Job, JobId, JobPhase, Reason, ReasonCode, run_seconds
from federator.server.orders import CancelOrder
from federator.store import StoreUnavailable
from federator.store.group_commit import freeze
from federator.timestamps import duration, utc_seconds

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")

CHECK_SECONDS = 1.0
MAX_PER_TURN = 200


def paused(job: Job, now: float) -> None:
    """The job's attempt ended and it is queued again: the seconds it ran are kept, its clock stops."""
    if job.started_at:
        job.ran_seconds += max(0.0, now - job.started_at)
        job.started_at = 0.0


def limit_message(job: Job, ran: float, limit: int, source: str) -> str:
    """Why the job failed: its limit and where it comes from, how long it ran, and what the federator did."""
    attempts = f" (of which {duration(job.ran_seconds)} in earlier attempts)" if job.ran_seconds >= 1 else ""
    whose = f"its spec.maxRunSeconds of {limit}s ({duration(limit)})" if source == "spec.maxRunSeconds" else \
        f"the limit of {limit}s ({duration(limit)}, {source}; the job gave none shorter)"
    return f"ran {duration(ran)}{attempts}, past {whose}; the federator cancelled every placement"


class RunLimits:
    """Stops the jobs that run past spec.maxRunSeconds; see the module docstring."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        self._checked_at = 0.0
        self._due: list[tuple[float, JobId]] = []  # (when its limit is reached if it runs on, job)
        self._at: dict[JobId, float] = {}  # each job's one live entry: an entry due at another time is stale
        self._config = fed.scheduler.config
        self._push_running()  # a restart: the clocks stored with the jobs run on

    def _push_running(self) -> None:
        for job in self.fed.jobs.values():
            if job.started_at and not job.phase.is_terminal:
                self._push(job)

    def limit(self, job: Job) -> tuple[int, str]:
        """`job`'s run-time limit in seconds (0: none) and where it comes from (`SchedulerConfig.run_limit`)."""
        return self.fed.scheduler.config.run_limit(job.spec.queue, job.spec.max_run_seconds)

    def started(self, job: Job, phase: JobPhase) -> None:
        """A placement of `job` was reported in `phase`: Running starts its attempt's clock, if it had not."""
        if phase is not JobPhase.RUNNING or job.started_at:
            return
        job.started_at = self.fed.clock()
        self._push(job)

    def _push(self, job: Job, due: float | None = None) -> None:
        limit, _ = self.limit(job)
        if limit <= 0:
            self._at.pop(job.job_id, None)
            return
        due = job.started_at + limit - job.ran_seconds if due is None else due
        if self._at.get(job.job_id) != due:
            self._at[job.job_id] = due
            heapq.heappush(self._due, (due, job.job_id))

    def check(self) -> list[Job]:
        """The jobs failed this turn (at most one look every CHECK_SECONDS, MAX_PER_TURN entries)."""
        now = self.fed.clock()
        if self.fed.scheduler.config is not self._config:  # a policy reload or a Queue object: limits may differ
            self._config = self.fed.scheduler.config
            self._push_running()  # the old entries are hints only: each is read again when it pops
        if not self._due or now - self._checked_at < CHECK_SECONDS:
            return []
        self._checked_at = now
        ended: list[Job] = []
        for _ in range(MAX_PER_TURN):
            if not self._due or self._due[0][0] > now:
                break
            due, job_id = heapq.heappop(self._due)
            if self._at.get(job_id) != due:
                continue  # stale: the job's due time changed (a later attempt, a changed limit) and is queued too
            del self._at[job_id]
            job = self.fed.jobs.get(job_id)
            if job is None or job.phase.is_terminal or not job.started_at:
                continue  # ended, or queued again: its next start pushes it again
            limit, source = self.limit(job)
            ran = run_seconds(job, now)
            if not limit or ran < limit:
                self._push(job)  # not yet (its limit grew meanwhile): its own due time, if any
            elif self._stop(job, now, limit_message(job, ran, limit, source)):
                ended.append(job)
            else:
                self._push(job, now + CHECK_SECONDS)  # the store refused: the next look
        return ended

    def _stop(self, job: Job, now: float, why: str) -> bool:
        """Fail `job` with `why`, stored first (the write awaited off the event loop: server/stored_first.py); then
        cancel its live placements. Whether it was decided; not stored (a full disk), or changed meanwhile: looked
        at again CHECK_SECONDS later."""
        fed = self.fed
        if fed.stored_first.busy(job.job_id):
            return False  # another change of it on its way to the disk: the next look
        reason = Reason(ReasonCode.DEADLINE_EXCEEDED, why)
        done = freeze(job)
        for p in done.placements:
            if not p.phase.is_terminal:
                p.phase = JobPhase.CANCELLED
        done.phase, done.message, done.finished_at, done.pending_reason = JobPhase.FAILED, why, now, reason

        def apply() -> None:
            log.warning("job %s (started %s) failed: %s", job.job_id, utc_seconds(job.started_at), why)
            for p in job.placements:
                if not p.phase.is_terminal:
                    fed.send(p.cluster, CancelOrder(p.placement_id, f"job {why}"))
                    p.phase = JobPhase.CANCELLED
            fed._finish(job, JobPhase.FAILED, why, at=now)
            job.pending_reason = reason
            fed.metrics.jobs_run_limit_exceeded.labels(job.spec.queue).inc()
            fed.notify([job])
            fed.wake()

        def failed(error: StoreUnavailable | None) -> None:
            if error is not None:
                log.warning("job %s ran past its limit but is not failed yet (%s); it runs on", job.job_id, error)
            if job.phase.is_active and fed.jobs.get(job.job_id) is job:
                self._push(job, fed.clock() + CHECK_SECONDS)  # the next look

        return fed.stored_first.run(job, done, apply=apply, failed=failed)


__all__ = ["CHECK_SECONDS", "MAX_PER_TURN", "RunLimits", "limit_message", "paused"]
