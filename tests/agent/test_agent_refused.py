"""An agent the federator refuses (PERMISSION_DENIED: revoked, untrusted) backs off to minutes and says why once
per reason (QA: a revoked agent retried every second or few, for ever, with a WARNING each time)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from agent_support import FLEET

from federator.agent.agent import REFUSED_BACKOFF, Agent, AgentConfig
from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.backends.sim.runtime import SimBackend

ATTEMPTS = 12


class Refusing(agent_pb2_grpc.AgentServiceServicer):
    """Refuses every stream, with `reasons[i]` for the i-th (the last one after that)."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        self.tries = 0

    async def Connect(self, request_iterator: AsyncIterator[agent_pb2.AgentMessage],  # noqa: N802
                      context: grpc.aio.ServicerContext) -> AsyncIterator[agent_pb2.FederatorMessage]:
        await anext(request_iterator)
        reason = self.reasons[min(self.tries, len(self.reasons) - 1)]
        self.tries += 1
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)
        yield agent_pb2.FederatorMessage()  # unreachable: makes this a stream handler


def _run(fed: Refusing) -> list[float]:
    """The agent's delays before each of ATTEMPTS reconnects (slept for a moment only: a fake clock)."""
    delays: list[float] = []

    async def go() -> None:
        server = grpc.aio.server()
        agent_pb2_grpc.add_AgentServiceServicer_to_server(fed, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        backend = SimBackend(FLEET["c-1"])
        agent = Agent(AgentConfig(cluster="c-1", region="r", target=f"127.0.0.1:{port}"), backend)
        done = asyncio.Event()

        async def sleep(seconds: float) -> None:
            delays.append(seconds)
            if len(delays) >= ATTEMPTS:
                done.set()
            await asyncio.sleep(0.001)

        agent.reconnect_sleep = sleep
        task = asyncio.create_task(agent.run())
        try:
            await asyncio.wait_for(done.wait(), 30)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await backend.stop()
            await server.stop(None)

    asyncio.run(go())
    return delays[:ATTEMPTS]


def _agent_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "federator.agent" and r.levelno == level]


def test_a_revoked_agent_backs_off_to_minutes_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="federator.agent"):
        delays = _run(Refusing(["cluster c-1: its certificate (serial 1f) is revoked"]))
    assert delays[0] >= 0.8 * REFUSED_BACKOFF["initial"]
    assert all(b > a for a, b in zip(delays[:5], delays[1:6], strict=True))  # exponential ...
    assert max(delays) <= REFUSED_BACKOFF["maximum"]
    assert min(delays[-3:]) >= 0.8 * REFUSED_BACKOFF["maximum"]  # ... to 5 minutes
    (warned,) = _agent_lines(caplog, logging.WARNING)
    assert "refuses this agent (PERMISSION_DENIED: cluster c-1: its certificate (serial 1f) is revoked)" in warned
    assert len([m for m in _agent_lines(caplog, logging.DEBUG) if m.startswith("still refused")]) == ATTEMPTS - 1


def test_a_new_reason_is_said_again(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="federator.agent"):
        _run(Refusing(["revoked", "revoked", "revoked", "provider 'acme' is no longer in the trust file"]))
    warned = _agent_lines(caplog, logging.WARNING)
    assert len(warned) == 2
    assert "(PERMISSION_DENIED: revoked)" in warned[0]
    assert "no longer in the trust file" in warned[1]
