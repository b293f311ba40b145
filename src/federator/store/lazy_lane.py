"""The group commit's lazy lane: state a crash may lose (pending reasons), written only when nothing else waits.

Why a lane of its own: after a cycle over 100,000 pending jobs that is 100,000 writes; in the ordinary queue every
Submit would wait behind them. Here each job has one entry (the newest wins), dropped when an ordinary write of that
job is queued after it (so it never lands over newer state), and the writer thread takes a small batch at a time
(`LAZY_BATCH_JOBS`) only when no ordinary write waits, so one that arrives meanwhile waits for that batch alone. A
lazy write that fails is not tried again: the next cycle computes the reason again (said once per outage).

A store whose writes are slow says how many make a batch (its `lazy_batch_jobs`): 200 writes are milliseconds to
SQLite and seconds of PATCHes to a Kubernetes API server, where a Submit waited ~7 s behind each batch (QA
kubescaleqa62 H1: new FederatedJobs admitted 16 every ~8 s after a restart).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from federator.model import Job, JobId
from federator.store.frozen import freeze

LAZY_BATCH_JOBS = 200  # a lazy batch is small: an ordinary write that arrives meanwhile waits for it


class LazyLane:
    """The lazy entries, newest state per job, in the order each was last changed. Not locked itself: the group
    commit (store/group_commit.py) uses it under its lock, but for `write`, which its writer thread calls alone."""

    def __init__(self, batch: int = LAZY_BATCH_JOBS) -> None:
        self.batch = max(1, batch)  # jobs a `take` hands the writer at most
        self._jobs: dict[JobId, Job] = {}
        self._failing = False  # the last lazy write failed: its failures are not said again until one works

    def __len__(self) -> int:
        return len(self._jobs)

    def put(self, jobs: Iterable[Job]) -> None:
        """Each job's current state, copied, in place of the entry it had (moved to the end)."""
        for job in jobs:
            self._jobs.pop(job.job_id, None)
            self._jobs[job.job_id] = freeze(job)

    def drop(self, job_ids: Iterable[JobId]) -> None:
        """These jobs' entries go: a newer state is on its way (an ordinary write), or the job is (removed)."""
        if self._jobs:
            for job_id in job_ids:
                self._jobs.pop(job_id, None)

    def clear(self) -> None:
        self._jobs.clear()

    def take(self) -> list[Job]:
        """The oldest entries, up to `batch`, taken out of the lane for the writer to write."""
        ids = list(itertools.islice(self._jobs, self.batch))
        return [self._jobs.pop(i) for i in ids]

    def write(self, jobs: list[Job], put: Callable[[list[Job]], None],
              log_failed: Callable[[str, Exception], None]) -> None:
        """Write what `take` gave (`put`, on the writer thread); a failure is said once per outage, not raised."""
        try:
            put(jobs)
        except Exception as exc:  # a reason is recomputed by the next cycle: dropped, said once per outage
            if not self._failing:
                log_failed(f"writing {len(jobs)} pending reasons to the store failed (not retried)", exc)
            self._failing = True
        else:
            self._failing = False


__all__ = ["LAZY_BATCH_JOBS", "LazyLane"]
