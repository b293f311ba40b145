"""The gRPC metrics interceptor: every call counted once with the status it really ended with.

A real grpc.aio server on a loopback port, methods that return, abort, raise and
stream; the client sees the same code the counter records.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from federator.metrics import Metrics
from federator.server.interceptors import MetricsInterceptor, split_method

SERVICE = "test.v1.Probe"


async def _ok(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def _abort(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    return b""


async def _set_code(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
    context.set_details("not now")
    return b""


async def _raise(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("a bug")


async def _stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for i in range(3):
        yield bytes([i])


async def _stream_abort(request_iterator: AsyncIterator[bytes],
                        context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    async for _ in request_iterator:
        yield b"first"
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello: bad")


async def _sum(request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    return b"".join([r async for r in request_iterator])


HANDLERS = {
    "Ok": grpc.unary_unary_rpc_method_handler(_ok),
    "Abort": grpc.unary_unary_rpc_method_handler(_abort),
    "SetCode": grpc.unary_unary_rpc_method_handler(_set_code),
    "Raise": grpc.unary_unary_rpc_method_handler(_raise),
    "Stream": grpc.unary_stream_rpc_method_handler(_stream),
    "StreamAbort": grpc.stream_stream_rpc_method_handler(_stream_abort),
    "Sum": grpc.stream_unary_rpc_method_handler(_sum),
}


async def _call(channel: grpc.aio.Channel, method: str) -> tuple[Any, grpc.StatusCode]:
    path = f"/{SERVICE}/{method}"
    try:
        if method == "Stream":
            return [r async for r in channel.unary_stream(path)(b"x")], grpc.StatusCode.OK
        if method == "StreamAbort":
            return [r async for r in channel.stream_stream(path)(iter([b"a", b"b"]))], grpc.StatusCode.OK
        if method == "Sum":
            return await channel.stream_unary(path)(iter([b"a", b"b"])), grpc.StatusCode.OK
        return await channel.unary_unary(path)(b"x"), grpc.StatusCode.OK
    except grpc.aio.AioRpcError as err:
        return None, err.code()


async def _run(method: str) -> tuple[Metrics, grpc.StatusCode]:
    metrics = Metrics()
    server = grpc.aio.server(interceptors=[MetricsInterceptor(metrics)])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, HANDLERS)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            _, code = await _call(channel, method)
    finally:
        await server.stop(grace=None)
    return metrics, code


@pytest.mark.parametrize(("method", "want"), [
    pytest.param("Ok", "OK", id="unary-ok"),
    pytest.param("Abort", "NOT_FOUND", id="unary-abort"),
    pytest.param("SetCode", "FAILED_PRECONDITION", id="unary-set-code"),
    pytest.param("Raise", "UNKNOWN", id="unary-unhandled-exception"),
    pytest.param("Stream", "OK", id="server-stream-ok"),
    pytest.param("StreamAbort", "INVALID_ARGUMENT", id="bidi-stream-abort"),
    pytest.param("Sum", "OK", id="client-stream-ok"),
])
def test_each_call_is_counted_once_with_the_code_the_client_sees(method: str, want: str) -> None:
    metrics, client_code = asyncio.run(_run(method))
    assert client_code.name == want
    reg = metrics.registry
    labels = {"grpc_service": SERVICE, "grpc_method": method}
    assert reg.get_sample_value("federator_grpc_server_started_total", labels) == 1
    assert reg.get_sample_value("federator_grpc_server_handled_total", {**labels, "grpc_code": want}) == 1
    assert reg.get_sample_value("federator_grpc_server_handling_seconds_count", labels) == 1
    other_codes = [s for fam in reg.collect() if fam.name == "federator_grpc_server_handled"
                   for s in fam.samples if s.name.endswith("_total") and s.labels["grpc_code"] != want]
    assert other_codes == []


def test_unknown_method_is_left_to_grpc() -> None:
    metrics, client_code = asyncio.run(_run("Missing"))
    assert client_code is grpc.StatusCode.UNIMPLEMENTED
    assert metrics.registry.get_sample_value(
        "federator_grpc_server_started_total", {"grpc_service": SERVICE, "grpc_method": "Missing"}) is None


@pytest.mark.parametrize(("full", "want"), [
    pytest.param("/federator.v1.JobService/Submit", ("federator.v1.JobService", "Submit"), id="normal"),
    pytest.param("/grpc.health.v1.Health/Check", ("grpc.health.v1.Health", "Check"), id="health"),
    pytest.param("garbage", ("unknown", "garbage"), id="no-slash"),
])
def test_split_method(full: str, want: tuple[str, str]) -> None:
    assert split_method(full) == want
