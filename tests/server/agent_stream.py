"""One agent stream over real gRPC that a test feeds message by message, beside a running federator.

The off-loop tests (test_agent_updates_off_loop.py, test_cycle_off_loop.py) each had their own copy of the set-up:
the real AgentService on a loopback port, the federator's loop running, a stream whose requests come from a queue
the test puts into, the Hello and its Welcome, and the teardown. Here once; the test says only what its agent sends
(`send`) and reads what the federator answers (`read`, `order`, `next_error`). A test that serves the whole app
itself (test_services_edge.served: several streams and the other services on one channel) opens its streams with
`AgentStream.on` (test_report_lane.py, test_refused_reports.py, test_left_out_devices.py had a copy each); one that
looks at a stream's first turns without the loop, `stream_to` (test_agent_stream_cancel.py,
test_welcome_hello_received_at.py had a copy each).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.services import AgentService

A_WHILE = 60.0  # only a guard against a hang: no assertion depends on it


class AgentStream:
    """The test's end of one agent stream: what it sends, in order, and what the federator answers."""

    def __init__(self, call: grpc.aio.StreamStreamCall[agent_pb2.AgentMessage, agent_pb2.FederatorMessage],
                 outgoing: asyncio.Queue[agent_pb2.AgentMessage | None], port: int) -> None:
        self.call = call
        self.port = port  # the federator's loopback port, for the test's other clients (0: not known here)
        self._outgoing = outgoing

    @classmethod
    def on(cls, ch: grpc.aio.Channel, first: agent_pb2.AgentMessage, *, port: int = 0) -> AgentStream:
        """A stream on `ch` (to a server the test serves), `first` (its Hello) queued to be sent first. The
        federator's first answer (its Welcome, or an Error) is for the test to read."""
        outgoing: asyncio.Queue[agent_pb2.AgentMessage | None] = asyncio.Queue()

        async def requests() -> AsyncIterator[agent_pb2.AgentMessage]:
            while (m := await outgoing.get()) is not None:
                yield m

        outgoing.put_nowait(first)
        return cls(agent_pb2_grpc.AgentServiceStub(ch).Connect(requests()), outgoing, port)

    def close(self) -> None:
        """The agent's end of the stream: no more messages, the call cancelled."""
        self._outgoing.put_nowait(None)
        self.call.cancel()

    async def send(self, message: agent_pb2.AgentMessage) -> None:
        await self._outgoing.put(message)

    async def read(self) -> agent_pb2.FederatorMessage:
        """The federator's next message on the stream (a hang fails after A_WHILE, it is not a timed assertion)."""
        message = await asyncio.wait_for(self.call.read(), A_WHILE)
        assert message is not grpc.aio.EOF, "the federator ended the stream"
        return message

    async def next_error(self) -> agent_pb2.Error:
        """The federator's next Error on the stream, past any other message."""
        while (message := await self.read()).WhichOneof("body") != "error":
            pass
        return message.error

    async def order(self) -> agent_pb2.FederatorMessage:
        """The federator's next message that is not a heartbeat (sent every report interval, whatever happens)."""
        while (message := await self.read()).WhichOneof("body") == "heartbeat":
            pass
        return message


@asynccontextmanager
async def stream_to(service: AgentService, *, cluster: str = "east-1",
                    region: str = "east") -> AsyncIterator[AgentStream]:
    """`service` (the real AgentService, or a test's subclass watching it) on a loopback port (insecure), and a stream
    of `cluster`'s agent on it, its Hello sent, nothing read: for a test that looks at the stream's first turns (its
    Welcome, a cancel as the Hello comes). The federator's loop does not run. On the way out the stream ends, the
    server stops and the federator's cycle thread is closed."""
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            hello = agent_pb2.Hello(cluster=cluster, region=region)
            stream = AgentStream.on(ch, agent_pb2.AgentMessage(hello=hello), port=port)
            try:
                yield stream
            finally:
                stream.close()
    finally:
        await asyncio.wait_for(server.stop(0), A_WHILE)  # only a guard against a hang
        service.fed.cycles.close()


@asynccontextmanager
async def agent_stream(fed: Federator, *, cluster: str = "east-1", region: str = "east",
                       features: tuple[str, ...] = ()) -> AsyncIterator[AgentStream]:
    """`fed`'s AgentService on a loopback port (insecure), `fed.run()` on the loop, and a stream of `cluster`'s agent
    on it, its Hello sent (listing `features`) and its Welcome read. On the way out the stream ends, the loop's task
    is cancelled, the server stopped and the cycle's thread closed."""
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed, Authenticator(insecure=True)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    runner = asyncio.get_running_loop().create_task(fed.run())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            hello = agent_pb2.Hello(cluster=cluster, region=region, features=features)
            stream = AgentStream.on(ch, agent_pb2.AgentMessage(hello=hello), port=port)
            assert (await stream.read()).WhichOneof("body") == "welcome"
            try:
                yield stream
            finally:
                stream.close()
    finally:
        runner.cancel()
        await server.stop(0)
        fed.cycles.close()


__all__ = ["A_WHILE", "AgentStream", "agent_stream", "stream_to"]
