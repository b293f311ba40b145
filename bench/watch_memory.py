"""Memory: what one open JobService.Watch holds in the federator, with 10,000 jobs.

    python bench/watch_memory.py --jobs 10000 --watchers 10

Not a test: run it by hand and copy its line into docs/benchmarks.md ("Watch streams"). A real JobService over
loopback gRPC (insecure: the caller is the admin, who sees every job) in this process; `--watchers` Watch calls
(send_bookmarks) each read the whole snapshot and its bookmark, then every job changes once (`--changes`
rounds) and each watcher reads those changes; then, with every stream still open, Python's traced memory
(tracemalloc: the Python objects the streams keep, not gRPC's C buffers) less what it was before they opened,
divided by the number of watchers. The shared history is filled before (a ring of one change per job), so what
is counted is the watchers' own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
import tempfile
import tracemalloc
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import jobs  # noqa: E402

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc  # noqa: E402
from federator.model import Job, JobPhase, Reason, ReasonCode  # noqa: E402
from federator.security.auth import Authenticator  # noqa: E402
from federator.server.federator import Federator  # noqa: E402
from federator.server.job_service import JobService  # noqa: E402
from federator.store import SqliteJobStore  # noqa: E402


async def _read_until(call: grpc.aio.StreamStreamCall, count: int, *, bookmark: bool) -> int:
    """Read `count` jobs (and, with `bookmark`, the bookmark after them); the jobs read."""
    got = 0
    while got < count or bookmark:
        msg = await call.read()
        assert msg is not grpc.aio.EOF, "the stream ended"
        if msg.bookmark:
            if got >= count:
                return got
            continue
        got += 1
    return got


def _change(fed: Federator, message: str) -> None:
    """Every job changes once (its message), announced as a change each."""
    for job in fed.jobs.values():
        job.message = message
    fed.notify(list(fed.jobs.values()))


async def measure(fed: Federator, watchers: int, changes: int) -> dict[str, float]:
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, Authenticator(insecure=True)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    n = len(fed.jobs)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = jobs_pb2_grpc.JobServiceStub(ch)
            warm = stub.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True))  # imports, caches: not per watcher
            await _read_until(warm, n, bookmark=True)
            warm.cancel()
            # The history is shared, not the watchers': full before measuring (a ring of one change per job), so
            # the changes below replace its entries and do not count as the watchers' memory.
            fed.history.size = n
            _change(fed, "before")
            await asyncio.sleep(0.2)
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            calls = [stub.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True)) for _ in range(watchers)]
            for call in calls:
                await _read_until(call, n, bookmark=True)
            gc.collect()
            after_snapshot = tracemalloc.get_traced_memory()[0]
            for round_ in range(changes):
                _change(fed, f"round {round_}")
                for call in calls:
                    await _read_until(call, n, bookmark=False)
            gc.collect()
            after_changes = tracemalloc.get_traced_memory()[0]
            for call in calls:
                call.cancel()
            await asyncio.sleep(0.2)  # the server sees them end before it stops
    finally:
        await server.stop(0)
    return {"after_snapshot_kib_per_watcher": round((after_snapshot - before) / watchers / 1024, 1),
            "after_changes_kib_per_watcher": round((after_changes - before) / watchers / 1024, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--watchers", type=int, default=10)
    p.add_argument("--changes", type=int, default=1)
    args = p.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        fed = Federator(store=SqliteJobStore(Path(tmp) / "jobs.db"))
        batch = []
        for r in jobs(args.jobs, regions=20):
            job = Job(job_id=r.job_id, spec=r.spec, submitted_at=r.submitted_at, phase=JobPhase.PENDING,
                      pending_reason=Reason(ReasonCode.WAITING, "waiting for the next scheduling cycle"))
            fed.jobs[job.job_id] = job
            batch.append(job)
        fed.journal.write(batch)
        tracemalloc.start()
        result = asyncio.run(measure(fed, args.watchers, args.changes))
        tracemalloc.stop()
        fed.store.close()
    print(json.dumps({"jobs": args.jobs, "watchers": args.watchers, **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
