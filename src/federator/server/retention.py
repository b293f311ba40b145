"""How long a finished job is kept: a TTL after it finished (Kubernetes' ttlSecondsAfterFinished) and a count per
owner. Past the count, the jobs that never ran go first (`never_ran`: cancelled, then failed, while they waited
to be placed), then those that ran, each oldest finished first.

Why that order: history is for "which of my sweep failed?". With the oldest finished first, cancelling a
backlog that never ran pushed out every job that had (outside QA, HPC H16: after a 10,000-job backlog was
cancelled, bob's 500 jobs kept were all cancelled ones, and `get job bk-5`, which had succeeded, was not found).
The bound stays one count per owner, so memory does too (a bound of its own for jobs that never ran would add
as much again per owner, over a national network's thousand organisations); a job that never ran holds no
placement and no usage record, so it is the cheapest to lose.

Nothing else bounded finished jobs: the caps on pending jobs (server/intake.py) let a tenant submit and cancel
at once, and 200 jobs of a 0.88 MB template grew the federator by 190 MB and its SQLite file to 169 MB in 20 s.

`chosen` is pure (which jobs go); `Retention.sweep` removes them off the event loop, store first (store mode): a
job that the store still holds is not dropped from memory, so a failed delete is tried again at the next sweep
and never leaves a job that comes back after a restart only in the store. Only finished jobs are ever chosen, so
nothing accepted and still to run is lost. Usage records (accounting/) are another table and stay.

Kubernetes mode keeps no retention here: a job lives as long as its FederatedJob, which is its user's (as a
Job without ttlSecondsAfterFinished stays until deleted), and `kubectl get fj` and `federator get` must agree;
deleting the object is how a kubectl user ends it, and the host's ResourceQuota (count/federatedjobs...) bounds
a namespace's objects.

A removed job vanishes from Get, List and Watch at once. A Watch that asked for revisions is told (a `removed`
message, server/watch_stream.py); an old-style Watch of every job hears nothing of it (its last state was its
finish), an old-style Watch of that one job ends with NOT_FOUND saying so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from federator.model import Job, JobId, JobPhase
from federator.security.authz import Submitter, submitter_of
from federator.store.errors import StoreError

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server.retention")
DEFAULT_FINISHED_JOB_TTL = 7 * 24 * 3600.0  # a week: a Monday's `federator get` still shows Friday's runs
DEFAULT_MAX_FINISHED_PER_USER = 500  # history enough for a person; with 512 KiB specs, a bound on memory too
SWEEP_SECONDS = 10.0
REMOVE_BATCH = 2_000  # one delete transaction's size: the loop hears of each batch as it is removed


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """`federator serve --finished-job-ttl` and `--max-finished-jobs-per-user`; 0 turns either off."""

    ttl_seconds: float = DEFAULT_FINISHED_JOB_TTL
    max_per_owner: int = DEFAULT_MAX_FINISHED_PER_USER

    def __post_init__(self) -> None:
        if not (self.ttl_seconds >= 0 and self.ttl_seconds != float("inf")):
            raise ValueError(f"--finished-job-ttl: must be 0 (keep forever) or more seconds, got {self.ttl_seconds!r}")
        if self.max_per_owner < 0:
            raise ValueError(f"--max-finished-jobs-per-user: must be 0 (no bound) or more, got {self.max_per_owner!r}")

    @property
    def keeps_all(self) -> bool:
        return self.ttl_seconds == 0 and self.max_per_owner == 0


def never_ran(job: Job) -> bool:
    """A finished job that ended while it waited to be placed and had never run: cancelled in the queue, or failed
    there (refused by every member, found never runnable). It holds no placement at its end, ran no time in an
    earlier attempt (a preempted or lost one is queued again with its run time kept) and failed early nowhere.
    A job placed whose placement failed before it ran (an image that does not pull) keeps its placement, so it
    counts as run: its failure is what its owner looks for."""
    return not job.placements and not job.ran_seconds and not job.started_at and not job.early_failure


def removal_order(job: Job) -> tuple[int, float, float, str]:
    """The order an owner's finished jobs past the count go in: those cancelled before they ran, then those
    that failed before they ran, then those that ran; each oldest finished first."""
    tier = (0 if job.phase is JobPhase.CANCELLED else 1) if never_ran(job) else 2
    return tier, job.finished_at, job.submitted_at, job.job_id


def chosen(jobs: Iterable[Job], *, now: float, policy: RetentionPolicy) -> list[Job]:
    """The finished jobs to remove: past the TTL, and each owner's first past the count in `removal_order` (an
    owner: the user recorded on the job, else its namespace, as the pending caps count them)."""
    out: list[Job] = []
    kept: dict[Submitter, list[Job]] = {}
    for job in jobs:
        if not job.phase.is_terminal:
            continue
        if policy.ttl_seconds and now - job.finished_at >= policy.ttl_seconds:
            out.append(job)
        elif policy.max_per_owner:
            kept.setdefault(submitter_of(job.spec), []).append(job)
    for finished in kept.values():
        if len(finished) > policy.max_per_owner:
            finished.sort(key=removal_order)
            out.extend(finished[:len(finished) - policy.max_per_owner])
    return out


class Retention:
    """Removes what `chosen` picks, every SWEEP_SECONDS (`run`), from the store and then from memory.

    Off the event loop: `chosen` reads a copy of the job list on a worker thread, and each batch's delete waits
    there for the writes queued before it (`GroupCommit.remove`). On the loop, a national backlog's 250,000
    jobs took a scan of every job each sweep, and a delete waited for every pending reason a cycle over that
    backlog had queued: seconds in which no Submit, report or cycle ran."""

    def __init__(self, fed: Federator, policy: RetentionPolicy, *, batch: int = REMOVE_BATCH) -> None:
        self.fed = fed
        self.policy = policy
        self.batch = batch
        self.removed = 0

    async def sweep(self) -> list[JobId]:
        """One pass; the ids removed. A store that refuses a delete leaves that batch and the rest as they were,
        tried again at the next sweep."""
        fed = self.fed
        if self.policy.keeps_all:
            return []
        gone = await asyncio.to_thread(chosen, list(fed.jobs.values()), now=fed.clock(), policy=self.policy)
        removed: list[JobId] = []
        for start in range(0, len(gone), self.batch):
            # Still this finished job (a thread chose it from a copy; nothing brings a finished job back, but
            # the check is cheap and a mistake here would lose an accepted job).
            batch = [j for j in gone[start:start + self.batch]
                     if fed.jobs.get(j.job_id) is j and j.phase.is_terminal]
            ids = [j.job_id for j in batch]
            if not ids:
                continue
            try:
                await asyncio.to_thread(fed.journal.remove, ids)
            except StoreError as exc:
                log.warning("%d finished jobs not removed (%s); tried again at the next sweep", len(gone) - start, exc)
                break
            for job in batch:
                self._forget(job)
            fed.notify(batch)  # numbered removals: `removed` to watchers that asked, NOT_FOUND to an old one-job Watch
            removed.extend(ids)
        if removed:
            self.removed += len(removed)
            log.info("removed %d finished jobs (past --finished-job-ttl %gs or over --max-finished-jobs-per-user "
                     "%d)", len(removed), self.policy.ttl_seconds, self.policy.max_per_owner)
        return removed

    def _forget(self, job: Job) -> None:
        forget_job(self.fed, job)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep()
            except Exception:  # a bug here must not stop the sweeps, nor anything else
                log.exception("removing finished jobs failed")


def forget_job(fed: Federator, job: Job) -> None:
    """Drop a finished job from memory and every index: its id, its placements (the earlier ones too, which the
    placement index keeps while the job lives: server/placement_index.py), its name and request id. The caller
    has removed it from the store (retention), or the store's object is gone (Kubernetes mode: its FederatedJob
    deleted, backends/kube/deletions.py)."""
    fed.jobs.pop(job.job_id, None)
    fed.placement_index.forget_job(job.job_id)  # its earlier placements too (soak S5), at the cost of its own
    fed.intake.drop(job)
    fed.refusals.forget(job.job_id)
    fed.orphans.removed(job)  # its placements an agent still runs are fenced at once, not held (server/orphans.py)


def removed_message(key: str) -> str:
    return (f"watch: job {key} was removed: a finished job is kept for --finished-job-ttl, and past "
            "--max-finished-jobs-per-user an owner's jobs that never ran go first, then the oldest finished; in "
            "Kubernetes mode a job goes with its FederatedJob")


__all__ = ["DEFAULT_FINISHED_JOB_TTL", "DEFAULT_MAX_FINISHED_PER_USER", "Retention",
           "RetentionPolicy", "chosen", "forget_job", "never_ran", "removal_order",
           "removed_message"]
