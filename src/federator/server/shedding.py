"""Load shedding at the gRPC edge: past a bound on the job API's calls in flight, a call is answered at once,
RESOURCE_EXHAUSTED with a retry hint, instead of joining the queue.

Why: a federator whose event loop is saturated (a backlog's first cycles, reason writes, a hundred agents'
reports) takes each new call up late, and every call in flight takes a share of each loop turn, so the more are
let in the slower each one goes. Calls that gRPC core holds unread for 30 s
(`grpc.server_max_unrequested_time_in_server`) are then CANCELLED before any handler runs: counted nowhere
(`federator_grpc_server_handled_total` never saw them), and CANCELLED is what most clients do not retry, for a
Submit that was never read (soak finding S3: 294 of 300 concurrent Submits). Refused early, the call costs the
loop one short turn, the client hears RESOURCE_EXHAUSTED with ErrorInfo reason BUSY and a RetryInfo (jobs.proto,
"Calling this API": nothing was done, retry after the delay with jitter, a Submit with the same request_id),
and the operator sees it on `federator_grpc_server_shed_total` and in the handled counter.

What is never shed: the agents' Connect streams (AgentService; a cluster that cannot connect is a Partitioned
cluster, and its reports are what the cycles need), the health service the kubelet probes, reflection, and
streaming answers (Watch, FollowLogs: long-lived, bounded by their own seats, watch_seats.py and log_follow.py).
A shed call was never counted in flight, so the bound holds whatever the mix.

What shedding cannot reach: a call gRPC core holds before the loop has picked it up (grpc.aio takes calls up one
at a time, a loop turn or two each, so a loop whose turns are long takes few a second, whatever the handlers
cost). Such a call is no longer CANCELLED after 30 s (UNREAD_SECONDS): it waits for the client's own deadline,
which the client then hears as DEADLINE_EXCEEDED, the code jobs.proto tells it to retry (a Submit with the same
request_id), and an agent's stream waits for its Welcome (agent/session.py WELCOME_TIMEOUT).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from federator.metrics import Metrics
from federator.server.errors import Exhausted, exhausted
from federator.server.interceptors import Continuation, split_method

MAX_CALLS_IN_FLIGHT = 128  # the job API's unary calls handled at once; the next is shed
SHED_RETRY_SECONDS = 2.0  # the RetryInfo's retry_delay of a shed call: a loaded loop's turn is seconds long
UNREAD_SECONDS = 300  # how long gRPC core holds a call the loop has not picked up (its default: 30 s, then CANCELLED)
SERVER_OPTIONS = (("grpc.server_max_unrequested_time_in_server", UNREAD_SECONDS),)
NEVER_SHED = frozenset({
    "federator.v1.AgentService",  # agents' streams: a cluster that cannot connect holds its jobs' fate
    "grpc.health.v1.Health",  # the kubelet's probes: a shed probe would restart a busy federator
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
})


class Shedder(grpc.aio.ServerInterceptor):
    """Counts the job API's unary calls in flight and sheds one over `limit` (see the module)."""

    def __init__(self, metrics: Metrics, *, limit: int = MAX_CALLS_IN_FLIGHT,
                 retry_after: float = SHED_RETRY_SECONDS) -> None:
        self._metrics = metrics
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0
        self.shed = 0  # calls refused, for tests (the metric is by method)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        service, method = split_method(handler_call_details.method)
        if service in NEVER_SHED or self.limit <= 0:
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._bounded(handler.unary_unary, service, method), handler.request_deserializer,
                handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._bounded(handler.stream_unary, service, method), handler.request_deserializer,
                handler.response_serializer)
        return handler  # a streaming answer: bounded by its own seats

    def _bounded(self, behavior: Callable[..., Any], service: str, method: str) -> Callable[..., Awaitable[Any]]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if self.in_flight >= self.limit:
                self.shed += 1
                self._metrics.grpc_shed.labels(service, method).inc()
                await context.abort_with_status(exhausted(
                    f"the federator is busy: {self.in_flight} calls in flight, its bound; nothing was done; "
                    f"retry after {self.retry_after:g}s with jitter (a Submit with the same request_id)",
                    Exhausted.BUSY, retry_after=self.retry_after))
            self.in_flight += 1
            try:
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    result = await result
                return result
            finally:
                self.in_flight -= 1

        return wrapper


__all__ = ["MAX_CALLS_IN_FLIGHT", "NEVER_SHED", "SERVER_OPTIONS", "SHED_RETRY_SECONDS", "UNREAD_SECONDS", "Shedder"]
