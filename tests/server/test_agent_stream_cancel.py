"""An agent stream's handler ends when it is cancelled, even in the turn an order comes, and leaves the order be.

gRPC cancels the handler's task when the agent goes away or the server stops. Before, the handler waited for its next
order with asyncio.wait_for, which on Python 3.11 drops a cancel that lands as the wait completes (CPython gh-86296,
woken.py): the cancelled handler took the order, sent it into a stream that was ending, and ran on waiting for the
next. Now the wait is asyncio.timeout's, which keeps the cancel: the order stays in the outbox (a new stream's re-sync
sends what its member lacks), and the handler's `finally` disconnects the cluster.

The Hello's wait was the same wait_for: a stream cancelled in the turn its Hello came ran on, registered its cluster
(`fed.connect`, Partitioned at once as the dead stream ended) and sent a Welcome to an agent that had gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from agent_stream import A_WHILE, stream_to
from server_support import MemoryStore

from federator.api.v1 import agent_pb2
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.orders import CancelOrder
from federator.server.services import AgentService


class _Watched(AgentService):
    """The real AgentService, keeping the task gRPC runs each Connect in (the task gRPC cancels)."""

    def __init__(self, fed: Federator) -> None:
        super().__init__(fed, Authenticator(insecure=True))
        self.tasks: list[asyncio.Task[Any]] = []

    async def Connect(self, request_iterator: Any, context: Any  # noqa: N802
                      ) -> AsyncIterator[agent_pb2.FederatorMessage]:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        async for message in super().Connect(request_iterator, context):
            yield message


class _HelloHeld(_Watched):
    """The real AgentService, its stream's Hello read off the wire and then held until the test lets it through (so
    that the test lets it through and cancels the handler in one turn)."""

    def __init__(self, fed: Federator) -> None:
        super().__init__(fed)
        self.held = asyncio.Event()
        self.gate: asyncio.Future[None] | None = None

    async def Connect(self, request_iterator: Any, context: Any  # noqa: N802
                      ) -> AsyncIterator[agent_pb2.FederatorMessage]:
        gate = self.gate = asyncio.get_running_loop().create_future()

        async def held() -> AsyncIterator[agent_pb2.AgentMessage]:
            first = await anext(request_iterator)
            self.held.set()
            await gate
            yield first
            async for message in request_iterator:
                yield message

        async for message in super().Connect(held(), context):
            yield message


def test_a_stream_cancelled_in_the_turn_its_hello_comes_ends_and_registers_nothing() -> None:
    async def scenario() -> None:
        fed = Federator(store=MemoryStore())  # type: ignore[arg-type]
        service = _HelloHeld(fed)
        async with stream_to(service):
            await asyncio.wait_for(service.held.wait(), A_WHILE)  # only a guard against a hang
            handler = service.tasks[0]
            assert service.gate is not None
            service.gate.set_result(None)  # the Hello comes ...
            handler.cancel()  # ... in the very turn gRPC cancels the handler (the agent gone, the server stopping)
            while not handler.done():
                if "east-1" in fed.clusters:
                    break  # the cancel was dropped: the handler took the Hello and registered the cluster
                await asyncio.sleep(0)
            assert handler.done(), "the cancelled handler ran on and registered the cluster of a gone agent"
            assert "east-1" not in fed.clusters  # nor connected, nor left Partitioned: never registered

    asyncio.run(scenario())


def test_a_stream_cancelled_in_the_turn_an_order_comes_ends_and_the_order_stays() -> None:
    async def scenario() -> None:
        fed = Federator(store=MemoryStore())  # type: ignore[arg-type]
        service = _Watched(fed)
        async with stream_to(service) as stream:
            assert (await stream.read()).WhichOneof("body") == "welcome"
            rec = fed.clusters["east-1"]
            handler = service.tasks[0]
            while not rec.outbox._ready._waiters:  # type: ignore[attr-defined]  # waiting for its next order
                await asyncio.sleep(0)
            order = CancelOrder(placement_id="p-1", reason="a cancel")
            rec.outbox.put(order)  # an order comes ...
            handler.cancel()  # ... in the very turn gRPC cancels the handler (the agent gone, the server stopping)
            while not handler.done():
                if rec.outbox.empty() and rec.outbox._ready._waiters:  # type: ignore[attr-defined]
                    break  # the cancel was dropped: the handler took the order and waits for the next one
                await asyncio.sleep(0)
            assert handler.done(), "the cancelled handler ran on, waiting for its next order"
            assert rec.outbox.get_nowait() == order, "the cancelled handler took the order"
            assert not rec.connected  # its finally ran: the cluster is disconnected, as for any ended stream

    asyncio.run(scenario())
