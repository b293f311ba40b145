"""The agent says a placement's Launch.job_digest back on its JobUpdates, the re-sync's too, and after a restart what
its backend kept on the member (agent/job_digests.py): how a job applied again after a restore of the federator's
store takes back its running placement (server/reapplied.py; outside QA, Kubernetes DR, K2)."""

from __future__ import annotations

import asyncio

from agent_support import FLEET, ScriptedFederator, kinds, launch, with_agent

from federator.agent.agent import Agent
from federator.agent.job_digests import KeepsJobDigests
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.backends.sim.runtime import SimBackend
from federator.model import JobPhase

DIGEST = "v1:" + "ab" * 32
LIVE = {convert.phase_to_pb(JobPhase.PLACED), convert.phase_to_pb(JobPhase.RUNNING)}


def _launch(pid: str, digest: str) -> agent_pb2.FederatorMessage:
    msg = launch(pid)
    msg.launch.job_digest = digest
    return msg


def _said(msgs: list[agent_pb2.AgentMessage], *, resync: bool) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m in msgs:
        if m.WhichOneof("body") == "job_update" and m.job_update.phase in LIVE and m.job_update.resync == resync:
            out.setdefault(m.job_update.placement_id, set()).add(m.job_update.job_digest)
    return out


class KeepingBackend(SimBackend):
    """A simulated member that keeps each placement's digest, as the Kubernetes one does on the workload object."""

    def __init__(self) -> None:
        super().__init__(FLEET["c-1"])
        self.kept: dict[str, str] = {}

    def keep_digest(self, placement_id: str, digest: str) -> None:
        self.kept[placement_id] = digest

    def digest_of(self, placement_id: str) -> str:
        return self.kept.get(placement_id, "")


def test_the_digest_is_said_back_live_and_at_every_re_sync() -> None:
    fed = ScriptedFederator([[_launch("a.g1.c-1", DIGEST), _launch("b.g1.c-1", "")], []])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: {"a.g1.c-1", "b.g1.c-1"} <= _said(fed.sessions[0], resync=False).keys())
        assert _said(fed.sessions[0], resync=False) == {"a.g1.c-1": {DIGEST}, "b.g1.c-1": {""}}
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        assert _said(fed.sessions[1], resync=True) == {"a.g1.c-1": {DIGEST}, "b.g1.c-1": {""}}

    asyncio.run(with_agent(fed, body))


def test_a_restarted_agent_says_the_digest_its_member_kept() -> None:
    backend = KeepingBackend()
    assert isinstance(backend, KeepsJobDigests)
    first = ScriptedFederator([[_launch("a.g1.c-1", DIGEST)]])

    async def launched(agent: Agent) -> None:
        await first.until(lambda: "a.g1.c-1" in _said(first.sessions[0], resync=False))

    asyncio.run(with_agent(first, launched, backend=backend))
    assert backend.kept == {"a.g1.c-1": DIGEST}
    again = ScriptedFederator([[]])  # a new agent process on the same member: its own memory is empty

    async def resynced(agent: Agent) -> None:
        await again.until(lambda: "capacity" in kinds(again.sessions[0]))

    asyncio.run(with_agent(again, resynced, backend=backend))
    assert _said(again.sessions[0], resync=True) == {"a.g1.c-1": {DIGEST}}
