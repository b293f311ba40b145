"""The store's writer: what the event loop pays to hand it a write, and the process's CPU per job written.

Not a test: run it by hand and copy its output into docs/benchmarks.md ("The store's writer"). An event loop runs
`--tasks` coroutines, each committing one job at a time through `GroupCommit.commit` (as Submit does) to a real
SQLite job store in a temporary directory (synchronous=FULL: each batch is an fsync), `--jobs` in all. Printed as
JSON, one object per run: the loop's time inside the hand-over (`GroupCommit._enqueue`, where the writer thread is
started or woken), the writer threads started, the batches (transactions), the process's CPU per job, and jobs per
second.

    .venv/bin/python bench/store_writer.py --jobs 5000 --tasks 16 --runs 3

Runs on any version of the group commit that has `_enqueue` (before and after the one long-lived writer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from federator.jobfile import parse_job
from federator.model import Job, JobId
from federator.store import SqliteJobStore
from federator.store.group_commit import GroupCommit


def run(n_jobs: int, n_tasks: int, workdir: Path) -> dict[str, object]:
    store = SqliteJobStore(workdir / "federator.db")
    journal = GroupCommit(store)
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "w"},
                      "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "4", "nvidia.com/gpu": 1}}})
    handed = {"seconds": 0.0, "calls": 0, "max": 0.0}
    enqueue = journal._enqueue  # noqa: SLF001 - the hand-over is what is measured
    starts = [0]
    start = threading.Thread.start

    def timed(w: object) -> None:
        t = time.perf_counter()
        enqueue(w)  # type: ignore[arg-type]
        d = time.perf_counter() - t
        handed["seconds"] += d
        handed["calls"] += 1
        handed["max"] = max(handed["max"], d)

    def counted(thread: threading.Thread) -> None:
        if thread.name == "federator-store-writer":
            starts[0] += 1
        start(thread)

    journal._enqueue = timed  # type: ignore[method-assign]  # noqa: SLF001
    threading.Thread.start = counted  # type: ignore[method-assign]
    per_task = n_jobs // n_tasks

    async def submitter(t: int) -> None:
        for i in range(per_task):
            await journal.commit([Job(JobId(f"w-{t}-{i}"), spec, submitted_at=1.0)])

    cpu, wall = time.process_time(), time.perf_counter()
    try:
        async def main() -> None:
            await asyncio.gather(*(submitter(t) for t in range(n_tasks)))

        asyncio.run(main())
    finally:
        threading.Thread.start = start  # type: ignore[method-assign]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    written = per_task * n_tasks
    close = getattr(journal, "close", None)
    if close is not None:
        close()
    store.close()
    return {"jobs": written, "tasks": n_tasks, "jobs_per_s": round(written / wall),
            "cpu_ms_per_job": round(cpu * 1e3 / written, 3), "batches": journal.batches,
            "writer_threads_started": starts[0], "loop_in_hand_over_s": round(handed["seconds"], 3),
            "hand_over_mean_us": round(handed["seconds"] / max(1, handed["calls"]) * 1e6, 1),
            "hand_over_max_ms": round(handed["max"] * 1e3, 2), "load": os.getloadavg()[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--tasks", type=int, default=16)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="federator-store-writer-") as d:
            print(json.dumps(run(args.jobs, args.tasks, Path(d))), flush=True)


if __name__ == "__main__":
    main()
