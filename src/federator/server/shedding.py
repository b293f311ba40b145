"""Load shedding at the gRPC edge: once the job API's calls in flight are too many, or are not being answered, a
call is answered at once, RESOURCE_EXHAUSTED with a retry hint, instead of joining the queue.

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

Too many: MAX_CALLS_IN_FLIGHT at once, or, CoDel's idea, at least SLOW_FLOOR in flight while the oldest of them
has waited SLOW_SECONDS: a queue that stands, not a burst. A burst of 300 Submits that a healthy federator
answers in 4 s (group commit takes them together) is not shed; calls that pile up on a loop that does not answer
them are.

What shedding cannot reach: a call gRPC core holds before the loop has taken it up (grpc.aio takes each method's
calls up one at a time, a few loop turns each, so a loop whose turns are long takes few a second, whatever the
handlers cost), and CANCELS after 30 s. Letting such calls wait for their clients' deadlines instead (300 s) was
measured and dropped: the queue then held a minute of calls, every one of them timed out all the same
(DEADLINE_EXCEEDED), and the agents' streams behind them were welcomed later (docs/benchmarks.md, the soak's S3).
gRPC's own admission was measured too and is not used (server/grpc_server.py: core's pending-call cap ends calls
CANCELLED and refuses a healthy burst; maximum_concurrent_rpcs is checked after the take-up and counts agents'
streams). jobs.proto tells a client what that CANCELLED means: nothing was done, retry. A front end taking calls
up off the federator's loop is what would reach them.
"""

from __future__ import annotations

import inspect
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from federator.metrics import Metrics
from federator.server.errors import Exhausted, exhausted
from federator.server.interceptors import Continuation, split_method

MAX_CALLS_IN_FLIGHT = 512  # the job API's unary calls handled at once; the next is shed
SLOW_FLOOR = 64  # with at least this many in flight ...
SLOW_SECONDS = 10.0  # ... and the oldest of them started this long ago, the next is shed (a third of a 30 s deadline)
SHED_RETRY_SECONDS = 2.0  # the RetryInfo's retry_delay of a shed call: a loaded loop's turn is seconds long
NEVER_SHED = frozenset({
    "federator.v1.AgentService",  # agents' streams: a cluster that cannot connect holds its jobs' fate
    "grpc.health.v1.Health",  # the kubelet's probes: a shed probe would restart a busy federator
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
})


class Shedder(grpc.aio.ServerInterceptor):
    """Counts the job API's unary calls in flight and sheds one over `limit` (see the module)."""

    def __init__(self, metrics: Metrics, *, limit: int = MAX_CALLS_IN_FLIGHT, slow_floor: int = SLOW_FLOOR,
                 slow_seconds: float = SLOW_SECONDS, retry_after: float = SHED_RETRY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self.limit = limit
        self.slow_floor = slow_floor
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.clock = clock
        self.shed = 0  # calls refused, for tests (the metric is by method)
        self._started: dict[int, float] = {}  # calls in flight, oldest first: when each started
        self._ids = itertools.count()

    @property
    def in_flight(self) -> int:
        return len(self._started)

    def _too_many(self, now: float) -> str:
        """Why one more call is shed now, or "" (see the module)."""
        n = len(self._started)
        if n >= self.limit:
            return f"{n} calls in flight, its bound"
        if n >= self.slow_floor:
            waited = now - next(iter(self._started.values()))
            if waited >= self.slow_seconds:
                return f"{n} calls in flight, the oldest for {waited:.0f}s"
        return ""

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
            now = self.clock()
            busy = self._too_many(now) if self.limit > 0 else ""
            if busy:
                self.shed += 1
                self._metrics.grpc_shed.labels(service, method).inc()
                await context.abort_with_status(exhausted(
                    f"the federator is busy: {busy}; nothing was done; retry after {self.retry_after:g}s with "
                    "jitter (a Submit with the same request_id)", Exhausted.BUSY, retry_after=self.retry_after))
            call = next(self._ids)
            self._started[call] = now
            try:
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    result = await result
                return result
            finally:
                del self._started[call]

        return wrapper


__all__ = ["MAX_CALLS_IN_FLIGHT", "NEVER_SHED", "SHED_RETRY_SECONDS", "SLOW_FLOOR", "SLOW_SECONDS", "Shedder"]
