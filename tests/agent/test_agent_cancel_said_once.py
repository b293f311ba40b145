"""A placement's cancel is logged once, however many Cancels for it arrive (outside WAN QA W7).

After a half-open link healed, the federator's kept cancel of a superseded placement and the fencing of the report
that closed the re-sync each sent a Cancel, read within 1 ms of each other: agent-west.log said `cancel placement
ho1-037cae.g1.west-1: superseded ...` twice. Carrying out a Cancel twice is harmless (idempotent, agent.proto step
6); saying it twice read as two cancels. Real gRPC over loopback, with the scripted federator.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from agent_support import ScriptedFederator, launch, with_agent

from federator.agent.agent import Agent
from federator.api.v1 import agent_pb2
from federator.model import JobPhase

PID = "j.g1.c-1"


def cancel(reason: str) -> agent_pb2.FederatorMessage:
    return agent_pb2.FederatorMessage(cancel=agent_pb2.Cancel(placement_id=PID, reason=reason))


def test_a_placement_cancelled_twice_is_logged_once_at_info(caplog: pytest.LogCaptureFixture) -> None:
    fed = ScriptedFederator([[launch(PID), cancel("superseded: c-1 was Lost"),
                              cancel("superseded: c-1 was Lost (the report's fencing)")]])

    def said() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith(f"cancel placement {PID}")]

    async def body(agent: Agent) -> None:
        async def both() -> None:  # each cancel carried out says something, at one level or another
            while len(said()) < 2:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(both(), 20.0)  # a guard against a hang, not a timed assertion
        assert agent.backend.placements()[PID] is JobPhase.CANCELLED

    caplog.set_level(logging.DEBUG, logger="federator.agent")
    asyncio.run(with_agent(fed, body))
    first, second = said()[:2]
    assert (first.levelno, second.levelno) == (logging.INFO, logging.DEBUG), (first.getMessage(), second.levelname)
    assert "again" in second.getMessage()
