"""The agent keeps to the federator's JobUpdate budget (agent/pacing.py), end to end over a real socket.

Before, the reference agent sent JobUpdates at wire speed: a member where many jobs ended at once went past the
federator's burst, the federator dropped the rest (federator_job_updates_limited_total) and the jobs whose final
phase was dropped stayed Running there until the agent happened to reconnect. Now each update waits for a token
of the budget the Welcome said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from test_services_edge import run, served

from federator.agent.agent import Agent, AgentConfig
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import JobPhase, JobSpec
from federator.security.limits import Limits

FLEET = parse_fleet({"clusters": [{"name": "east-1", "region": "east", "nodes": [
    {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})


def quick(i: int) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": f"quick-{i}", "annotations": {"federator.io/sim-startup": "0s",
                                                                         "federator.io/sim-duration": "0s"}},
                      "spec": {"kind": "training", "resources": {"cpu": "1"}}})


async def until(cond: Callable[[], object], timeout: float = 30.0) -> None:
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


def test_a_burst_of_endings_past_the_federators_budget_is_paced_and_none_is_dropped() -> None:
    async def go() -> None:
        async with served(limits=Limits(job_updates_per_second=40.0, job_update_burst=4)) as s:
            fed = s.fed
            backend = SimBackend(FLEET["east-1"])
            agent = Agent(AgentConfig(cluster="east-1", region="east", target=s.target, max_backoff=0.2), backend)
            task = asyncio.create_task(agent.run())
            try:
                await until(lambda: (rec := fed.clusters.get("east-1")) is not None and rec.resynced)
                jobs = [fed.submit(quick(i)) for i in range(24)]  # ~3 updates each, all at once: 18 times the burst
                fed.schedule_once()
                await until(lambda: all(j.phase is JobPhase.SUCCEEDED for j in jobs))
                limited = fed.metrics.registry.get_sample_value("federator_job_updates_limited_total",
                                                                {"cluster": "east-1"})
                assert not limited  # none dropped: each waited for its token
                assert agent.sessions == 1  # and so no re-sync was needed
                assert agent.metrics.updates_paced._value.get() > 0  # it did wait
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await backend.stop()

    run(go)
