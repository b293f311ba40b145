"""gRPC server interceptors: every call counted and timed, whatever service serves it.

Why an interceptor rather than code in each servicer: the counts must cover
every method (agent streams, the job API, the health service the kubelet
probes) and every way a call ends (return, abort, unhandled exception, client
cancel), and none of that is the servicers' business.

Metrics (defined in federator.metrics), labelled like the gRPC ecosystem's
server metrics: `federator_grpc_server_started_total{grpc_service,grpc_method}`,
`federator_grpc_server_handled_total{grpc_service,grpc_method,grpc_code}` with
`grpc_code` a `grpc.StatusCode` name (OK, NOT_FOUND, ...), and the histogram
`federator_grpc_server_handling_seconds{grpc_service,grpc_method}`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from federator.metrics import Metrics

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


def split_method(full_method: str) -> tuple[str, str]:
    """'/federator.v1.JobService/Submit' -> ('federator.v1.JobService', 'Submit')."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method or "unknown"


def _code_name(code: Any) -> str:
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # some grpc versions hand back the raw integer
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status.name
    return grpc.StatusCode.UNKNOWN.name


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts calls started and handled (by status code) and times each call."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: gRPC answers UNIMPLEMENTED itself
            return None
        service, method = split_method(handler_call_details.method)
        call = _Call(self._metrics, service, method)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                call.unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                call.streaming(handler.unary_stream), handler.request_deserializer, handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                call.unary(handler.stream_unary), handler.request_deserializer, handler.response_serializer)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                call.streaming(handler.stream_stream), handler.request_deserializer, handler.response_serializer)
        return handler


class _Call:
    """The metrics of one method; wraps its behaviour so every call is counted once."""

    def __init__(self, metrics: Metrics, service: str, method: str) -> None:
        self._m = metrics
        self._labels = (service, method)

    def _start(self) -> float:
        self._m.grpc_started.labels(*self._labels).inc()
        return time.perf_counter()

    def _done(self, started: float, code: str) -> None:
        self._m.grpc_handled.labels(*self._labels, code).inc()
        self._m.grpc_handling.labels(*self._labels).observe(time.perf_counter() - started)

    def _code(self, context: grpc.aio.ServicerContext, exc: BaseException | None) -> str:
        if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):  # the client went away
            return grpc.StatusCode.CANCELLED.name
        set_code = context.code()
        if set_code is not None:  # set by context.abort() or context.set_code()
            return _code_name(set_code)
        return grpc.StatusCode.UNKNOWN.name if exc is not None else grpc.StatusCode.OK.name

    def unary(self, behavior: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = self._start()
            try:
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    result = await result
            except BaseException as exc:
                self._done(started, self._code(context, exc))
                raise
            self._done(started, self._code(context, None))
            return result

        return wrapper

    def streaming(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behavior):
            return self.unary(behavior)  # a coroutine writing with context.write(): same shape as unary

        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = self._start()
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as exc:
                self._done(started, self._code(context, exc))
                raise
            self._done(started, self._code(context, None))

        return wrapper


__all__ = ["MetricsInterceptor", "split_method"]
