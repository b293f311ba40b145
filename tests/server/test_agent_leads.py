"""A replica that does not lead (stepping down, or deposed by its own clock) welcomes no agent and orders none.

Outside QA haqa63 F0: a Kubernetes-mode leader resumed from a pause, already stepping down, welcomed both agents
and sent them re-sync orders for 0.7 s while the new leader served: two replicas ordering the members at once. Now
`AgentService.leads` (app.py: not stopping, and the Lease held by the replica's own clock, backends/kube/fencing.py)
is asked at the Hello and before each order: a Hello is refused, and an open stream ended, with UNAVAILABLE and the
SIGTERM path's words ("reconnect (to its standby ...)"), over real gRPC.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from agent_stream import A_WHILE, AgentStream
from server_support import Clock, MemoryStore, make

from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.orders import ErrorNotice
from federator.server.services import AgentService


@asynccontextmanager
async def served(fed: Federator, service: AgentService) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            yield ch
    finally:
        await server.stop(0)
        fed.cycles.close()


def hello(cluster: str = "east-1") -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster=cluster, region="east"))


async def ended(stream: AgentStream) -> grpc.aio.AioRpcError:
    """How the federator ended the stream, past whatever it sent before."""
    try:
        while (m := await asyncio.wait_for(stream.call.read(), A_WHILE)) is not grpc.aio.EOF:
            assert m.WhichOneof("body") != "welcome", "a replica that does not lead welcomed the agent"
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError("the stream ended OK, not with a status")


def test_a_replica_that_does_not_lead_refuses_the_hello_with_unavailable() -> None:
    async def go() -> None:
        fed = make(MemoryStore(), Clock())
        service = AgentService(fed, Authenticator(insecure=True))
        service.leads = lambda: False  # stepping down
        async with served(fed, service) as ch:
            stream = AgentStream.on(ch, hello())
            error = await ended(stream)
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert "the federator is stopping; reconnect (to its standby" in (error.details() or "")
            assert "east-1" not in fed.clusters or not fed.clusters["east-1"].connected  # never welcomed

    asyncio.run(go())


def test_an_open_stream_ends_unavailable_and_gets_no_order_once_the_replica_stops_leading() -> None:
    async def go() -> None:
        fed = make(MemoryStore(), Clock())
        service = AgentService(fed, Authenticator(insecure=True))
        leading = [True]
        service.leads = lambda: leading[0]
        async with served(fed, service) as ch:
            stream = AgentStream.on(ch, hello())
            assert (await stream.read()).WhichOneof("body") == "welcome"
            leading[0] = False  # deposed by its own clock: the next order is not sent
            fed.send("east-1", ErrorNotice(reason="test", message="an order of a deposed leader"))
            try:
                while (m := await asyncio.wait_for(stream.call.read(), A_WHILE)) is not grpc.aio.EOF:
                    assert m.WhichOneof("body") != "error", "a replica that does not lead sent an order"
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE
                assert "the federator is stopping" in (exc.details() or "")
            else:
                raise AssertionError("the stream ended OK, not with UNAVAILABLE")

    asyncio.run(go())
