"""A scripted agent stream over real gRPC, for tests that need agents saying exactly what a case needs.

One class, so each test that scripts an agent says only how it answers a Launch (`answer`): the Hello, the
capacity reports every half second with their sequence, and the stream's plumbing are the same for all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from test_services_edge import channel

from federator.api.v1 import agent_pb2
from federator.security.tls import TlsFiles


class ScriptedStream:
    """One agent stream: `hello`, then `capacity` every half second, and `answer` called for each Launch."""

    def __init__(self, name: str, hello: agent_pb2.Hello, capacity: agent_pb2.CapacityReport) -> None:
        self.name, self.hello, self.capacity = name, hello, capacity
        self.launched: list[str] = []
        self.cancelled: list[agent_pb2.Cancel] = []  # every Cancel the federator sent, in order
        self.resized: list[agent_pb2.Resize] = []  # every Resize (to a Hello listing "resize"), in order
        self.errors: list[agent_pb2.Error] = []  # every Error the federator sent, in order
        self._out: asyncio.Queue[agent_pb2.AgentMessage | None] = asyncio.Queue()

    def answer(self, placement_id: str) -> None:
        """What the agent says to a Launch of `placement_id` (with `send`)."""

    def send(self, **body: object) -> None:
        self._out.put_nowait(agent_pb2.AgentMessage(**body))  # type: ignore[arg-type]

    async def _requests(self) -> AsyncIterator[agent_pb2.AgentMessage]:
        while (msg := await self._out.get()) is not None:
            yield msg

    async def run(self, target: str, tls: TlsFiles | None = None) -> None:
        async with channel(target, tls) as ch:
            call = ch.stream_stream("/federator.v1.AgentService/Connect",
                                    request_serializer=agent_pb2.AgentMessage.SerializeToString,
                                    response_deserializer=agent_pb2.FederatorMessage.FromString)(self._requests())
            self.send(hello=self.hello)
            reports = asyncio.get_running_loop().create_task(self._report())
            try:
                async for msg in call:
                    if msg.WhichOneof("body") == "launch":
                        pid = msg.launch.placement.placement_id
                        self.launched.append(pid)
                        self.answer(pid)
                    elif msg.WhichOneof("body") == "cancel":
                        self.cancelled.append(msg.cancel)
                    elif msg.WhichOneof("body") == "resize":
                        self.resized.append(msg.resize)
                    elif msg.WhichOneof("body") == "error":
                        self.errors.append(msg.error)
            finally:
                reports.cancel()
                self._out.put_nowait(None)

    async def _report(self) -> None:
        sequence = 0
        while True:
            sequence += 1
            self.capacity.sequence = sequence
            self.send(capacity=self.capacity)
            await asyncio.sleep(0.5)
