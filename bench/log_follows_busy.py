"""Many `federator logs --follow` streams on one cluster: what reaches its agent, and what each follower sees.

    PYTHONPATH=src .venv/bin/python bench/log_follows_busy.py --follows 10,50,100,200 --seconds 12 --read-ms 50

One process holds a real federator's job and agent services on loopback gRPC, a real agent with a simulated
cluster whose placements each say a line every second (2 replicas each; follow_bed.py, shared with
log_follows.py), and the followers (grpc.aio clients). A member's API server takes time to read a pod's log, the
simulator none: `--read-ms` has each of the agent's reads take that long (a sleep in the backend), so its
READS_AT_ONCE and WAITING_AT_MOST bind as on a member.

For N follows it submits `--jobs` x N jobs (0.75: 3N/4) and opens N follows, follow i on job i mod jobs (at
0.75 the first N/4 jobs followed twice: a class following its jobs, a dashboard beside them). Over `--seconds`
after every follow's first message it counts the LogsRequests that reached the agent (per second; "most in
flight": the most it held unanswered at once, over the whole run), those it answered "busy", and for each
follower its lines: a gap is a step of the simulator's "step N" lines missing between two it got, "twice" one
it got twice, and "follows told busy" those that were told a cluster was busy (JobLogsError, over the whole run,
first reads included). Run the same file against another tree's code with PYTHONPATH=that/src to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

import follow_bed  # noqa: E402

from federator.agent import logs as agent_logs  # noqa: E402
from federator.api.v1 import agent_pb2, jobs_pb2  # noqa: E402

STEP = re.compile(r"federator sim: step (\d+)$")


class Counted:
    """The agent's LogsRequests and busy answers, counted from `start` on."""

    def __init__(self) -> None:
        self.start = float("inf")
        self.asked = 0
        self.busy = 0
        self.in_flight = 0
        self.most_in_flight = 0


async def measure(follows: int, seconds: float, read_ms: float, share: float) -> dict[str, float]:
    counted = Counted()
    take, answer = agent_logs.LogAnswers.take, agent_logs.LogAnswers._answer

    def counting_take(self: agent_logs.LogAnswers, request: agent_pb2.LogsRequest) -> None:
        if time.monotonic() >= counted.start:
            counted.asked += 1
        counted.in_flight += 1
        counted.most_in_flight = max(counted.most_in_flight, counted.in_flight)
        take(self, request)

    def counting_answer(self: agent_logs.LogAnswers, request: agent_pb2.LogsRequest, **kw: object) -> None:
        if time.monotonic() >= counted.start and str(kw.get("error", "")).startswith("busy"):
            counted.busy += 1
        counted.in_flight -= 1
        answer(self, request, **kw)  # type: ignore[arg-type]

    agent_logs.LogAnswers.take = counting_take  # type: ignore[method-assign]
    agent_logs.LogAnswers._answer = counting_answer  # type: ignore[method-assign]
    jobs = max(1, round(follows * share))
    steps: list[dict[int, list[int]]] = [defaultdict(list) for _ in range(follows)]
    told_busy: set[int] = set()
    first: set[int] = set()
    ended: list[str] = []
    readers: list[asyncio.Task[None]] = []
    try:
        async with follow_bed.running(jobs if follows else 0, nodes=max(1, follows // 4 + 1),
                                      read_ms=read_ms) as bed:

            async def follow(i: int, name: str) -> None:
                try:
                    async for message in bed.stub.FollowLogs(jobs_pb2.FollowLogsRequest(job_id=name, tail_lines=1)):
                        first.add(i)
                        if any("busy" in e.message for e in message.errors):
                            told_busy.add(i)
                        for x in message.logs:
                            steps[i][x.replica] += [int(m.group(1)) for line in x.text.splitlines()
                                                    if (m := STEP.search(line))]
                        if message.ended:
                            ended.append(message.ended)
                except grpc.aio.AioRpcError as exc:
                    ended.append(exc.code().name)

            try:
                readers = [asyncio.create_task(follow(i, bed.jobs[i % jobs].spec.name)) for i in range(follows)]
                while len(first) < follows:
                    await asyncio.sleep(0.05)
                counted.start = time.monotonic()
                for s in steps:  # count the window's lines only: what came before is the tail
                    s.clear()
                before = time.process_time()
                await asyncio.sleep(seconds)
                cpu = (time.process_time() - before) / seconds
                counted.start = float("inf")
            finally:
                for task in readers:
                    task.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
    finally:
        agent_logs.LogAnswers.take, agent_logs.LogAnswers._answer = take, answer  # type: ignore[method-assign]
    lines = sum(len(v) for s in steps for v in s.values())
    gaps = sum(max(v) - min(v) + 1 - len(set(v)) for s in steps for v in s.values() if v)
    dups = sum(len(v) - len(set(v)) for s in steps for v in s.values())
    return {"asked": counted.asked / seconds, "busy": counted.busy / seconds, "most": counted.most_in_flight,
            "lines": lines, "gaps": gaps, "dups": dups, "told": len(told_busy), "ended": len(ended), "cpu": cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--follows", default="10,50,100,200", help="counts of follows, comma-separated")
    parser.add_argument("--seconds", type=float, default=12.0, help="the window measured")
    parser.add_argument("--read-ms", type=float, default=50.0, help="how long each of the agent's reads takes")
    parser.add_argument("--jobs", type=float, default=0.75, help="jobs followed, as a share of the follows")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("grpc._cython.cygrpc").setLevel(logging.CRITICAL)  # the followers cut at the window's end
    print("| follows | jobs | LogsRequests/s at the agent | most in flight | busy/s | lines received | gaps | twice "
          "| follows told busy | follows ended | CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.follows.split(",")):
        r = asyncio.run(measure(n, args.seconds, args.read_ms, args.jobs))
        print(f"| {n} | {max(1, round(n * args.jobs))} | {r['asked']:.1f} | {r['most']:.0f} | {r['busy']:.1f} "
              f"| {r['lines']:.0f} | {r['gaps']:.0f} | {r['dups']:.0f} | {r['told']:.0f} | {r['ended']:.0f} "
              f"| {r['cpu'] * 100:.0f}% |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
