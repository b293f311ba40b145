"""The agent says when each placement ended (JobUpdate.ended_at), on the federator's clock as it estimates it, on
the live update and again in the next stream's re-sync: a placement that ended while the federator was away is
then billed to its end, not to the re-sync (outside SRE QA F1; agent/ended.py)."""

from __future__ import annotations

import asyncio

from agent_support import FLEET, ScriptedFederator, kinds, launch, with_agent
from test_agent import GANG_TIMEOUT, ForgettingBackend, updates

from federator.agent.agent import Agent
from federator.agent.fencing import Contact, boottime
from federator.agent.final_updates import FinalPhases
from federator.api import convert
from federator.model import JobPhase

OFFSET = 5_000.0
"""The scripted federator's clock runs OFFSET seconds past this host's boot clock: nothing like the agent's wall
clock, so a value on the federator's clock is told from one on the agent's."""


def test_the_re_sync_repeats_each_final_phase_with_when_it_was_reached_on_the_federators_clock() -> None:
    fed = ScriptedFederator([[launch("j.g1.c-1"), launch("k.g1.c-1")], []], clock=lambda: OFFSET + boottime())
    backend = ForgettingBackend(FLEET["c-1"])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: kinds(fed.sessions[0]).count("ack") == 2)
        backend.refuse("j.g1.c-1", GANG_TIMEOUT)  # ended and forgotten by the member: the re-sync's second part
        await backend.cancel("k.g1.c-1")  # ended and still held (Cancelled): the re-sync's first part
        await fed.until(lambda: len(updates(fed.sessions[0], "k.g1.c-1")) >= 1)
        ends = {pid: OFFSET + agent._ended[pid].at for pid in ("j.g1.c-1", "k.g1.c-1")}  # noqa: SLF001
        (live,) = [u for u in updates(fed.sessions[0], "k.g1.c-1") if u.phase == convert.phase_to_pb(
            JobPhase.CANCELLED)]
        assert ends["k.g1.c-1"] - 0.5 < live.ended_at <= ends["k.g1.c-1"]  # the live update says it too
        agent._outbox.put_nowait(None)  # noqa: SLF001 - a new stream, and its re-sync
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        for pid, phase in (("j.g1.c-1", JobPhase.CANCELLED), ("k.g1.c-1", JobPhase.CANCELLED)):
            (again,) = updates(fed.sessions[1], pid)
            assert again.resync and again.phase == convert.phase_to_pb(phase)
            # The estimate errs early by a message's transit at most, never late.
            assert ends[pid] - 0.5 < again.ended_at <= ends[pid], (pid, again.ended_at - ends[pid])

    asyncio.run(with_agent(fed, body, backend=backend))


def test_no_federator_time_in_the_welcome_means_no_end_time_is_said() -> None:
    """Without an estimate of the federator's clock the agent says nothing (0): the federator uses the time it
    learns of the end, as with a 0.7.0 agent."""
    fed = ScriptedFederator([[launch("k.g1.c-1")]])
    backend = ForgettingBackend(FLEET["c-1"])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: "ack" in kinds(fed.sessions[0]))
        await backend.cancel("k.g1.c-1")
        await fed.until(lambda: len(updates(fed.sessions[0], "k.g1.c-1")) >= 1)
        assert [u.ended_at for u in updates(fed.sessions[0], "k.g1.c-1")] == [0.0]

    asyncio.run(with_agent(fed, body, backend=backend))


class _Clocks:
    """A contact clock and a wall clock WALL seconds ahead of it, both set by the test."""

    WALL = 1_000_000.0

    def __init__(self) -> None:
        self.now = 100.0

    def contact(self) -> Contact:
        return Contact(clock=lambda: self.now, wall=lambda: self.WALL + self.now)

    def wall(self, contact_at: float) -> float:
        return self.WALL + contact_at


def test_an_end_is_dated_by_the_workload_converted_and_bounded_by_what_the_agent_saw() -> None:
    """Outside billing QA F9: the agent dated an end when it noticed it, so a job that ended while the agent was paused
    was billed to its resume. The backend's word (the member's wall clock) is converted at today's offset, never after
    the agent noticed (a member clock ahead), never before it saw the placement run (a member clock behind)."""
    clocks = _Clocks()
    finals = FinalPhases(clocks.contact())
    for pid in ("paused", "ahead", "behind", "unknown", "nan"):
        finals.seen(pid, JobPhase.PLACED)
    clocks.now = 110.0
    for pid in ("paused", "ahead", "behind", "unknown", "nan"):
        finals.seen(pid, JobPhase.RUNNING)  # first seen Running at 110: the earliest an end may be
    clocks.now = 130.0  # the agent resumes at 130; the workloads ended at 120
    finals.reached("paused", JobPhase.SUCCEEDED, "", ended_at=clocks.wall(120.0))
    finals.reached("ahead", JobPhase.SUCCEEDED, "", ended_at=clocks.wall(140.0))
    finals.reached("behind", JobPhase.SUCCEEDED, "", ended_at=clocks.wall(60.0))
    finals.reached("unknown", JobPhase.CANCELLED, "")
    finals.reached("nan", JobPhase.FAILED, "", ended_at=float("nan"))
    assert {pid: e.at for pid, e in finals.ended.items()} == {
        "paused": 120.0, "ahead": 130.0, "behind": 110.0, "unknown": 130.0, "nan": 130.0}
    finals.seen("fresh", JobPhase.PLACED)  # never seen Running: bounded by when the agent first heard of it
    clocks.now = 150.0
    finals.reached("fresh", JobPhase.SUCCEEDED, "", ended_at=clocks.wall(0.0))
    finals.reached("never-seen", JobPhase.SUCCEEDED, "", ended_at=clocks.wall(0.0))  # this agent's start
    assert (finals.ended["fresh"].at, finals.ended["never-seen"].at) == (130.0, 100.0)
    assert finals.since == {}  # an ended placement is no longer followed
