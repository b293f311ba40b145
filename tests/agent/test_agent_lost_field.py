"""The agent marks a placement its backend lost with JobUpdate.lost (agent.proto), and says "lost" in its Hello.

Its message still begins with the old words ("lost by the agent of CLUSTER: ", lost_placements.py): they say to
the people who read it what happened and whose agent it was; the field alone is the mark."""

from __future__ import annotations

import asyncio

from agent_support import FLEET, ScriptedFederator, launch, with_agent

from federator.agent.agent import Agent
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.backends.sim.runtime import SimBackend
from federator.lost_placements import LOST_PREFIX, lost_message
from federator.model import JobPhase, JobSpec, Placement

WHY = "the placement runs in namespace w-research, which it no longer watches"


class Loses(SimBackend):
    """Launches, then loses what it launched (as the Kubernetes backend loses a stranded placement: Failed, its
    message a LostMessage); a failure of its own it reports in plain words."""

    async def launch(self, placement: Placement, spec: JobSpec) -> str | None:
        refused = await super().launch(placement, spec)
        if refused is None:
            run = self._runs[placement.placement_id]
            if run.task is not None:
                run.task.cancel()  # it never runs: lost at once
            run.phase = JobPhase.FAILED
            lost = placement.job_id == "j"
            message = lost_message(self.cluster.name, WHY) if lost else f"{LOST_PREFIX}c-1: only words"
            self._on_update(placement.placement_id, JobPhase.FAILED, message)
        return refused


def _failed(msgs: list[agent_pb2.AgentMessage]) -> list[agent_pb2.JobUpdate]:
    return [m.job_update for m in msgs if m.WhichOneof("body") == "job_update"
            and convert.phase_from_pb(m.job_update.phase) is JobPhase.FAILED]


def test_a_lost_placement_is_reported_with_the_field_and_the_words_and_again_at_the_resync() -> None:
    fed = ScriptedFederator([[launch("j.g1.c-1")], []])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: _failed(fed.sessions[0]))
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks: the re-sync must carry the mark
        await fed.until(lambda: len(fed.sessions) == 2 and _failed(fed.sessions[1]))

    asyncio.run(with_agent(fed, body, backend=Loses(FLEET["c-1"])))
    assert "lost" in fed.sessions[0][0].hello.features
    (first,) = _failed(fed.sessions[0])
    assert first.lost and first.message == f"{LOST_PREFIX}c-1: {WHY}"  # the words, for people
    (again,) = _failed(fed.sessions[1])
    assert again.resync and again.lost and again.message == first.message


def test_a_failure_in_the_same_words_that_the_backend_did_not_mark_is_not_lost() -> None:
    """The words alone are no mark: a message that merely begins with them (a workload's own) is sent lost=false,
    and the federator, told by the Hello that this agent marks, reads it as an ordinary failure."""
    other = launch("k.g1.c-1")
    other.launch.placement.job_id = "k"
    fed = ScriptedFederator([[other]])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: _failed(fed.sessions[0]))

    asyncio.run(with_agent(fed, body, backend=Loses(FLEET["c-1"])))
    (update,) = _failed(fed.sessions[0])
    assert not update.lost and update.message.startswith(LOST_PREFIX)
