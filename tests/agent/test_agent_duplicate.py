"""An agent the federator refuses as a second agent for its cluster (ALREADY_EXISTS) says so at ERROR, retries
with its usual backoff, neither exits nor spins, and does not fence the member's placements on that "silence"
(agent/duplicate.py; agent.proto, Hello.instance). Its Hello carries one instance id across its reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from agent_support import FLEET, SPEC

from federator.agent.agent import Agent, AgentConfig
from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.backends.sim.runtime import SimBackend
from federator.model import JobId, JobPhase, Placement, PlacementId

ATTEMPTS = 12
HELD = "j.g1.c-1"
REFUSAL = ("cluster c-1: another agent instance (0b6e..., at ipv4:10.0.0.7:40112, heard 0.4s ago) holds it; a "
           "second agent with the same cluster name is refused until the first has been silent for a lease (10s)")


class Holding(agent_pb2_grpc.AgentServiceServicer):
    """Another agent holds the cluster: every Hello is refused with ALREADY_EXISTS, and recorded."""

    def __init__(self) -> None:
        self.hellos: list[agent_pb2.Hello] = []

    async def Connect(self, request_iterator: AsyncIterator[agent_pb2.AgentMessage],  # noqa: N802
                      context: grpc.aio.ServicerContext) -> AsyncIterator[agent_pb2.FederatorMessage]:
        first = await anext(request_iterator)
        self.hellos.append(first.hello)
        await context.abort(grpc.StatusCode.ALREADY_EXISTS, REFUSAL)
        yield agent_pb2.FederatorMessage()  # unreachable: makes this a stream handler


def test_a_refused_second_agent_says_so_at_error_retries_with_its_backoff_and_fences_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    fed = Holding()
    delays: list[float] = []

    async def go() -> None:
        server = grpc.aio.server()
        agent_pb2_grpc.add_AgentServiceServicer_to_server(fed, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        backend = SimBackend(FLEET["c-1"])
        # --fence-after shorter than the run: a refusal is the federator answering, not silence
        agent = Agent(AgentConfig(cluster="c-1", region="r", target=f"127.0.0.1:{port}", fence_after=0.4), backend)
        done = asyncio.Event()

        async def sleep(seconds: float) -> None:
            delays.append(seconds)
            if len(delays) >= ATTEMPTS:
                done.set()
            await asyncio.sleep(0.15)  # long enough, over the run, for --fence-after's tick to look many times

        agent.reconnect_sleep = sleep
        task = asyncio.create_task(agent.run())
        try:
            while not fed.hellos:
                await asyncio.sleep(0.01)
            placement = Placement(PlacementId(HELD), JobId("j"), "c-1", "r", 1, "H100", 1)
            assert await backend.launch(placement, SPEC) is None  # what runs on the member (the other agent's)
            await asyncio.wait_for(done.wait(), 30)
            assert not task.done()  # neither exited nor failed
            assert backend.placements()[HELD] is not JobPhase.CANCELLED and agent._fences == 0  # noqa: SLF001
            instances = {h.instance for h in fed.hellos}
            assert instances == {agent.instance} and str(uuid.UUID(agent.instance)) == agent.instance
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await backend.stop()
            await server.stop(None)

    with caplog.at_level(logging.DEBUG, logger="federator.agent"):
        asyncio.run(go())
    assert delays[0] < 0.2 and all(d <= 1.0 for d in delays)  # the usual backoff (its fast first minute)
    assert all(b > a for a, b in zip(delays[:4], delays[1:5], strict=True))  # growing: no spin
    errors = [r.getMessage() for r in caplog.records if r.name == "federator.agent" and r.levelno == logging.ERROR]
    (error,) = errors  # once, not at every retry
    assert "another agent with cluster name c-1 is connected (ALREADY_EXISTS: " + REFUSAL + ")" in error
    assert "stop one of them" in error
    still = [r for r in caplog.records if r.getMessage().startswith("still refused as a second agent")]
    assert len(still) == ATTEMPTS - 1 and all(r.levelno == logging.DEBUG for r in still)
    assert not [r for r in caplog.records if r.name == "federator.agent" and r.levelno == logging.WARNING
                and "fenced" in r.getMessage()]
