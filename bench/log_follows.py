"""What open `federator logs --follow` streams cost: CPU per second of a federator, its agent and the followers.

    PYTHONPATH=src .venv/bin/python bench/log_follows.py --follows 0,50,200 --seconds 10

One process holds a real federator's job and agent services on loopback gRPC, a real agent with a simulated
cluster whose placements each say a line every second (2 replicas each), and the followers (grpc.aio clients).
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

import grpc

from federator.agent.agent import Agent, AgentConfig
from federator.api.v1 import agent_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import JobPhase
from federator.security.auth import Authenticator
from federator.security.limits import Limits
from federator.server.agent_service import AgentService
from federator.server.federator import Federator
from federator.server.job_service import JobService
from federator.store import SqliteJobStore


def _job(name: str) -> object:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-startup": "0s",
                                                                 "federator.io/sim-duration": "1h",
                                                                 "federator.io/sim-output-every": "1s"}},
                      "spec": {"kind": "training", "replicas": 2, "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})


async def measure(follows: int, seconds: float) -> tuple[float, int]:
    fleet = parse_fleet({"clusters": [{"name": "east-1", "region": "east", "nodes": [
        {"count": max(1, follows // 4 + 1), "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0,
                    limits=Limits(max_log_follows_per_user=0, max_log_follows=0))
    auth = Authenticator(insecure=True)
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed, auth), server)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, auth), server)
    target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    backend = SimBackend(fleet["east-1"])
    agent = asyncio.create_task(Agent(AgentConfig(cluster="east-1", region="east", target=target), backend).run())
    lines = 0
    readers: list[asyncio.Task[None]] = []
    try:
        while (rec := fed.clusters.get("east-1")) is None or not rec.resynced:
            await asyncio.sleep(0.05)
        made = [fed.submit(_job(f"j{i}")) for i in range(follows)]  # type: ignore[arg-type]
        fed.schedule_once()
        while any(j.phase is not JobPhase.RUNNING for j in made):
            await asyncio.sleep(0.05)
        channel = grpc.aio.insecure_channel(target)

        async def follow(name: str) -> None:
            nonlocal lines
            async for message in jobs_pb2_grpc.JobServiceStub(channel).FollowLogs(
                    jobs_pb2.FollowLogsRequest(job_id=name)):
                lines += sum(x.text.count("\n") for x in message.logs)

        readers = [asyncio.create_task(follow(j.spec.name)) for j in made]
        await asyncio.sleep(4.0)  # every follow past its first read
        before, counted = time.process_time(), lines
        await asyncio.sleep(seconds)
        return (time.process_time() - before) / seconds, lines - counted
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        agent.cancel()
        await asyncio.gather(agent, return_exceptions=True)
        await backend.stop()
        await server.stop(0)
        fed.store.close()


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
