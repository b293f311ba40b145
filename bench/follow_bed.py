"""The set-up the log-follow benchmarks share (log_follows.py, log_follows_busy.py), so the two measure the same
thing and change together: a real federator's job and agent services on loopback gRPC, a real agent over a
simulated cluster "east-1", and running jobs whose placements (2 replicas each) say a line every second, ready to
be followed with the JobService stub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from federator.agent.agent import Agent, AgentConfig
from federator.api.v1 import agent_pb2_grpc, jobs_pb2_grpc
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import Job, JobPhase, JobSpec
from federator.security.auth import Authenticator
from federator.security.limits import Limits
from federator.server.agent_service import AgentService
from federator.server.federator import Federator
from federator.server.job_service import JobService
from federator.store import SqliteJobStore


@dataclass(frozen=True)
class Bed:
    fed: Federator
    backend: SimBackend
    jobs: list[Job]  # running, named j0, j1, ...
    stub: jobs_pb2_grpc.JobServiceStub


def _spec(name: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-startup": "0s",
                                                                 "federator.io/sim-duration": "1h",
                                                                 "federator.io/sim-output-every": "1s"}},
                      "spec": {"kind": "training", "replicas": 2, "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})


@asynccontextmanager
async def running(jobs: int, *, nodes: int, read_ms: float = 0.0) -> AsyncIterator[Bed]:
    """`jobs` running on `nodes` nodes of 8 accelerators (4 jobs a node); no cap on follows. A member's API server
    takes time to read a pod's log, the simulator none: with `read_ms`, each of the agent's reads takes that long
    (a sleep in the backend), so its READS_AT_ONCE and WAITING_AT_MOST bind as on a member."""
    fleet = parse_fleet({"clusters": [{"name": "east-1", "region": "east", "nodes": [
        {"count": nodes, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0,
                    limits=Limits(max_log_follows_per_user=0, max_log_follows=0))
    auth = Authenticator(insecure=True)
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed, auth), server)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, auth), server)
    target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    backend = SimBackend(fleet["east-1"])
    if read_ms:
        since = backend.logs_since

        async def slow_since(*args: object, **kwargs: object) -> object:
            await asyncio.sleep(read_ms / 1000)
            return await since(*args, **kwargs)  # type: ignore[arg-type]

        backend.logs_since = slow_since  # type: ignore[method-assign,assignment]
    agent = asyncio.create_task(Agent(AgentConfig(cluster="east-1", region="east", target=target), backend).run())
    channel = grpc.aio.insecure_channel(target)
    try:
        while (rec := fed.clusters.get("east-1")) is None or not rec.resynced:
            await asyncio.sleep(0.05)
        made = [fed.submit(_spec(f"j{i}")) for i in range(jobs)]
        fed.schedule_once()
        while any(j.phase is not JobPhase.RUNNING for j in made):
            await asyncio.sleep(0.05)
        yield Bed(fed, backend, made, jobs_pb2_grpc.JobServiceStub(channel))
    finally:
        agent.cancel()
        await asyncio.gather(agent, return_exceptions=True)
        await backend.stop()
        await server.stop(0)
        await channel.close()
        fed.store.close()
