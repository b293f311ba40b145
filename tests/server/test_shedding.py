"""Load shedding (server/shedding.py): past the bound on calls in flight a job API call is answered at once,
RESOURCE_EXHAUSTED BUSY with a RetryInfo, and counted; agents' streams, health and Watch are never shed.

Soak finding S3: with the loop saturated, calls waited unread until gRPC core CANCELLED them, counted nowhere.
A real grpc.aio server on loopback with the federator's own interceptors, handlers held on an event (calls that
wait for the loop): the counts, not the time, are asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from server_support import Clock

from federator.metrics import Metrics
from federator.server.errors import ERROR_DOMAIN, RETRY_AFTER_METADATA, Exhausted
from federator.server.interceptors import MetricsInterceptor
from federator.server.shedding import Shedder

LIMIT = 3
SUBMIT = "/federator.v1.JobService/Submit"


class _Held:
    """Handlers that wait until released, as calls wait on a loaded federator."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def submit(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.entered += 1
        await self.release.wait()
        return b"stored"

    async def check(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b"SERVING"

    async def connect(self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        async for _hello in requests:
            yield b"welcome"
            return

    async def watch(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b"job"


def _handlers(held: _Held) -> list[grpc.GenericRpcHandler]:
    return [
        grpc.method_handlers_generic_handler("federator.v1.JobService", {
            "Submit": grpc.unary_unary_rpc_method_handler(held.submit),
            "Get": grpc.unary_unary_rpc_method_handler(held.submit),
            "Watch": grpc.unary_stream_rpc_method_handler(held.watch)}),
        grpc.method_handlers_generic_handler("federator.v1.AgentService", {
            "Connect": grpc.stream_stream_rpc_method_handler(held.connect)}),
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(held.check)}),
    ]


@contextlib.asynccontextmanager
async def _held_submits(metrics: Metrics, shedder: Shedder) -> AsyncIterator[
        tuple[grpc.aio.Channel, _Held, list[asyncio.Future[bytes]]]]:
    """A real server on loopback with the federator's interceptors and `shedder`, a channel to it, and LIMIT
    Submits held in their handlers (calls that wait for a loaded federator's loop)."""
    server = grpc.aio.server(interceptors=[MetricsInterceptor(metrics), shedder])
    held = _Held()
    server.add_generic_rpc_handlers(_handlers(held))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            submit = channel.unary_unary(SUBMIT)
            waiting = [asyncio.ensure_future(submit(b"job", timeout=60)) for _ in range(LIMIT)]
            await _until(lambda: held.entered == LIMIT)
            yield channel, held, waiting
    finally:
        await server.stop(None)


async def _until(predicate: object, *, turns: int = 2000) -> None:
    for _ in range(turns):
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def test_past_the_bound_a_call_is_shed_with_a_retry_hint_and_counted_and_agents_are_not() -> None:
    metrics = Metrics()
    shedder = asyncio.run(_load(metrics, Shedder(metrics, limit=LIMIT, retry_after=2.0)))
    assert shedder.in_flight == 0

    def sample(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    assert sample("federator_grpc_server_shed_total", grpc_service="federator.v1.JobService",
                  grpc_method="Submit") == 1
    assert sample("federator_grpc_server_shed_total", grpc_service="federator.v1.JobService",
                  grpc_method="Get") == 1
    # and seen where an operator's error-rate alert looks
    assert sample("federator_grpc_server_handled_total", grpc_service="federator.v1.JobService",
                  grpc_method="Submit", grpc_code="RESOURCE_EXHAUSTED") == 1
    assert sample("federator_grpc_server_handled_total", grpc_service="federator.v1.JobService",
                  grpc_method="Submit", grpc_code="OK") == LIMIT + 1
    assert sample("federator_grpc_server_shed_total", grpc_service="federator.v1.AgentService",
                  grpc_method="Connect") == 0


def test_a_queue_that_stands_is_shed_below_the_bound_and_a_burst_answered_in_time_is_not() -> None:
    """CoDel's idea: LIMIT calls in flight are no bound of 1,000's, but the oldest of them waiting 10 s is a queue
    the federator does not answer; one more is shed. The same calls in flight for less are let in."""
    metrics, clock = Metrics(), Clock()
    shedder = Shedder(metrics, limit=1_000, slow_floor=LIMIT, slow_seconds=10.0, retry_after=2.0, clock=clock)

    async def held_then(advance: float) -> tuple[grpc.StatusCode, ...]:
        async with _held_submits(metrics, shedder) as (channel, held, waiting):
            clock.now += advance
            one_more = asyncio.ensure_future(channel.unary_unary(SUBMIT)(b"job", timeout=60))
            await _until(lambda: one_more.done() or held.entered > LIMIT)
            held.release.set()
            codes = []
            for call in [*waiting, one_more]:
                try:
                    await call
                    codes.append(grpc.StatusCode.OK)
                except grpc.aio.AioRpcError as err:
                    codes.append(err.code())
            return tuple(codes)

    assert asyncio.run(held_then(9.0)) == (grpc.StatusCode.OK,) * (LIMIT + 1)  # a burst answered in time
    assert asyncio.run(held_then(10.5)) == (grpc.StatusCode.OK,) * LIMIT + (grpc.StatusCode.RESOURCE_EXHAUSTED,)
    assert shedder.shed == 1 and shedder.in_flight == 0


async def _load(metrics: Metrics, shedder: Shedder) -> Shedder:
    """LIMIT Submits held in their handlers, then one more Submit and a Get, an agent's stream, a health check
    and a Watch; then the held ones released and one more Submit."""
    async with _held_submits(metrics, shedder) as (channel, held, waiting):
        # One more job API call, a Get as well as a Submit: answered at once, unread
        for method in ("Submit", "Get"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary(f"/federator.v1.JobService/{method}")(b"job", timeout=20)
            err = caught.value
            assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, err
            status = rpc_status.from_call(err)
            assert status is not None
            info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
            assert status.details[0].Unpack(info) and status.details[1].Unpack(retry)
            assert (info.reason, info.domain) == (Exhausted.BUSY.value, ERROR_DOMAIN)
            assert retry.retry_delay.seconds == 2
            assert (RETRY_AFTER_METADATA, "2") in tuple(err.trailing_metadata() or ())
        assert held.entered == LIMIT  # neither handler ran

        # Never shed: an agent's stream, the health probe, a Watch
        connect = channel.stream_stream("/federator.v1.AgentService/Connect")
        assert [m async for m in connect(iter([b"hello"]), timeout=20)] == [b"welcome"]
        assert await channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=20) == b"SERVING"
        assert [m async for m in channel.unary_stream("/federator.v1.JobService/Watch")(b"", timeout=20)] \
            == [b"job"]

        held.release.set()
        assert await asyncio.gather(*waiting) == [b"stored"] * LIMIT
        assert await channel.unary_unary(SUBMIT)(b"job", timeout=20) == b"stored"  # the bound is free again
        assert shedder.in_flight == 0
    return shedder
