"""A job array's Submit (`submit --array 0-999%10`) against as many single Submits, over real gRPC on loopback.

    python bench/array_submit.py --tasks 1000

Builds a Federator over a SQLite file store (a fresh temporary directory) and its real JobService on a loopback
port, then times, wall clock at the client: one Submit with SubmitRequest.array making `--tasks` tasks (all
admitted, then stored in one commit: server/arrays.py), and `--tasks` single Submits one after another (what a
shell loop of `federator submit` sends, less each process's start and TLS handshake). Beside the array's time, the
longest the event loop went without running a 1 ms ticker during it: what agent streams and other calls waited at
worst while the array's tasks were checked (they are admitted 10 at a time between yields); the same beside the
single Submits, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from federator.api import convert  # noqa: E402
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc  # noqa: E402
from federator.jobfile import parse_job  # noqa: E402
from federator.model import JobSpec  # noqa: E402
from federator.security.auth import Authenticator  # noqa: E402
from federator.server.federator import Federator  # noqa: E402
from federator.server.job_service import JobService  # noqa: E402
from federator.store import SqliteJobStore  # noqa: E402


def spec(name: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 8}}})


async def run(tasks: int, root: Path) -> tuple[float, float, float, float]:
    fed = Federator(store=SqliteJobStore(root / "jobs.db"), cycle_interval=3600)
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, Authenticator(insecure=True)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = jobs_pb2_grpc.JobServiceStub(ch)
            await stub.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("warm")), request_id="warm"))
            request = jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("sweep")), request_id="array",
                                             array=jobs_pb2.JobArray(indices=f"0-{tasks - 1}%10"))
            singles_requests = [jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec(f"one-{i}")),
                                                       request_id=f"one-{i}") for i in range(tasks)]
            tick = asyncio.ensure_future(ticker())
            t = time.perf_counter()
            reply = await stub.Submit(request)
            array = time.perf_counter() - t
            tick.cancel()
            assert len(reply.array_jobs) == tasks
            array_gap = max(gaps, default=0.0)
            gaps.clear()
            tick = asyncio.ensure_future(ticker())
            t = time.perf_counter()
            for one in singles_requests:
                await stub.Submit(one)
            singles = time.perf_counter() - t
            tick.cancel()
    finally:
        await server.stop(0)
        fed.cycles.close()
        fed.store.close()
    return array, singles, array_gap, max(gaps, default=0.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=1000)
    args = p.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        array, singles, gap, single_gap = asyncio.run(run(args.tasks, Path(d)))
    print(f"one array Submit of {args.tasks} tasks: {array:.2f} s (the event loop's longest stall during it: "
          f"{gap * 1e3:.0f} ms)")
    print(f"{args.tasks} single Submits, one after another: {singles:.2f} s (longest stall: {single_gap * 1e3:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
