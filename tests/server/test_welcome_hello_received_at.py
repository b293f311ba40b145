"""The federator's Welcome says when it took up the stream carrying the Hello (agent.proto,
Welcome.hello_received_at), so the agent can bound the Welcome's travel and not count the federator's own time
answering the Hello as travel (agent/fencing.py). Real gRPC over loopback, the real AgentService."""

from __future__ import annotations

import asyncio
import time

from agent_stream import stream_to
from server_support import MemoryStore

from federator.api.v1 import agent_pb2
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.services import AgentService


def test_the_welcome_says_when_the_stream_was_taken_up_on_the_clock_of_its_federator_time() -> None:
    async def scenario() -> agent_pb2.Welcome:
        fed = Federator(store=MemoryStore(), lease_seconds=10.0, cycle_interval=0.05)
        async with stream_to(AgentService(fed, Authenticator(insecure=True))) as stream:
            message = await stream.read()
        assert message.WhichOneof("body") == "welcome", message
        return message.welcome

    before = time.time()  # the federator's clock here: time.time
    welcome = asyncio.run(scenario())
    # Read no earlier than the stream was opened, and before the Welcome was sent: 0 (a federator before 0.21.0)
    # would leave the agent dating the Welcome as sent.
    assert before <= welcome.hello_received_at <= welcome.federator_time, welcome
