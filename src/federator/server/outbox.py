"""The orders waiting for one agent stream, delivered at the agent's pace, and how a stream ends.

Why not a bounded queue that resets the stream when full (what it was): a
member that legitimately holds thousands of placements is owed thousands of
orders at once after a reconnect (its re-sync re-sends every launch lost in
flight, and fences every placement superseded while it was away). A queue of
1,000 closed the stream with status OK and dropped them; the reconnect made the
same orders again, forever. Orders here are kept in order and sent one at a
time as the transport takes them (gRPC flow control paces a slow agent), so
nothing accepted is lost:

* what the federator orders by itself (launches, cancels of its placements)
  is bounded by its own placements, so it is always queued;
* what an agent's own messages make it answer is bounded differently: a Cancel
  for a placement already waiting for one is not queued twice (an agent that
  repeats a stray placement in every report costs one order), Errors beyond
  ERROR_LIMIT waiting are dropped (they are counted anyway), and while more
  than PACE orders wait the stream's reader takes no more of the agent's
  messages (`room`), so an agent that never reads cannot grow the backlog;
* past LIMIT, which no member's placements can reach, the agent is not reading
  at all: the stream ends with RESOURCE_EXHAUSTED, saying so.

An ended stream says why with a status (`Ending`): no server-side end is a
silent OK, so an agent (and its operator) can tell a takeover by a newer stream
from an overload or a Lost cluster.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from federator.server.orders import CancelOrder, ErrorNotice, Order

PACE = 100_000
"""Orders waiting beyond which the stream's reader pauses (the agent's messages wait in the transport)."""
LIMIT = 1_000_000
"""Orders waiting beyond which the agent is not reading at all: its stream ends with RESOURCE_EXHAUSTED."""
ERROR_LIMIT = 1_000
"""Errors (answers to refused messages) waiting at most; more are dropped, as they are counted anyway."""


class EndCode(StrEnum):
    """The status a stream ends with: the names of gRPC status codes, without gRPC (the state machine has none)."""

    OK = "OK"
    ABORTED = "ABORTED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    PERMISSION_DENIED = "PERMISSION_DENIED"


@dataclass(frozen=True, slots=True)
class Ending:
    """Why the federator ended an agent stream: the status and a message naming the cluster and the reason."""

    code: EndCode
    message: str = ""


AGENT_CLOSED = Ending(EndCode.OK)
"""The agent ended its side: the federator's side ends too, with OK."""


def superseded(cluster: str) -> Ending:
    return Ending(EndCode.ABORTED, f"superseded by a newer stream for cluster {cluster} (the newest stream wins)")


def overloaded(cluster: str, waiting: int) -> Ending:
    return Ending(EndCode.RESOURCE_EXHAUSTED,
                  f"cluster {cluster}: {waiting} orders wait unread (limit {LIMIT}); the agent does not read its "
                  "stream: reconnect and re-sync")


def stopping(cluster: str) -> Ending:
    return Ending(EndCode.UNAVAILABLE, f"cluster {cluster}: the federator is stopping; reconnect (to its standby, or "
                                       "to it once restarted) and re-sync")


def lost(cluster: str, silent: float) -> Ending:
    return Ending(EndCode.UNAVAILABLE,
                  f"cluster {cluster} is Lost ({silent:.0f}s without a message): reconnect and re-sync")


class Outbox:
    """FIFO of orders for one stream; `None` after the orders means the stream ends (`ending` says why)."""

    __slots__ = ("_errors", "_fences", "_items", "_ready", "_room", "ending", "limit", "pace")

    def __init__(self, *, pace: int = PACE, limit: int = LIMIT) -> None:
        self.pace = pace
        self.limit = limit
        self._items: deque[Order | None] = deque()
        self._fences: set[str] = set()  # placement ids with a Cancel waiting
        self._errors = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.ending: Ending | None = None

    def put(self, order: Order) -> bool:
        """Queue an order; False when it would pass `limit` (the caller ends the stream as overloaded).

        A Cancel for a placement that already has one waiting, an order after the stream ended, and an Error
        beyond ERROR_LIMIT are dropped (True: nothing is wrong)."""
        if self.ending is not None:
            return True
        if isinstance(order, CancelOrder):
            if order.placement_id in self._fences:
                return True
            self._fences.add(order.placement_id)
        elif isinstance(order, ErrorNotice):
            if self._errors >= ERROR_LIMIT:
                return True
            self._errors += 1
        if len(self._items) >= self.limit:
            self._forget(order)
            return False
        self._items.append(order)
        self._ready.set()
        if len(self._items) > self.pace:
            self._room.clear()
        return True

    def close(self, ending: Ending) -> None:
        """Drop what waits and end the stream with `ending` (the first reason given wins)."""
        if self.ending is not None:
            return
        self.ending = ending
        self._items.clear()
        self._fences.clear()
        self._errors = 0
        self._items.append(None)
        self._ready.set()
        self._room.set()

    @property
    def closing(self) -> bool:
        return self.ending is not None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def get_nowait(self) -> Order | None:
        if not self._items:
            raise asyncio.QueueEmpty
        order = self._items.popleft()
        if order is not None:
            self._forget(order)
        if not self._items:
            self._ready.clear()
        if len(self._items) <= self.pace:
            self._room.set()
        return order

    async def get(self) -> Order | None:
        while not self._items:
            await self._ready.wait()
        return self.get_nowait()

    async def room(self) -> None:
        """Return once at most `pace` orders wait: the reader takes the agent's next message only then."""
        await self._room.wait()

    def _forget(self, order: Order) -> None:
        if isinstance(order, CancelOrder):
            self._fences.discard(order.placement_id)
        elif isinstance(order, ErrorNotice):
            self._errors -= 1


__all__ = ["AGENT_CLOSED", "ERROR_LIMIT", "LIMIT", "PACE", "EndCode", "Ending", "Outbox", "lost", "overloaded",
           "superseded"]
