"""Retention of a national backlog's ended jobs, and what it holds the event loop for (server/placement_index.py).

Each retention batch (2,000 jobs) drops its jobs' entries from the placement index, earlier placements included.
The first fix of soak S5 found those by a walk of the whole index per batch, on the event loop; the index now
keeps each job's placement ids, so a batch costs its own jobs' placements. This stores `--ended` finished jobs
and `--live` running ones, each placed `--earlier` + 1 times (the earlier placements in the index only, as a live
federator holds them: they are not stored), starts a Federator on them, and times one `Retention.sweep` that
removes every ended job, timing each stretch the sweep holds the event loop (`Steps`; the deletes run on a worker
thread in between) in the loop thread's CPU time: the longest, and their sum. Median of `--runs` sweeps, each on
a fresh copy of the store.

    PYTHONPATH=src .venv/bin/python bench/forget_jobs.py --ended 30000 --live 30000

It runs on an older checkout too (PYTHONPATH=that/src), whose index is a plain dict: the before.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Coroutine, Generator
from pathlib import Path
from typing import Any, TypeVar, cast

from common import jobs

from federator.model import Job, JobId, JobPhase, Placement, PlacementId
from federator.server.federator import Federator
from federator.server.retention import Retention, RetentionPolicy
from federator.store import SqliteJobStore

NOW = 1_000_000.0
H100 = "NVIDIA-H100-80GB-HBM3"
T = TypeVar("T")


def placement(job_id: JobId, generation: int, cluster: int, phase: JobPhase) -> Placement:
    return Placement(placement_id=PlacementId(f"{job_id}.g{generation}.c{cluster:03d}"), job_id=job_id,
                     cluster=f"c{cluster:03d}", region="r0", replicas=1, accelerator_model=H100,
                     generation=generation, phase=phase)


def store(db: Path, *, ended: int, live: int, earlier: int) -> None:
    """`ended` Succeeded and `live` Running jobs, each holding its placement of generation `earlier` + 1."""
    out = SqliteJobStore(db)
    batch: list[Job] = []
    for i, r in enumerate(jobs(ended + live, seed=11)):
        done = i < ended
        phase = JobPhase.SUCCEEDED if done else JobPhase.RUNNING
        batch.append(Job(job_id=r.job_id, spec=r.spec, submitted_at=NOW - 7200, phase=phase,
                         placements=[placement(r.job_id, earlier + 1, i % 100, phase)], generation=earlier + 1,
                         placed_at=NOW - 3600, started_at=NOW - 3600, finished_at=NOW - 60 if done else 0.0))
        if len(batch) == 5_000:
            out.put(batch)
            batch = []
    out.put(batch)
    out.close()


class Steps:
    """Awaits a coroutine, timing each of its steps: the stretches it holds the event loop between two awaits
    (here: each batch's forgetting after its delete, on a worker thread, has returned). In the loop thread's CPU
    seconds, not the wall clock's: on a shared machine the wall clock counts the time others ran."""

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self.coro = coro
        self.steps: list[float] = []

    def __await__(self) -> Generator[Any, Any, T]:
        it = self.coro.__await__()
        value: Any = None
        while True:
            start = time.thread_time()
            try:
                yielded = it.send(value)
            except StopIteration as done:
                self.steps.append(time.thread_time() - start)
                return cast(T, done.value)
            self.steps.append(time.thread_time() - start)
            value = yield yielded


async def sweep(fed: Federator) -> tuple[float, float, float, int]:
    """One sweep: (its seconds, its longest step on the loop, its steps on the loop in all, jobs removed)."""
    start = time.perf_counter()
    steps = Steps(Retention(fed, RetentionPolicy(ttl_seconds=1, max_per_owner=0)).sweep())
    removed = await steps
    return time.perf_counter() - start, max(steps.steps), sum(steps.steps), len(removed)


def run(db: Path, *, earlier: int) -> tuple[float, float, float, int, int]:
    fed = Federator(store=SqliteJobStore(db), clock=lambda: NOW)
    index = fed.placement_index
    add = getattr(index, "add", None) or index.__setitem__  # an older checkout's index is a dict
    for job in list(fed.jobs.values()):
        for g in range(1, earlier + 1):  # refused, lost, moved: superseded, kept while the job lives
            add(placement(job.job_id, g, (hash(job.job_id) + g) % 100, JobPhase.CANCELLED).placement_id, job.job_id)
    size = len(index)
    took, longest, held, removed = asyncio.run(sweep(fed))
    assert len(index) == size - removed * (earlier + 1), "the removed jobs' entries stayed"
    fed.store.close()
    return took, longest, held, removed, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ended", type=int, default=30_000, help="finished jobs retention removes")
    ap.add_argument("--live", type=int, default=30_000, help="running jobs that stay")
    ap.add_argument("--earlier", type=int, default=2, help="earlier placements of each job, in the index")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed.db"
        store(seed, ended=args.ended, live=args.live, earlier=args.earlier)
        results = []
        for n in range(args.runs):
            db = Path(tmp) / f"run{n}.db"
            shutil.copy(seed, db)
            results.append(run(db, earlier=args.earlier))
    took, longest, held = (statistics.median(r[k] for r in results) for k in range(3))
    removed, size = results[0][3], results[0][4]
    print(f"index {size:,} entries; removed {removed:,} jobs; sweep {took:.2f} s; on the loop {held * 1000:.0f} ms "
          f"in all, {longest * 1000:.0f} ms at most in one step (median of {args.runs})")


if __name__ == "__main__":
    main()
