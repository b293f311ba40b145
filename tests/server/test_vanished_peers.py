"""A peer that cancels its stream while the federator writes to it leaves one INFO line, not grpc's ERROR with a
traceback (outside fuzz QA F3: an agent or a Watch client that never read, then went away, did so at will).

Over a real loopback socket, through the interceptor every federator gRPC server has (`decode_guard`), with a stand-in
streaming handler that writes faster than the client reads: the write the client's cancel cuts short is the one
grpc logs (AgentService.Connect and JobService.Watch hit it the same way, in grpc's own writer)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from federator.server.edge import decode_guard
from federator.server.federator import Federator
from federator.server.vanished_peers import GRPC_LOGGER
from federator.store import SqliteJobStore


async def flood(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for _ in range(100_000):
        yield b"x" * 200_000


def test_a_peer_gone_mid_write_is_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        fed = Federator(store=SqliteJobStore(Path(":memory:")))
        server = grpc.aio.server(interceptors=[decode_guard(fed)])
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.Flood", {
            "Watch": grpc.unary_stream_rpc_method_handler(flood, lambda b: b, lambda b: b)})])
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            for _ in range(3):
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                    call = ch.unary_stream("/t.Flood/Watch", request_serializer=lambda b: b,
                                           response_deserializer=lambda b: b)(b"")
                    await call.read()  # then never again: the server's writes wait on flow control
                    await asyncio.sleep(0.2)
                    call.cancel()
            for _ in range(200):  # until grpc has logged what the cancels cut short
                if any(r.name == GRPC_LOGGER for r in caplog.records):
                    break
                await asyncio.sleep(0.02)
        finally:
            await server.stop(0)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(go())
    said = [r for r in caplog.records if r.name == GRPC_LOGGER]
    assert said, "grpc logged nothing: the cancel did not cut a write short"
    assert not [r for r in said if r.levelno >= logging.WARNING or r.exc_info], [r.getMessage() for r in said]
    assert any("a peer went away while the federator wrote to its call /t.Flood/Watch" in r.getMessage()
               for r in said), [r.getMessage() for r in said]
