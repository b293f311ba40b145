"""Every path that says a placement's final phase says the same JobUpdate fields for the same end.

Four paths say one (agent/final_updates.py): the live update as it ends, the re-sync while the cluster still holds
it, the re-sync after the cluster forgot it, and the answer to a Launch of it after that. Each used to build its
JobUpdate itself, and each field a final phase gained (`lost`, `ended_at`) had to be added to every one of them.
"""

from __future__ import annotations

import asyncio

from agent_support import FLEET, ScriptedFederator, kinds, launch, with_agent

from federator.agent.agent import Agent
from federator.agent.fencing import boottime
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.backends.sim.runtime import SimBackend
from federator.lost_placements import lost_message
from federator.model import JobPhase

PID = "j.g1.c-1"
OFFSET = 5_000.0  # the scripted federator's clock, OFFSET seconds past this host's boot clock (a Welcome's time)


class LosesThenForgets(SimBackend):
    """A member that loses a placement (Failed, its message a LostMessage: both `lost` and `ended_at` are said),
    holds it a while in that phase, and then forgets it (its objects deleted)."""

    def lose(self, placement_id: str) -> None:
        run = self._runs[placement_id]
        if run.task is not None:
            run.task.cancel()
        run.phase = JobPhase.FAILED
        self._on_update(placement_id, JobPhase.FAILED, lost_message(self.cluster.name, "its namespace is gone"))

    def forget(self, placement_id: str) -> None:
        self._runs.pop(placement_id)
        self.nodes.unbind(placement_id)


def _updates(msgs: list[agent_pb2.AgentMessage], *, resync: bool) -> list[agent_pb2.JobUpdate]:
    return [m.job_update for m in msgs if m.WhichOneof("body") == "job_update"
            and m.job_update.placement_id == PID and m.job_update.resync == resync]


def _said(update: agent_pb2.JobUpdate) -> dict[str, object]:
    """The fields an update sets, but `resync` (which path said it) and the value of `ended_at` (an estimate of
    the federator's clock, taken again on each stream: compared apart)."""
    fields = {f.name: value for f, value in update.ListFields() if f.name != "resync"}
    if "ended_at" in fields:
        fields["ended_at"] = "set"
    return fields


def test_the_live_update_the_re_syncs_and_a_launch_again_say_the_same_end_in_the_same_fields() -> None:
    # Session 0 launches the placement; 1 re-syncs it held in its final phase; 2 re-syncs it forgotten, and then
    # the federator launches it again (a launch re-sent after a reconnect): "already ended here", and its end.
    fed = ScriptedFederator([[launch(PID)], [], [launch(PID)]], clock=lambda: OFFSET + boottime())
    backend = LosesThenForgets(FLEET["c-1"])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: "ack" in kinds(fed.sessions[0]))
        backend.lose(PID)
        await fed.until(lambda: _updates(fed.sessions[0], resync=False))
        agent._outbox.put_nowait(None)  # noqa: SLF001 - a new stream: its re-sync, the placement still held
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        backend.forget(PID)
        agent._outbox.put_nowait(None)  # noqa: SLF001 - and another: the placement forgotten by the member
        await fed.until(lambda: len(fed.sessions) == 3 and "ack" in kinds(fed.sessions[2])
                        and _updates(fed.sessions[2], resync=False) and _updates(fed.sessions[2], resync=True))

    asyncio.run(with_agent(fed, body, backend=backend))
    (live,) = [u for u in _updates(fed.sessions[0], resync=False)
               if convert.phase_from_pb(u.phase) is JobPhase.FAILED]
    (held,) = _updates(fed.sessions[1], resync=True)
    (forgotten,) = _updates(fed.sessions[2], resync=True)
    (ack,) = [m.ack for m in fed.sessions[2] if m.WhichOneof("body") == "ack"]
    (again,) = _updates(fed.sessions[2], resync=False)
    assert ack.ok and ack.message.startswith("already ended here")
    assert live.lost and live.ended_at > 0  # the fields compared below are said at all
    paths = {"live": live, "re-sync held": held, "re-sync forgotten": forgotten, "launch again": again}
    for path, update in paths.items():
        assert _said(update) == _said(live), path
        assert abs(update.ended_at - live.ended_at) < 0.5, path  # the same end, each stream's estimate of it
