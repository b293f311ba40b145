"""A Launch's age is taken as it arrives, and a placement held here already is never stale (agent/agent.py).

Outside QA, chaos round: F1, after one TCP reset the federator re-sent the Launches of placements the agent was
already running; they had aged past order_max_age while the first launches were in flight, were refused as stale,
and the federator cancelled the running copies and started the jobs elsewhere (114 of 150 launched twice). F2, a
burst of launches aged in the agent's own queue behind a slow member and 72 of 200 were refused as stale, read as
the member refusing. A fence since an order arrived still keeps it from starting.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from agent_support import ScriptedFederator, launch, with_agent

from federator.agent.agent import Agent
from federator.api.v1 import agent_pb2


def aged(pid: str, *, issued_at: float) -> agent_pb2.Launch:
    msg = launch(pid).launch
    msg.issued_at, msg.max_age_seconds = issued_at, 5.0
    return msg


def acks(fed: ScriptedFederator) -> dict[str, agent_pb2.Ack]:
    return {m.ack.placement_id: m.ack for s in fed.sessions for m in s if m.WhichOneof("body") == "ack"}


def test_a_launch_aged_in_the_agents_queue_or_held_already_is_not_stale_and_a_fence_since_it_arrived_is() -> None:
    async def main() -> None:
        fed = ScriptedFederator([[]])

        async def body(agent: Agent) -> None:
            await fed.until(lambda: agent.connected.is_set())
            long_ago = 1000.0  # the ages are as each arrived (given here), over max_age 5 s or not
            # arrived fresh (0.5 s old), carried out a minute later behind a slow member: launched
            await agent._launch(aged("queued", issued_at=long_ago), age=0.5, fences=agent._fences)
            await fed.until(lambda: "queued" in acks(fed))
            assert acks(fed)["queued"].ok, acks(fed)["queued"].message
            # the same placement sent again after a reconnect, old by now: it is held here, so Ack ok
            await agent._launch(aged("queued", issued_at=long_ago), age=60.0, fences=agent._fences)
            await asyncio.sleep(0.2)
            assert all(m.ack.ok for s in fed.sessions for m in s if m.WhichOneof("body") == "ack")
            # a new placement this old as it arrived is stale, as before
            await agent._launch(aged("old", issued_at=long_ago), age=60.0, fences=agent._fences)
            await fed.until(lambda: "old" in acks(fed))
            assert not acks(fed)["old"].ok and acks(fed)["old"].message.startswith("stale order: issued 60.0s ago")
            # fresh as it arrived, but the agent fenced itself since: not started
            await agent._launch(aged("fenced", issued_at=long_ago), age=0.5, fences=agent._fences - 1)
            await fed.until(lambda: "fenced" in acks(fed))
            assert not acks(fed)["fenced"].ok
            assert acks(fed)["fenced"].message == "stale order: this agent fenced itself after it arrived"
            assert "fenced" not in agent.backend.placements() and "queued" in agent.backend.placements()

        await asyncio.wait_for(with_agent(fed, body), 20)

    asyncio.run(main())


def test_the_connect_line_says_both_fence_limits_apart(caplog: pytest.LogCaptureFixture) -> None:
    """Chaos QA F6: "fence limit 15s" at every connect read as if a cut-off agent stopped its work after 15 s; without
    --fence-after it never does (only after a pause)."""
    async def main() -> None:
        fed = ScriptedFederator([[]])

        async def body(agent: Agent) -> None:
            await fed.until(lambda: agent.connected.is_set())

        await asyncio.wait_for(with_agent(fed, body), 20)

    with caplog.at_level(logging.INFO, logger="federator.agent"):
        asyncio.run(main())
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("connected to ")]
    assert "fences after a pause past" in line and "while cut off: never (--fence-after not set" in line
