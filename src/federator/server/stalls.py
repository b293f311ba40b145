"""How long the federator's own event loop was stalled: leases are not charged for it.

An agent's lease is judged by when its last message was applied
(`ClusterRecord.last_seen_at`). While the loop is held (a long computation, a
flood of reports, a swapped-out process), agents' messages wait unread in the
transport, and once the loop runs again `check_leases` could find healthy
agents silent for the length of the stall and make them Partitioned, then
Lost, their jobs re-queued: the federator blaming members for its own stall.
A monitor task wakes every `INTERVAL` and records each time it woke late by
more than `THRESHOLD` (and a stall still going on, from the monitor's last
turn); `check_leases` subtracts the stall time since a lease's last renewal
from the silence it judges.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

INTERVAL = 0.1
THRESHOLD = 0.25  # less is the loop's ordinary jitter, not a stall
KEEP_SECONDS = 3_600.0  # stalls older than this no longer matter to any lease (lease + lost_after are far less)


class LoopStalls:
    """Stalls of the event loop, on the federator's clock (`clock`), measured on a monotonic one."""

    def __init__(self, clock: Callable[[], float], monotonic: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._stalls: deque[tuple[float, float]] = deque()  # (ended at, on `clock`; seconds stalled)
        self._beat: float | None = None  # the monitor's last turn (monotonic); None: not watching

    def record(self, *, ended_at: float, seconds: float) -> None:
        self._stalls.append((ended_at, seconds))
        while self._stalls and self._stalls[0][0] < ended_at - KEEP_SECONDS:
            self._stalls.popleft()

    def since(self, at: float) -> float:
        """Seconds the loop was stalled after `at` (stalls that ended after it), including one still going on."""
        total = sum(seconds for ended, seconds in self._stalls if ended > at)
        if self._beat is not None:  # the monitor has not run for this long: the loop is held right now
            ongoing = self._monotonic() - self._beat - INTERVAL
            if ongoing > THRESHOLD:
                total += ongoing
        return total

    async def watch(self) -> None:
        """Run for as long as the federator does."""
        self._beat = self._monotonic()
        while True:
            await asyncio.sleep(INTERVAL)
            now = self._monotonic()
            late = now - self._beat - INTERVAL
            self._beat = now
            if late > THRESHOLD:
                self.record(ended_at=self._clock(), seconds=late)


__all__ = ["INTERVAL", "THRESHOLD", "LoopStalls"]
