"""A job's output, read by the agents that run it: `federator logs` (jobs.proto Logs, agent.proto LogsRequest).

Why a module of its own: a user cannot read their job's output otherwise (outside QA, HPC H4). Its pods live in
member clusters whose credentials are the providers', never the user's; the only path across that boundary is
each agent's stream to the federator. So the federator asks the agent of each cluster the job ran on (a
LogsRequest, only to an agent whose Hello listed the "logs" feature), waits LOGS_REPLY_SECONDS at most for its
LogsReply, and answers the user with what came, naming each cluster that said nothing and why. Nothing is
stored: every call asks again.

What an agent sends is checked, never trusted (`taken`): a reply to a request this stream was not sent is
refused, one after its deadline dropped; past the asked byte bound each text is cut to its share (the end kept)
and marked truncated; names are cut and control characters in them escaped. The text itself is passed as it
came (it is the job's own output; the CLI escapes control characters before a terminal sees them).

The requests waiting for an answer are kept per stream (`Waiting`, on the cluster's record): a stream that ends
answers them at once ("the agent's stream ended"), and a reply is only ever taken on the stream it was asked on.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
from federator.model import AgentFeature, Job, Placement
from federator.server.orders import LogsOrder
from federator.termtext import visible

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")

LOGS_REPLY_SECONDS = 10.0
"""How long the federator waits for an agent's LogsReply (agent.proto, LogsRequest)."""
DEFAULT_TAIL_LINES = 100
DEFAULT_LIMIT_BYTES = 64 * 1024
LATE_KEPT = 1024
"""Request ids answered by the deadline kept per stream, so that a late reply is told from one never asked."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """What the user asked, with the defaults filled in and checked (`bounds`)."""

    replica: int  # -1: every replica
    container: str
    tail_lines: int
    limit_bytes: int


class BoundsError(ValueError):
    """A request out of range: `field` names it."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


