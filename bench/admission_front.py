"""A prototype, not product code: a front end on a thread of its own, owning a port, that takes the job API's calls
up off the federator's loop and refuses RESOURCE_EXHAUSTED at once those it predicts would wait too long, then
forwards the rest, bytes as they are, to `federator serve` (plaintext, --insecure: no identity is carried).

Why it is here: gRPC offers no admission before grpc.aio's loop that answers RESOURCE_EXHAUSTED (docs/benchmarks.md,
S3); this measures what one in front of the loop would give, before anyone builds it for real (which needs the
client's mTLS identity carried to the federator, and costs a hop on every call). bench/admission.py --front.

Admission: at most FORWARDED unary calls are with the federator at once; the rest wait here in arrival order. A
call that has waited WAIT_FIRST and whose place in the line, over the federator's answers a second since the line
began to stand (5 s at most), is more than BUDGET seconds away is answered RESOURCE_EXHAUSTED (reason BUSY in its
message; a prototype sends no ErrorInfo). A burst a healthy federator drains in a second is never refused.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

FORWARDED = 32  # unary calls with the federator at once
BUDGET = 10.0  # seconds: a call predicted to wait longer at the front is refused
WAIT_FIRST = 1.0  # seconds a call waits before it may be refused: a burst drained within it never is
STREAMS = {"/federator.v1.AgentService/Connect": "stream_stream", "/federator.v1.JobService/Watch": "unary_stream",
           "/federator.v1.JobService/WatchBatches": "unary_stream", "/federator.v1.JobService/FollowLogs":
           "unary_stream"}


class _Line:
    """The unary calls waiting at the front, and the federator's answers of the last seconds."""

    def __init__(self) -> None:
        self.gate = asyncio.Semaphore(FORWARDED)
        self.next_ticket = 0
        self.served = 0  # tickets let through or refused, in order
        self.gone: set[int] = set()
        self.answered: collections.deque[float] = collections.deque()
        self.standing_since = 0.0
        self.refused = 0

    def predicted_wait(self, ticket: int, now: float) -> float:
        while self.answered and self.answered[0] < now - 5.0:
            self.answered.popleft()
        window = max(0.5, min(5.0, now - self.standing_since))
        rate = len(self.answered) / window
        ahead = ticket - self.served
        return float("inf") if rate == 0 else ahead / rate

    def passed(self, ticket: int) -> None:
        self.gone.add(ticket)
        while self.served in self.gone:
            self.gone.discard(self.served)
            self.served += 1


def _handler(method: str, channel: grpc.aio.Channel, line: _Line) -> grpc.RpcMethodHandler:
    kind = STREAMS.get(method)
    if kind == "stream_stream":
        bidi = channel.stream_stream(method)

        async def both(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            async for reply in bidi(requests):
                yield reply

        return grpc.stream_stream_rpc_method_handler(both)
    if kind == "unary_stream":
        server_stream = channel.unary_stream(method)

        async def replies(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            async for reply in server_stream(request):
                yield reply

        return grpc.unary_stream_rpc_method_handler(replies)
    unary = channel.unary_unary(method)

    async def one(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        ticket = line.next_ticket
        line.next_ticket += 1
        if ticket == line.served:
            line.standing_since = time.monotonic()
        waited_from = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(line.gate.acquire(), 0.25)
                break
            except TimeoutError:
                now = time.monotonic()
                wait = line.predicted_wait(ticket, now)
                if now - waited_from >= WAIT_FIRST and wait > BUDGET:
                    line.refused += 1
                    line.passed(ticket)
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        f"BUSY: the federator is busy: about {wait:.0f}s of calls ahead; nothing "
                                        "was done; retry later with jitter")
        line.passed(ticket)
        try:
            remaining = context.time_remaining()
            reply: bytes = await unary(request, timeout=remaining)
            line.answered.append(time.monotonic())
            return reply
        except grpc.aio.AioRpcError as err:
            await context.abort(err.code(), err.details() or "")
            raise
        finally:
            line.gate.release()

    return grpc.unary_unary_rpc_method_handler(one)


class _Forward(grpc.GenericRpcHandler):
    def __init__(self, channel: grpc.aio.Channel, line: _Line) -> None:
        self._channel, self._line = channel, line
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        if method not in self._handlers:
            self._handlers[method] = _handler(method, self._channel, self._line)
        return self._handlers[method]


def start_front(target: str) -> tuple[str, Callable[[], int]]:
    """The front on a thread and loop of its own, forwarding to `target`: its address, and a stop that says how
    many calls it refused."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        line = _Line()
        async with grpc.aio.insecure_channel(target) as channel:
            server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
            server.add_generic_rpc_handlers((_Forward(channel, line),))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            stop = asyncio.Event()
            state.update(address=f"127.0.0.1:{port}", stop=stop, loop=asyncio.get_running_loop(), line=line)
            ready.set()
            await stop.wait()
            await server.stop(None)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(30):
        raise SystemExit("the front did not start")

    def stop() -> int:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(30)
        return int(state["line"].refused)

    return str(state["address"]), stop


__all__ = ["start_front"]
