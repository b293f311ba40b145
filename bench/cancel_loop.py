"""A bulk cancel and the event loop: how long the loop is held while a CancelJobs cancels an organisation's jobs.

Not a test: run it by hand and copy its output into docs/benchmarks.md ("A bulk cancel and the event loop"). A
federator on a real SQLite job store in a temporary directory (synchronous=FULL: each batch is an fsync) holds
`--jobs` Pending jobs of one queue; a client cancels them all with CancelJobs over gRPC on loopback, `--page` jobs
a page, while a probe coroutine on the federator's event loop sleeps 1 ms at a time and records how late each wake
is (the loop's lag: what every agent stream, Watch and Submit waits). Printed as JSON, one object per run: the
cancel's wall time, jobs cancelled per second, and the probe's lag p50 / p99 / max in milliseconds.

    PYTHONPATH=src .venv/bin/python bench/cancel_loop.py --jobs 2000 --page 500 --runs 3

Runs on any federator with CancelJobs (0.11.0 on): the same command with PYTHONPATH pointing at an older tree
measures before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import grpc

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.jobfile import parse_job
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run(n_jobs: int, page: int, workdir: Path) -> dict[str, object]:
    store = SqliteJobStore(workdir / "federator.db")
    fed = Federator(store=store)
    for i in range(n_jobs):
        fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                              "metadata": {"name": f"j{i}"},
                              "spec": {"kind": "training", "queue": "org", "replicas": 1,
                                       "resources": {"cpu": "4", "nvidia.com/gpu": 1}}}))
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, Authenticator(insecure=True)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    lags: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - t - 0.001) * 1000)

    prober = asyncio.get_running_loop().create_task(probe())
    began = time.perf_counter()
    cancelled = 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = jobs_pb2_grpc.JobServiceStub(ch)
        token = ""
        while True:
            answer = await stub.CancelJobs(jobs_pb2.CancelJobsRequest(queue="org", max_jobs=page, page_token=token))
            cancelled += sum(r.outcome == jobs_pb2.CANCEL_OUTCOME_CANCELLED for r in answer.results)
            token = answer.next_page_token
            if not token:
                break
    seconds = time.perf_counter() - began
    done.set()
    await prober
    await server.stop(0)
    fed.journal.close()
    fed.cycles.close()
    store.close()
    return {"jobs": n_jobs, "cancelled": cancelled, "seconds": round(seconds, 2),
            "jobs_per_second": round(cancelled / seconds), "lag_ms_p50": round(_percentile(lags, 0.5), 2),
            "lag_ms_p99": round(_percentile(lags, 0.99), 2), "lag_ms_max": round(max(lags, default=0.0), 2),
            "probe_wakes": len(lags)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--page", type=int, default=500)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="cancel-loop-") as tmp:
            print(json.dumps(asyncio.run(run(args.jobs, args.page, Path(tmp)))), flush=True)


if __name__ == "__main__":
    main()
