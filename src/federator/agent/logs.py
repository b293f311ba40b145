"""The agent's answers to the federator's LogsRequests: the tail of a placement's output (agent.proto).

Why a module of its own: a user reads their job's output through the federator (`federator logs`), since the
member's credentials are the provider's, never the user's; the agent is the one party that may read its pods'
output, and its stream the one path out. An answer is not an order: it does not wait for the placement's turn
of launches and cancels (agent/orders.py), and a slow member API holds only the request being read
(READS_AT_ONCE at once; past WAITING_AT_MOST waiting, a request is answered "busy" at once).

The agent holds its own reply to the contract's bounds, whatever the backend did: each text's end kept within
the byte share, the whole within limit_bytes, the bounds clamped to the contract's ranges, and an answer sent
within READ_SECONDS so it reaches the federator before its deadline (LOGS_REPLY_SECONDS, 10 s). The operator
may keep output in the member: --no-logs drops the "logs" feature from the Hello (Session.hello), and a request
that came anyway is answered with an error saying so.

A follow's request (`timestamps`, `since_time`: agent.proto, "logs-since") is read by a backend that dates its
lines (ReadsLogsSince); the Hello lists "logs-since" only for one, and a request that came anyway is answered
with an error saying the agent cannot follow.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from federator.agent.backend import Backend, ReadsLogs, ReadsLogsSince, ReplicaOutput
from federator.agent.outbox import Outbox
from federator.api.v1 import agent_pb2
from federator.logtail import (
    BUSY,
    ERROR_CHARS,
    MAX_LIMIT_BYTES,
    MAX_REPLICA_LOGS,
    MAX_TAIL_LINES,
    NAME_CHARS,
    tail_bytes,
)

log = logging.getLogger("federator.agent")
READ_SECONDS = 8.0
"""A backend's read of one request at most: its reply must reach the federator within 10 s of the request."""
READS_AT_ONCE = 4
WAITING_AT_MOST = 64


def serves_logs(backend: Backend, serve: bool) -> bool:
    """Whether the Hello lists "logs": a backend that reads output, and an operator that did not say --no-logs."""
    return serve and isinstance(backend, ReadsLogs)


def follows_logs(backend: Backend, serve: bool) -> bool:
    """Whether the Hello lists "logs-since": a backend that also dates its lines, and logs served at all."""
    return serves_logs(backend, serve) and isinstance(backend, ReadsLogsSince)


def since_of(text: str) -> float | None | str:
    """LogsRequest.since_time as Unix seconds (whole: Kubernetes' sinceTime is), None when empty, or why not."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return f"since_time: not an RFC 3339 time: {text[:64]!r}"
    if when.tzinfo is None:
        return f"since_time: an RFC 3339 time needs its zone (Z), got {text[:64]!r}"
    return float(int(when.timestamp()))


def bounded(outputs: list[ReplicaOutput], limit_bytes: int) -> list[agent_pb2.ReplicaLog]:
    """The backend's outputs held to the contract: at most MAX_REPLICA_LOGS, `limit_bytes` of text in all (each
    text's end kept within an even share when they would pass it)."""
    outputs = outputs[:MAX_REPLICA_LOGS]
    share = limit_bytes // max(1, len(outputs)) if sum(len(o.text.encode()) for o in outputs) > limit_bytes \
        else limit_bytes
    logs = []
    for o in outputs:
        text = tail_bytes(o.text, share)
        logs.append(agent_pb2.ReplicaLog(replica=o.replica, pod=o.pod[:NAME_CHARS], container=o.container[:NAME_CHARS],
                                         text=text, truncated=o.truncated or text != o.text,
                                         error=o.error[:ERROR_CHARS]))
    return logs


class LogAnswers:
    """Answers each LogsRequest once, off the stream's reader, on the outbox of the stream it came on."""

    def __init__(self, backend: Backend, outbox: Outbox, *, serve: bool) -> None:
        self.backend = backend
        self.outbox = outbox
        self.serve = serve
        self._reads = asyncio.Semaphore(READS_AT_ONCE)
        self._tasks: set[asyncio.Task[None]] = set()

    def take(self, request: agent_pb2.LogsRequest) -> None:
        if not serves_logs(self.backend, self.serve):
            self._answer(request, error="this agent does not serve logs (its operator runs it with --no-logs)")
            return
        following = request.timestamps or bool(request.since_time)
        if following and not follows_logs(self.backend, self.serve):
            self._answer(request, error="this agent cannot follow logs (its backend does not date its lines: it "
                                        "lists no \"logs-since\" feature)")
            return
        if len(self._tasks) >= WAITING_AT_MOST:
            self._answer(request, error=f"{BUSY}: {WAITING_AT_MOST} logs requests are being read; ask again")
            return
        task = asyncio.get_running_loop().create_task(self._read(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, request: agent_pb2.LogsRequest) -> None:
        assert isinstance(self.backend, ReadsLogs)
        tail = min(max(request.tail_lines, 1), MAX_TAIL_LINES)
        limit = min(max(request.limit_bytes, 1), MAX_LIMIT_BYTES)
        since = since_of(request.since_time)
        if isinstance(since, str):
            self._answer(request, error=since)
            return
        try:
            async with self._reads:
                if request.timestamps or since is not None:
                    assert isinstance(self.backend, ReadsLogsSince)
                    read = self.backend.logs_since(request.placement_id, request.replica, request.container, tail,
                                                   limit, since=since)
                else:
                    read = self.backend.logs(request.placement_id, request.replica, request.container, tail, limit)
                async with asyncio.timeout(READ_SECONDS):  # not wait_for: on 3.11 it can drop a cancel (woken.py)
                    got = await read
        except TimeoutError:
            got = f"reading the output of placement {request.placement_id} took over {READ_SECONDS:g}s"
        except Exception as exc:  # noqa: BLE001 - the member's API failing: said to the user, never fatal here
            log.warning("reading the logs of placement %s failed", request.placement_id, exc_info=True)
            got = f"reading the output of placement {request.placement_id} failed: {exc}"
        if isinstance(got, str):
            self._answer(request, error=got)
        else:
            self._answer(request, logs=bounded(got, limit))

    def _answer(self, request: agent_pb2.LogsRequest, *, logs: list[agent_pb2.ReplicaLog] | None = None,
                error: str = "") -> None:
        self.outbox.put(agent_pb2.AgentMessage(logs=agent_pb2.LogsReply(request_id=request.request_id,
                                                                        logs=logs or [], error=error[:ERROR_CHARS])))


__all__ = ["READ_SECONDS", "LogAnswers", "bounded", "follows_logs", "serves_logs", "since_of"]