def bounds(*, replica: int | None, container: str, tail_lines: int, limit_bytes: int,
           max_message_bytes: int = 1 << 20) -> Bounds:
    """The user's request checked: a BoundsError naming the field when it is out of range. The byte bound is also
    held to half the server's message limit (--max-message-bytes), so that neither an agent's reply nor the answer
    is refused for its size; the answer says the bound applied."""
    if replica is not None and replica < 0:
        raise BoundsError("replica", f"must be a replica index of 0 or more (unset: every replica), got {replica}")
    if not 0 <= tail_lines <= MAX_TAIL_LINES:
        raise BoundsError("tail_lines", f"must be from 1 to {MAX_TAIL_LINES} (0: {DEFAULT_TAIL_LINES}), got "
                                        f"{tail_lines}")
    if not 0 <= limit_bytes <= MAX_LIMIT_BYTES:
        raise BoundsError("limit_bytes", f"must be from 1 to {MAX_LIMIT_BYTES} (0: {DEFAULT_LIMIT_BYTES}), got "
                                         f"{limit_bytes}")
    if len(container) > 63 or any(not c.isprintable() for c in container):
        raise BoundsError("container", "must be a container name of at most 63 printable characters")
    return Bounds(-1 if replica is None else replica, container, tail_lines or DEFAULT_TAIL_LINES,
                  max(1, min(limit_bytes or DEFAULT_LIMIT_BYTES, max_message_bytes // 2)))


@dataclass(frozen=True, slots=True)
class ReplicaText:
    """One replica's output as the user is told it."""

    cluster: str
    placement_id: str
    replica: int
    pod: str
    container: str
    text: str
    truncated: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class Unread:
    """A placement whose cluster said nothing, and why; `busy` when its agent said it was (agent.proto,
    LogsReply.error beginning "busy"): a follow skips that beat (server/log_follow.py)."""

    cluster: str
    placement_id: str
    message: str
    busy: bool = False


@dataclass(frozen=True, slots=True)
class Gathered:
    logs: tuple[ReplicaText, ...]
    unread: tuple[Unread, ...]


class Waiting:
    """The LogsRequests one agent stream was sent and has not answered; kept on its cluster's record."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[LogsOrder, asyncio.Future[agent_pb2.LogsReply | str]]] = {}
        self._past: OrderedDict[str, None] = OrderedDict()  # ids asked on this stream and no longer waited for

    def ask(self, order: LogsOrder) -> asyncio.Future[agent_pb2.LogsReply | str]:
        future: asyncio.Future[agent_pb2.LogsReply | str] = asyncio.get_running_loop().create_future()
        self._pending[order.request_id] = (order, future)
        return future

    def give_up(self, request_id: str) -> None:
        """No longer waited for (its deadline passed): a reply to it is late, dropped."""
        if self._pending.pop(request_id, None) is not None:
            self._past[request_id] = None
            while len(self._past) > LATE_KEPT:
                self._past.popitem(last=False)

    def answered(self, reply: agent_pb2.LogsReply) -> str:
        """Take a reply: "taken", "late" (asked here, no longer waited for) or "unknown" (never asked here)."""
        waiting = self._pending.pop(reply.request_id, None)
        if waiting is None:
            return "late" if reply.request_id in self._past else "unknown"
        self._past[reply.request_id] = None
        if not waiting[1].done():
            waiting[1].set_result(reply)
        return "taken"

    def stream_ended(self, cluster: str) -> None:
        """Every request still waiting is answered at once: its stream, hence its reply, is gone."""
        for _, future in self._pending.values():
            if not future.done():
                future.set_result(f"cluster {cluster}: its agent's stream ended before it answered")
        self._pending.clear()


def taken(cluster: str, order: LogsOrder, reply: agent_pb2.LogsReply) -> tuple[list[ReplicaText], str]:
    """An agent's LogsReply as the user is told it, held to the request's bounds (see the module): the replicas'
    texts, and the cluster's error ("" when none). Never trusted: over the byte bound each text is cut to its
    share, keeping its end, and marked truncated."""
    entries = [e for e in reply.logs[:MAX_REPLICA_LOGS] if e.replica >= 0 and order.replica in (-1, e.replica)]
    over = len(reply.logs) - len(entries)
    total = sum(len(e.text.encode()) for e in entries)
    share = order.limit_bytes // max(1, len(entries)) if total > order.limit_bytes else 0
    if share or over:
        log.warning("cluster %s answered logs of %s with %d bytes of text in %d replica logs, asked for at most %d "
                    "bytes%s: cut (the agent breaks agent.proto, LogsRequest)", cluster, order.placement_id, total,
                    len(reply.logs), order.limit_bytes, f" and replica {order.replica}" if order.replica >= 0 else "")
    texts = [ReplicaText(cluster, order.placement_id, e.replica, visible(e.pod[:NAME_CHARS]),
                         visible(e.container[:NAME_CHARS]), tail_bytes(e.text, share) if share else e.text,
                         e.truncated or (bool(share) and len(e.text.encode()) > share),
                         visible(e.error[:ERROR_CHARS])) for e in entries]
    return texts, visible(reply.error[:ERROR_CHARS])


async def gather(fed: Federator, job: Job, want: Bounds, *, deadline: float | None = None,
                 follow: Callable[[Placement], tuple[int, str]] | None = None,
                 placements: Sequence[Placement] | None = None) -> Gathered:
    """Ask each cluster that ran `job` for its placements' output (`want`), wait `deadline` seconds at most
    (LOGS_REPLY_SECONDS), and answer what came and which clusters said nothing, and why. A follow's read
    (server/log_follow.py) gives `follow`: each placement's (tail_lines, since_time); its lines come dated, and
    only from agents that list "logs-since". `placements`: only these of the job's (a follow's read in turns,
    server/log_polls.py); the byte bound is still shared among all of them."""
    deadline = LOGS_REPLY_SECONDS if deadline is None else deadline
    share = max(1, want.limit_bytes // max(1, len(job.placements)))  # every one sent to a cluster, live or ended
    placements = job.placements if placements is None else placements
    asked: list[tuple[Placement, LogsOrder, Waiting, asyncio.Future[agent_pb2.LogsReply | str]]] = []
    unread: list[Unread] = []
    for p in placements:
        rec = fed.clusters.get(p.cluster)
        if rec is None or not rec.connected or rec.closing:
            unread.append(Unread(p.cluster, p.placement_id, f"cluster {p.cluster}: its agent is not connected"))
            continue
        if AgentFeature.LOGS not in rec.features:
            unread.append(Unread(p.cluster, p.placement_id,
                                 f"cluster {p.cluster} does not serve logs (its agent lists no \"logs\" feature: "
                                 "an agent older than 0.13.0, or one run with --no-logs)"))
            continue
        if follow is not None and AgentFeature.LOGS_SINCE not in rec.features:
            unread.append(Unread(p.cluster, p.placement_id,
                                 f"cluster {p.cluster} cannot follow logs (its agent lists no \"logs-since\" "
                                 "feature: an agent older than 0.15.0, or a third party's); `federator logs` "
                                 "without --follow reads it"))
            continue
        tail, since = follow(p) if follow is not None else (want.tail_lines, "")
        order = LogsOrder(str(uuid.uuid4()), p.placement_id, want.replica, want.container, tail, share,
                          timestamps=follow is not None, since_time=since)
        waiting = rec.logs
        asked.append((p, order, waiting, waiting.ask(order)))
        fed.send(p.cluster, order)
    if asked:
        await asyncio.wait([f for *_, f in asked], timeout=deadline)
    logs: list[ReplicaText] = []
    for p, order, waiting, future in asked:
        if not future.done():
            waiting.give_up(order.request_id)
            unread.append(Unread(p.cluster, p.placement_id,
                                 f"cluster {p.cluster} did not answer within {deadline:g}s"))
            continue
        got = future.result()
        if isinstance(got, str):
            unread.append(Unread(p.cluster, p.placement_id, got))
            continue
        texts, error = taken(p.cluster, order, got)
        logs.extend(texts)
        if error:
            unread.append(Unread(p.cluster, p.placement_id, f"cluster {p.cluster}: {error}",
                                 busy=error.startswith(BUSY)))
    return Gathered(tuple(logs), tuple(unread))


__all__ = ["DEFAULT_LIMIT_BYTES", "DEFAULT_TAIL_LINES", "LOGS_REPLY_SECONDS", "MAX_LIMIT_BYTES", "MAX_TAIL_LINES",
           "Bounds", "BoundsError", "Gathered", "ReplicaText", "Unread", "Waiting", "bounds", "gather", "taken"]
