"""The agent says which nodes a placement's replicas run on (JobUpdate.nodes; tenant QA F9: preemption frees one
node's worth from it), the simulated backend from its node binding, and repeats it in the re-sync."""

from __future__ import annotations

import asyncio

from agent_support import FLEET, ScriptedFederator, kinds, launch, with_agent

from federator.agent.agent import Agent
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.backends.sim.runtime import SimBackend
from federator.model import JobPhase

PID = "j.g1.c-1"
HELD = "held.g1.c-1"


def _updates(msgs: list[agent_pb2.AgentMessage]) -> list[agent_pb2.JobUpdate]:
    return [m.job_update for m in msgs if m.WhichOneof("body") == "job_update"]


def _running(msgs: list[agent_pb2.AgentMessage]) -> list[agent_pb2.JobUpdate]:
    return [u for u in _updates(msgs) if u.placement_id == PID and u.phase == convert.phase_to_pb(JobPhase.RUNNING)]


def test_the_nodes_ride_on_the_running_update_and_on_the_re_sync() -> None:
    fed = ScriptedFederator([[launch(PID, gpus_replicas=2)], []])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: bool(_running(fed.sessions[0])))
        told = _running(fed.sessions[0])[-1]
        assert told.nodes and sum(e.replicas for e in told.nodes) == 2
        assert all(e.node and e.replicas >= 1 for e in told.nodes)
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks: the re-sync must carry the nodes
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        (resync,) = _updates(fed.sessions[1])
        assert [(e.node, e.replicas) for e in resync.nodes] == [(e.node, e.replicas) for e in told.nodes]

    asyncio.run(with_agent(fed, body))


class _Restarted(SimBackend):
    """A member whose placement ran before this agent process: its backend knows the nodes (Kubernetes: the pods
    it listed at start), the agent was told nothing yet."""

    def placements(self) -> dict[str, JobPhase]:
        return {**super().placements(), HELD: JobPhase.RUNNING}

    def nodes_of(self, placement_id: str) -> tuple[tuple[str, int], ...]:
        return (("gpu-a", 2), ("gpu-b", 1)) if placement_id == HELD else ()


def test_a_restarted_agents_re_sync_says_the_nodes_its_backend_knows() -> None:
    """agent.proto: the re-sync carries the nodes too (the federator does not store them); an agent that restarted
    has no copy of what was said, so it asks a backend that says nodes (`SaysNodes`)."""
    fed = ScriptedFederator([[]])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: "capacity" in kinds(fed.sessions[0]))
        (resync,) = [u for u in _updates(fed.sessions[0]) if u.placement_id == HELD]
        assert resync.resync and [(e.node, e.replicas) for e in resync.nodes] == [("gpu-a", 2), ("gpu-b", 1)]

    asyncio.run(with_agent(fed, body, backend=_Restarted(FLEET["c-1"])))
