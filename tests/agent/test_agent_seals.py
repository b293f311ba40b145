"""The agent says back each Launch's seal on the placement's live updates and every re-sync's, and a job-ending
Cancel's seal on its Cancelled updates (agent/launch_seals.py, agent/final_updates.py): a federator takes a
placement's adoption after a restore of its store, or a job's end on an agent's word, only with its own seal
(server/seals.py; security QA secqa61 H1, H2). Its Hello says so (features "seals")."""

from __future__ import annotations

import asyncio

from agent_support import FLEET, ScriptedFederator, kinds, launch, with_agent

from federator.agent.agent import Agent
from federator.agent.launch_seals import KeepsLaunchSeals
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.backends.sim.runtime import SimBackend
from federator.model import JobPhase

LIVE = {convert.phase_to_pb(JobPhase.PLACED), convert.phase_to_pb(JobPhase.RUNNING)}
CANCELLED = convert.phase_to_pb(JobPhase.CANCELLED)


def _launch(pid: str, seal: str) -> agent_pb2.FederatorMessage:
    msg = launch(pid)
    msg.launch.seal = seal
    return msg


def _live_seals(msgs: list[agent_pb2.AgentMessage], *, resync: bool) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m in msgs:
        if m.WhichOneof("body") == "job_update" and m.job_update.phase in LIVE and m.job_update.resync == resync:
            out.setdefault(m.job_update.placement_id, set()).add(m.job_update.launch_seal)
    return out


def _ended(msgs: list[agent_pb2.AgentMessage]) -> dict[str, tuple[bool, str]]:
    return {m.job_update.placement_id: (m.job_update.job_ended, m.job_update.cancel_seal) for m in msgs
            if m.WhichOneof("body") == "job_update" and m.job_update.phase == CANCELLED}


def test_the_hello_lists_seals_and_a_launch_seal_is_said_back_live_and_at_every_re_sync() -> None:
    fed = ScriptedFederator([[_launch("a.g1.c-1", "s1.k.A"), _launch("b.g1.c-1", "")], []])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: {"a.g1.c-1", "b.g1.c-1"} <= _live_seals(fed.sessions[0], resync=False).keys())
        assert "seals" in fed.sessions[0][0].hello.features
        assert _live_seals(fed.sessions[0], resync=False) == {"a.g1.c-1": {"s1.k.A"}, "b.g1.c-1": {""}}
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        assert _live_seals(fed.sessions[1], resync=True) == {"a.g1.c-1": {"s1.k.A"}, "b.g1.c-1": {""}}

    asyncio.run(with_agent(fed, body))


def test_a_job_ending_cancels_seal_is_said_back_with_job_ended_live_and_at_the_re_sync() -> None:
    ending = agent_pb2.FederatorMessage(cancel=agent_pb2.Cancel(placement_id="a.g1.c-1", reason="job cancelled",
                                                                job_ended=True, seal="s1.k.E"))
    moving = agent_pb2.FederatorMessage(cancel=agent_pb2.Cancel(placement_id="b.g1.c-1", reason="superseded"))
    fed = ScriptedFederator([[launch("a.g1.c-1"), launch("b.g1.c-1"), ending, moving], []], lost_after=1.0)

    async def body(agent: Agent) -> None:
        await fed.until(lambda: len(_ended(fed.sessions[0])) == 2)
        assert _ended(fed.sessions[0]) == {"a.g1.c-1": (True, "s1.k.E"), "b.g1.c-1": (False, "")}
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        assert _ended(fed.sessions[1]) == {"a.g1.c-1": (True, "s1.k.E"), "b.g1.c-1": (False, "")}

    asyncio.run(with_agent(fed, body))


class KeepingBackend(SimBackend):
    """A simulated member that keeps each placement's seal, as the Kubernetes one does on the workload object."""

    def __init__(self) -> None:
        super().__init__(FLEET["c-1"])
        self.kept: dict[str, str] = {}

    def keep_launch_seal(self, placement_id: str, seal: str) -> None:
        self.kept[placement_id] = seal

    def launch_seal_of(self, placement_id: str) -> str:
        return self.kept.get(placement_id, "")


def test_a_restarted_agent_says_the_seal_its_backend_kept_on_the_member() -> None:
    backend = KeepingBackend()
    assert isinstance(backend, KeepsLaunchSeals)
    first = ScriptedFederator([[_launch("a.g1.c-1", "s1.k.A")]])

    async def launched(agent: Agent) -> None:
        await first.until(lambda: "a.g1.c-1" in _live_seals(first.sessions[0], resync=False))

    asyncio.run(with_agent(first, launched, backend=backend))
    assert backend.kept == {"a.g1.c-1": "s1.k.A"}
    again = ScriptedFederator([[]])

    async def restarted(agent: Agent) -> None:
        await again.until(lambda: "capacity" in kinds(again.sessions[0]))
        assert _live_seals(again.sessions[0], resync=True) == {"a.g1.c-1": {"s1.k.A"}}

    asyncio.run(with_agent(again, restarted, backend=backend))


def test_a_re_sent_launchs_seal_is_said_back_from_then_on() -> None:
    """agent.proto, Launch.seal: a Launch re-sent for a placement the agent holds carries the seal of the federator's
    key now (rotated since); the agent says that one back from then on, at every later re-sync too (the simulated
    backend keeps it in memory; the Kubernetes one on the workload: test_kube_backend.py)."""
    fed = ScriptedFederator([[_launch("a.g1.c-1", "s1.k.A")], [_launch("a.g1.c-1", "s1.k.B")], []])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: "a.g1.c-1" in _live_seals(fed.sessions[0], resync=False))
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks; the reconnect's Launch is re-sent
        await fed.until(lambda: len(fed.sessions) == 2 and "s1.k.B" in _live_seals(fed.sessions[1], resync=False)
                        .get("a.g1.c-1", set()))
        agent._outbox.put_nowait(None)  # noqa: SLF001 - and breaks again
        await fed.until(lambda: len(fed.sessions) == 3 and "capacity" in kinds(fed.sessions[2]))
        assert _live_seals(fed.sessions[2], resync=True) == {"a.g1.c-1": {"s1.k.B"}}

    asyncio.run(with_agent(fed, body))
