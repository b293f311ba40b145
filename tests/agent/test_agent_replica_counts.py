"""The agent puts a backend's replica counts on its JobUpdates (replicas_running, replicas_ready), and repeats
them in the re-sync after a broken stream: a federator that restarted knows how many replicas serve (F2)."""

from __future__ import annotations

import asyncio

from agent_support import ScriptedFederator, kinds, launch, with_agent

from federator.agent.agent import Agent
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.model import JobPhase

PID = "j.g1.c-1"


def _updates(msgs: list[agent_pb2.AgentMessage]) -> list[agent_pb2.JobUpdate]:
    return [m.job_update for m in msgs if m.WhichOneof("body") == "job_update"]


def test_counts_ride_on_the_update_and_on_the_re_sync() -> None:
    fed = ScriptedFederator([[launch(PID, gpus_replicas=2)], []])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: any(u.placement_id == PID for u in _updates(fed.sessions[0])))
        untold = _updates(fed.sessions[0])[-1]
        assert not untold.HasField("replicas_running") and not untold.HasField("replicas_ready")  # the sim counts none
        agent._on_update(PID, JobPhase.RUNNING, "1 of 2 replicas running; 1 pending", running=1, ready=0)  # noqa: SLF001
        await fed.until(lambda: _updates(fed.sessions[0])[-1].message.startswith("1 of 2"))
        told = _updates(fed.sessions[0])[-1]
        assert told.HasField("replicas_running") and (told.replicas_running, told.replicas_ready) == (1, 0)
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks: the re-sync must carry the counts
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        (resync,) = _updates(fed.sessions[1])
        assert resync.resync and resync.phase == convert.phase_to_pb(JobPhase.RUNNING)
        assert resync.HasField("replicas_ready") and (resync.replicas_running, resync.replicas_ready) == (1, 0)

    asyncio.run(with_agent(fed, body))
