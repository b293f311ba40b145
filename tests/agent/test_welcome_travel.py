"""The agent's estimate of the federator's clock bounds the Welcome's travel by the Hello's round trip, over a real
stream (agent/fencing.py, `Contact.travel_bound`; agent.proto, Welcome.hello_received_at).

WAN QA (carried since stop 60): a Welcome delayed D in the network dated every order of its stream up to D younger
than it was, so a stale Launch could start. Here the scripted federator holds the Welcome `WAIT` seconds after
reading the Hello, and says either that it read the Hello just as it sent the Welcome (the wait was travel: the
Launch behind the Welcome is older than it is dated, and refused) or when it truly read it (the wait was its own
busy loop: the Launch is fresh, and started). Real gRPC over loopback; the federator's clock is a fixed number.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from agent_support import ScriptedFederator, launch, with_agent

from federator.agent.agent import Agent
from federator.api.v1 import agent_pb2
from federator.jobfile import parse_job

NOW = 100_000.0  # the federator's clock as it sends the Welcome
BOUND = 1.0  # the Launch's max age
WAIT = 1.5  # the federator's wait between reading the Hello and sending the Welcome (at least this: a sleep)
ONE = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                 "metadata": {"name": "j", "annotations": {"federator.io/sim-duration": "300s"}},
                 "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})


class HeldWelcome(ScriptedFederator):
    """Sends its Welcome WAIT after the Hello; `honest`: says it read the Hello then, else just as it answered."""

    def __init__(self, *, honest: bool) -> None:
        order = launch("p-1", spec=ONE)
        order.launch.issued_at, order.launch.max_age_seconds = NOW - 0.2, BOUND  # 0.2 s old as the Welcome leaves
        super().__init__([[order]], clock=lambda: NOW, order_max_age=BOUND)
        self.honest = honest

    async def Connect(self, request_iterator: AsyncIterator[agent_pb2.AgentMessage],  # noqa: N802
                      context: grpc.aio.ServicerContext) -> AsyncIterator[agent_pb2.FederatorMessage]:
        hello = await anext(aiter(request_iterator))
        read_at = time.monotonic()
        await asyncio.sleep(WAIT)
        held = time.monotonic() - read_at

        async def requests() -> AsyncIterator[agent_pb2.AgentMessage]:
            yield hello
            async for msg in request_iterator:
                yield msg

        async for msg in super().Connect(requests(), context):
            if msg.WhichOneof("body") == "welcome":
                msg.welcome.hello_received_at = NOW - held if self.honest else NOW
            yield msg


def acked(fed: ScriptedFederator) -> agent_pb2.Ack | None:
    return next((m.ack for s in fed.sessions for m in s if m.WhichOneof("body") == "ack"), None)


def run(fed: HeldWelcome) -> tuple[agent_pb2.Ack, set[str]]:
    async def main() -> tuple[agent_pb2.Ack, set[str]]:
        result: list[tuple[agent_pb2.Ack, set[str]]] = []

        async def body(agent: Agent) -> None:
            await fed.until(lambda: acked(fed) is not None)
            ack = acked(fed)
            assert ack is not None
            result.append((ack, set(agent.backend.placements())))

        await asyncio.wait_for(with_agent(fed, body), 30)
        return result[0]

    return asyncio.run(main())


def warned(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("the Welcome took up to ")]


def test_a_welcome_that_travelled_makes_the_launch_behind_it_stale(caplog: pytest.LogCaptureFixture) -> None:
    """At least 1.7 s old as it arrives, over its 1 s bound: refused. Before, dated from federator_time alone,
    it looked 0.2 s old and was started. The agent says why its orders look old."""
    with caplog.at_level(logging.INFO, logger="federator.agent"):
        ack, running = run(HeldWelcome(honest=False))
    assert not ack.ok and "stale order" in ack.message, ack
    assert "p-1" not in running
    assert warned(caplog), [r.getMessage() for r in caplog.records]


def test_a_federator_slow_to_answer_the_hello_does_not_make_the_launch_behind_its_welcome_stale(
        caplog: pytest.LogCaptureFixture) -> None:
    """The same wait, said to be the federator's own: not travel, so the Launch is fresh and started."""
    with caplog.at_level(logging.INFO, logger="federator.agent"):
        ack, running = run(HeldWelcome(honest=True))
    assert ack.ok, ack
    assert "p-1" in running
    assert not warned(caplog)
