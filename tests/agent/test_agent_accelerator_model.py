"""The agent says the accelerator model each placement runs on (its Launch's placement.accelerator_model) on its
JobUpdates, the re-sync's too, and after a restart what its backend kept on the member (agent/accelerator_models.py):
how the federator books a placement it adopts after a restore of its store on the model it runs on
(server/adoption.py), not on the job's first alternative with a pool there."""

from __future__ import annotations

import asyncio

from agent_support import FLEET, ScriptedFederator, kinds, launch, with_agent

from federator.agent.accelerator_models import KeepsAcceleratorModels
from federator.agent.agent import Agent
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.backends.sim.runtime import SimBackend
from federator.model import JobPhase, Placement

LIVE = {convert.phase_to_pb(JobPhase.PLACED), convert.phase_to_pb(JobPhase.RUNNING)}


def _said(msgs: list[agent_pb2.AgentMessage], *, resync: bool) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m in msgs:
        if m.WhichOneof("body") == "job_update" and m.job_update.phase in LIVE and m.job_update.resync == resync:
            out.setdefault(m.job_update.placement_id, set()).add(m.job_update.accelerator_model)
    return out


class KeepingBackend(SimBackend):
    """A simulated member that keeps each placement's model, as the Kubernetes one does on the workload object."""

    def __init__(self) -> None:
        super().__init__(FLEET["c-1"])
        self.kept: dict[str, str] = {}

    async def launch(self, placement: Placement, spec: object) -> str | None:  # type: ignore[override]
        self.kept[placement.placement_id] = placement.accelerator_model
        return await super().launch(placement, spec)  # type: ignore[arg-type]

    def accelerator_model_of(self, placement_id: str) -> str:
        return self.kept.get(placement_id, "")


def test_the_model_is_said_live_and_at_every_re_sync() -> None:
    fed = ScriptedFederator([[launch("a.g1.c-1"), launch("b.g1.c-1")], []])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: {"a.g1.c-1", "b.g1.c-1"} <= _said(fed.sessions[0], resync=False).keys())
        assert _said(fed.sessions[0], resync=False) == {"a.g1.c-1": {"H100"}, "b.g1.c-1": {"H100"}}
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        assert _said(fed.sessions[1], resync=True) == {"a.g1.c-1": {"H100"}, "b.g1.c-1": {"H100"}}

    asyncio.run(with_agent(fed, body))


def test_a_restarted_agent_says_the_model_its_member_kept() -> None:
    backend = KeepingBackend()
    assert isinstance(backend, KeepsAcceleratorModels)
    first = ScriptedFederator([[launch("a.g1.c-1")]])

    async def launched(agent: Agent) -> None:
        await first.until(lambda: "a.g1.c-1" in _said(first.sessions[0], resync=False))

    asyncio.run(with_agent(first, launched, backend=backend))
    again = ScriptedFederator([[]])  # a new agent process on the same member: its own memory is empty

    async def resynced(agent: Agent) -> None:
        await again.until(lambda: "capacity" in kinds(again.sessions[0]))

    asyncio.run(with_agent(again, resynced, backend=backend))
    assert _said(again.sessions[0], resync=True) == {"a.g1.c-1": {"H100"}}


def test_a_simulated_member_keeps_none_so_a_restarted_agent_says_none() -> None:
    backend = SimBackend(FLEET["c-1"])
    assert not isinstance(backend, KeepsAcceleratorModels)
    first = ScriptedFederator([[launch("a.g1.c-1")]])

    async def launched(agent: Agent) -> None:
        await first.until(lambda: "a.g1.c-1" in _said(first.sessions[0], resync=False))

    asyncio.run(with_agent(first, launched, backend=backend))
    again = ScriptedFederator([[]])

    async def resynced(agent: Agent) -> None:
        await again.until(lambda: "capacity" in kinds(again.sessions[0]))

    asyncio.run(with_agent(again, resynced, backend=backend))
    assert _said(again.sessions[0], resync=True) == {"a.g1.c-1": {""}}  # the federator books it as before
