"""The federator's server accepts the agents' keepalive pings: no GOAWAY "too_many_pings" on a quiet stream.

Real gRPC on loopback: a server with the federator's ping policy and a client pinging as an agent does, over a
stream on which nothing is sent. The agents' 10 s would need a minute to show a strike, so both sides are built
for a 0.5 s interval by the same rules (`federator.keepalive`); with the server's default policy (5 minutes, 2
strikes) gRPC sends the GOAWAY within about 2 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from federator.keepalive import (
    AGENT_KEEPALIVE,
    AGENT_KEEPALIVE_MS,
    SERVER_PING_POLICY,
    agent_keepalive,
    server_ping_policy,
)

INTERVAL_MS = 500
HELD_SECONDS = 8.0


async def _quiet(request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    """A stream that sends nothing until the client ends it: no data, so every ping is judged by the policy."""
    async for _ in request_iterator:
        pass
    if False:  # an async generator that yields nothing
        yield b""


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


def _handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler("test.Quiet", {
        "Hold": grpc.stream_stream_rpc_method_handler(_quiet),
        "Echo": grpc.unary_unary_rpc_method_handler(_echo)})


async def _hold_a_quiet_stream() -> tuple[bool, bytes, grpc.ChannelConnectivity]:
    server = grpc.aio.server(options=server_ping_policy(INTERVAL_MS))
    server.add_generic_rpc_handlers((_handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=agent_keepalive(INTERVAL_MS, 5_000)) as ch:
            hold = ch.stream_stream("/test.Quiet/Hold")()
            await hold.wait_for_connection()
            await asyncio.sleep(HELD_SECONDS)
            alive = not hold.done()
            echoed = await ch.unary_unary("/test.Quiet/Echo")(b"still here", timeout=5)
            state = ch.get_state()
            hold.cancel()
            return alive, echoed, state
    finally:
        await server.stop(None)


def test_a_quiet_stream_pinged_as_the_agents_ping_is_never_sent_away(capfd: pytest.CaptureFixture[str]) -> None:
    alive, echoed, state = asyncio.run(_hold_a_quiet_stream())
    logged = capfd.readouterr().err  # gRPC core writes its ERROR lines to the process's stderr
    assert "too_many_pings" not in logged
    assert alive, "the stream was ended while it was held"
    assert echoed == b"still here"
    assert state is grpc.ChannelConnectivity.READY


def test_the_policy_the_federator_serves_with_is_the_one_for_the_agents_keepalive() -> None:
    assert dict(SERVER_PING_POLICY) == dict(server_ping_policy(AGENT_KEEPALIVE_MS))
    assert dict(AGENT_KEEPALIVE)["grpc.keepalive_time_ms"] == AGENT_KEEPALIVE_MS
    assert dict(SERVER_PING_POLICY)["grpc.http2.min_ping_interval_without_data_ms"] < AGENT_KEEPALIVE_MS


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, SETTINGS_ACK = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
SHORT = {"grpc.keepalive_time_ms": 500, "grpc.http2.ping_timeout_ms": 1_000}


async def _vanished_peer(options: list[tuple[str, int]]) -> tuple[bool, int]:
    """A peer that opened an HTTP/2 connection and then vanished (its NAT dropped the flow: whatever the server
    sends is swallowed, nothing answers): whether the server closed the connection within HELD_SECONDS, and how
    many PING frames it sent meanwhile."""
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers((_handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(PREFACE + SETTINGS)
        await writer.drain()
        buffer, acked, pings, closed = b"", False, 0, False
        deadline = asyncio.get_running_loop().time() + HELD_SECONDS
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                data = await asyncio.wait_for(reader.read(65536), left)
            except TimeoutError:
                break
            except ConnectionError:
                closed = True
                break
            if not data:
                closed = True
                break
            buffer += data
            while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
                length, kind, flags = int.from_bytes(buffer[:3], "big"), buffer[3], buffer[4]
                buffer = buffer[9 + length:]
                if kind == 4 and not flags & 1 and not acked:  # the server's SETTINGS: the handshake ends
                    writer.write(SETTINGS_ACK)
                    await writer.drain()
                    acked = True
                elif kind == 6 and not flags & 1:  # a PING: never answered from here on
                    pings += 1
        writer.close()
        return closed, pings
    finally:
        await server.stop(None)


def test_the_federator_closes_a_connection_whose_peer_vanished() -> None:
    """Outside WAN QA W5: behind a NAT that dropped the flow, an agent's connection stayed open on the federator
    for gRPC's server default of 2 hours. The federator's own policy, its durations shortened for the test (the
    real ones are checked below), pings and closes a connection that does not answer."""
    shortened = [(key, SHORT.get(key, value)) for key, value in SERVER_PING_POLICY]
    closed, pings = asyncio.run(_vanished_peer(shortened))
    assert pings >= 1 and closed, (closed, pings)


def test_the_federator_pings_within_a_minute_and_waits_longer_than_a_lease_for_the_ack() -> None:
    policy = dict(SERVER_PING_POLICY)
    assert policy["grpc.keepalive_time_ms"] <= 60_000
    assert policy["grpc.http2.ping_timeout_ms"] >= 60_000  # a slow link's late ack is not a dead link
