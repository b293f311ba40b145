"""What open `federator logs --follow` streams cost: CPU per second of a federator, its agent and the followers.

    PYTHONPATH=src .venv/bin/python bench/log_follows.py --follows 0,50,200 --seconds 10

One process holds a real federator's job and agent services on loopback gRPC, a real agent with a simulated
cluster whose placements each say a line every second (2 replicas each; follow_bed.py, shared with
log_follows_busy.py), and the followers (grpc.aio clients).
For each count of follows it submits that many jobs, opens one follow per job, lets them settle, and measures the
process's CPU time over `--seconds`: every follow makes the federator ask the agent every 2 s (server/log_follow.py)
and cut the dated lines. The followers' own share is in the number too (they only read), so it is an upper bound
on the federator's and agent's. Lines received are counted, to show the follows were live.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import follow_bed  # noqa: E402

from federator.api.v1 import jobs_pb2  # noqa: E402


async def measure(follows: int, seconds: float) -> tuple[float, int]:
    lines = 0
    readers: list[asyncio.Task[None]] = []
    async with follow_bed.running(follows, nodes=max(1, follows // 4 + 1)) as bed:

        async def follow(name: str) -> None:
            nonlocal lines
            async for message in bed.stub.FollowLogs(jobs_pb2.FollowLogsRequest(job_id=name)):
                lines += sum(x.text.count("\n") for x in message.logs)

        try:
            readers = [asyncio.create_task(follow(j.spec.name)) for j in bed.jobs]
            await asyncio.sleep(4.0)  # every follow past its first read
            before, counted = time.process_time(), lines
            await asyncio.sleep(seconds)
            return (time.process_time() - before) / seconds, lines - counted
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--follows", default="0,50,200", help="counts of follows, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="the window measured")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print("| follows open | CPU (share of one core) | lines received in the window |")
    print("|---|---|---|")
    for n in (int(x) for x in args.follows.split(",")):
        cpu, got = asyncio.run(measure(n, args.seconds))
        print(f"| {n} | {cpu * 100:.1f}% | {got} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
