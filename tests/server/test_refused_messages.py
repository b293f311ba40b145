"""Refused agent messages other than capacity reports, over a real agent stream (outside fuzz QA F2: 100,000 empty
AgentMessages in 10 s were 100,000 WARNING lines, 18 MB of log, from one cluster certificate).

Each is counted in federator_agent_messages_refused_total{cluster,reason}; the first LOGGED_PER_WINDOW of a window
are logged at WARNING, the rest at DEBUG and summed up in one WARNING when the window ends or the stream does."""

from __future__ import annotations

import asyncio
import logging

import pytest
from agent_stream import AgentStream
from test_services_edge import channel, hello, served

from federator.api.v1 import agent_pb2
from federator.server import refused_messages
from federator.server.refused_messages import LOGGED_PER_WINDOW

FLOOD = 500


def counted(fed, cluster: str, reason: str) -> float:  # type: ignore[no-untyped-def]
    return fed.metrics.registry.get_sample_value("federator_agent_messages_refused_total",
                                                 {"cluster": cluster, "reason": reason}) or 0.0


def warnings(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and words in r.getMessage()]


async def until(check, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def test_a_flood_of_refused_messages_is_counted_and_logged_within_a_budget(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                with caplog.at_level(logging.DEBUG, logger="federator.server"):
                    agent = AgentStream.on(ch, hello())
                    for _ in range(FLOOD):
                        await agent.send(agent_pb2.AgentMessage())  # no body: empty_message
                    await until(lambda: counted(s.fed, "east-1", "empty_message") == FLOOD, "all counted")
                    said = warnings(caplog, "east-1: refused a message (empty_message)")
                    assert len(said) == LOGGED_PER_WINDOW, len(said)
                    assert "the last logged for 60s" in said[-1]
                    assert not warnings(caplog, "more messages refused")  # the window is not over
                    agent.close()
                    await until(lambda: bool(warnings(caplog, "more messages refused")), "the stream's end sums up")
                    [summed] = warnings(caplog, "more messages refused")
                    assert summed.startswith(f"cluster east-1: {FLOOD - LOGGED_PER_WINDOW} more messages refused "
                                             "in the last 60s, not logged: empty_message "
                                             f"{FLOOD - LOGGED_PER_WINDOW}"), summed

    asyncio.run(main())


def test_a_window_that_ends_sums_up_and_the_next_refusal_is_logged_again(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refused_messages, "WINDOW_SECONDS", 1.0)

    async def main() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                with caplog.at_level(logging.WARNING, logger="federator.server"):
                    agent = AgentStream.on(ch, hello())
                    for _ in range(LOGGED_PER_WINDOW + 5):
                        await agent.send(agent_pb2.AgentMessage())
                    await until(lambda: bool(warnings(caplog, "more messages refused")), "the window sums up")
                    [summed] = warnings(caplog, "more messages refused")
                    assert "cluster east-1: 5 more messages refused" in summed, summed
                    await agent.send(agent_pb2.AgentMessage())  # a new window: logged at WARNING
                    await until(lambda: len(warnings(caplog, "refused a message")) == LOGGED_PER_WINDOW + 1,
                                "the next window's first is logged")
                    agent.close()

    asyncio.run(main())
