"""Scaling down in place end to end over a real socket: the federator's AgentService and a real agent with the
simulated backend. The agent's Hello says "resize"; a job of one part of 6 replicas scaled to 4 keeps its
placement, the Resize travels the stream, and the simulated member frees the room of 2 replicas while 4 serve on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from test_services_edge import run, served

from federator.agent.agent import Agent, AgentConfig
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import AgentFeature, JobPhase

FLEET = parse_fleet({"clusters": [{"name": "east-1", "region": "east", "nodes": [
    {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})
SERVE = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                   "metadata": {"name": "chat", "annotations": {"federator.io/sim-startup": "0s"}},
                   "spec": {"kind": "inference", "replicas": 6, "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})


async def until(cond: Callable[[], object], timeout: float = 20.0) -> None:
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


def test_a_resize_travels_the_stream_to_a_real_agent_and_the_part_keeps_serving() -> None:
    async def go() -> None:
        async with served() as s:
            fed = s.fed
            backend = SimBackend(FLEET["east-1"])
            agent = Agent(AgentConfig(cluster="east-1", region="east", target=s.target, max_backoff=0.2), backend)
            task = asyncio.create_task(agent.run())
            try:
                await until(lambda: (rec := fed.clusters.get("east-1")) is not None and rec.resynced)
                assert AgentFeature.RESIZE in fed.clusters["east-1"].features
                job = fed.submit(SERVE)
                fed.schedule_once()
                await until(lambda: job.phase is JobPhase.RUNNING)
                (placed,) = job.placements
                assert backend.capacity().pool("H100").free_accelerators == 2  # type: ignore[union-attr]

                fed.scale(job.job_id, 4)
                await until(lambda: backend.capacity().pool("H100").free_accelerators == 4)  # type: ignore[union-attr]
                await until(lambda: "shrank from 6" in job.placements[0].message)
                (now,) = job.placements
                assert (now.placement_id, now.replicas, now.phase) == (placed.placement_id, 4, JobPhase.RUNNING)
                assert backend.placements() == {placed.placement_id: JobPhase.RUNNING}  # never stopped
                assert job.message == "4 replicas running on east-1 (shrank from 6)"
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await backend.stop()

    run(go)


def test_a_scale_down_while_the_agent_restarts_shrinks_the_part_when_it_is_back() -> None:
    """Outside QA F11 over the wire: the agent stops (its pods untouched), the job is scaled 6 -> 4, and a new
    agent process comes back: the part keeps its id and the Resize reaches it at the re-sync. Before, the part
    was stopped whole and all 6 replicas were placed again."""
    async def go() -> None:
        async with served() as s:
            fed = s.fed
            backend = SimBackend(FLEET["east-1"])
            config = AgentConfig(cluster="east-1", region="east", target=s.target, max_backoff=0.2)
            task = asyncio.create_task(Agent(config, backend).run())
            try:
                await until(lambda: (rec := fed.clusters.get("east-1")) is not None and rec.resynced)
                job = fed.submit(SERVE)
                fed.schedule_once()
                await until(lambda: job.phase is JobPhase.RUNNING)
                (placed,) = job.placements
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await until(lambda: not fed.clusters["east-1"].connected)

                fed.scale(job.job_id, 4)
                assert [(p.placement_id, p.replicas) for p in job.placements] == [(placed.placement_id, 4)]
                task = asyncio.create_task(Agent(config, backend).run())
                await until(lambda: backend.capacity().pool("H100").free_accelerators == 4)  # type: ignore[union-attr]
                assert backend.placements() == {placed.placement_id: JobPhase.RUNNING}  # never stopped
                assert [(p.placement_id, p.replicas) for p in job.placements] == [(placed.placement_id, 4)]
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await backend.stop()

    run(go)
