"""A scheduling cycle whose write failed: kept in memory, retried with a backoff, its orders sent once stored.

A cycle whose write fails (the disk is full: StoreUnavailable) keeps its placements in memory, where they hold
their clusters' room, and sends none of its orders: no agent hears of a placement that is not durable. Its write is
tried again at each later turn of the loop, backing off up to `RETRY_MAX_SECONDS`, and no new cycle is planned
meanwhile; once the disk takes the write the orders go out (those still current). A crash meanwhile loses nothing
that was promised: the store still holds the jobs Pending, and no cluster was told to run them.

Why a module of its own: the cycle (server/scheduling.py) plans, computes and commits; holding a refused write and
backing off is another concern, with state of its own (one cycle at most, on a monotonic clock, not the
federator's) that the store's health (server/store_health.py) reads, and it made scheduling.py the longest module
of the server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from federator.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from federator.model import Job
    from federator.scheduler import CycleResult
    from federator.server.orders import Order
    from federator.store.group_commit import GroupCommit

log = logging.getLogger("federator.server")
RETRY_FIRST_SECONDS = 0.25  # an unwritten cycle's first retry; doubled after each failure...
RETRY_MAX_SECONDS = 5.0  # ...up to this: orders go out at most this long after the disk takes writes again


@dataclass(slots=True)
class Unwritten:
    """A cycle applied in memory whose write failed: its jobs, and the orders that wait until they are stored."""

    changed: list[Job]
    orders: list[tuple[str, Order]]
    result: CycleResult
    failures: int = 1
    retry_at: float = 0.0


class UnwrittenCycle:
    """The cycle waiting for the disk (`waiting`), if any; see the module docstring. `send` sends a stored cycle's
    orders and news; `counted` takes a cycle off the count (-1: not a cycle until stored) and puts it back (+1)."""

    def __init__(self, journal: GroupCommit, *, send: Callable[[list[Job], list[tuple[str, Order]]], None],
                 counted: Callable[[int], None]) -> None:
        self._journal = journal
        self._send = send
        self._counted = counted
        self.waiting: Unwritten | None = None

    def write(self, changed: list[Job], orders: list[tuple[str, Order]], result: CycleResult) -> None:
        """Write a cycle's jobs on the caller's thread (tests, the simulator); StoreUnavailable, the cycle kept,
        if the store refuses."""
        try:
            self._journal.write(changed)
        except StoreUnavailable as exc:
            self.keep(changed, orders, result, exc)
            raise

    def keep(self, changed: list[Job], orders: list[tuple[str, Order]], result: CycleResult,
             exc: StoreUnavailable) -> None:
        """Keep a cycle whose write failed; its jobs stay as committed in memory (holding their room)."""
        self.waiting = Unwritten(changed, orders, result, retry_at=time.monotonic() + RETRY_FIRST_SECONDS)
        self._counted(-1)
        log.warning("scheduling cycle not stored: %s; its %d orders wait, and it is retried until the store "
                    "takes it", exc, len(orders))

    def retry(self) -> None:
        """Write the waiting cycle's jobs (their current state) and send its orders; StoreUnavailable again if
        the store still refuses."""
        try:
            self._journal.write(self._waited().changed)
        except StoreUnavailable:
            self._still_refused()
            raise
        self._stored()

    async def retry_async(self) -> bool:
        """Whether the waiting cycle is stored now (its orders sent); not tried before its backoff is over."""
        if time.monotonic() < self._waited().retry_at:
            return False
        try:
            await self._journal.commit(self._waited().changed)
        except StoreUnavailable:
            self._still_refused()
            return False
        self._stored()
        return True

    def _waited(self) -> Unwritten:
        assert self.waiting is not None
        return self.waiting

    def _still_refused(self) -> None:
        u = self._waited()
        u.failures += 1
        u.retry_at = time.monotonic() + min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** u.failures)

    def _stored(self) -> None:
        u = self._waited()
        self.waiting = None
        self._counted(1)
        log.info("scheduling cycle stored after %d failed writes: sending its %d orders", u.failures, len(u.orders))
        self._send(u.changed, u.orders)


__all__ = ["RETRY_FIRST_SECONDS", "RETRY_MAX_SECONDS", "Unwritten", "UnwrittenCycle"]
