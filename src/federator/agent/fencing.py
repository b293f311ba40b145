"""The agent's contact with the federator, and the checks it makes before every side effect.

Why a module of its own: a paused agent must not trust its own sense of time.
An agent frozen (SIGSTOP, a VM pause, a long GC pause, a suspended laptop)
past the federator's `--lost-after` wakes up believing it is still connected:
its stream may still be open, its socket buffer may hold a Launch the
federator sent before it gave up on the cluster, and the copies it started
before the freeze are still running (or, for simulated clusters, resume
running). Meanwhile the federator has declared the cluster Lost and re-placed
its jobs elsewhere. Everything here runs on a clock that keeps counting
through a pause (Linux CLOCK_BOOTTIME), so the agent can tell how long it was
away, and:

- `Contact.heard()` returns the gap since the previous message of the
  stream: a message that arrives after a gap longer than the fence limit may
  have waited in a buffer while the agent was frozen, so the agent fences
  (stops every placement) before it acts on anything;
- `Contact.tick()` notices a pause from the outside (the loop's clock jumped),
  so copies started before the freeze are stopped at once on resume, even
  with nothing to read;
- `Contact.order_age()` dates a Launch on the federator's clock, estimated from
  the Welcome (no clock synchronisation needed), so a stale order is refused.

The rule that makes this enough (docs/reliability.md, "Pauses"): the
federator re-places a cluster's jobs no sooner than `lost_after` after it last
heard the agent, and the agent stops them no later than `fence_limit` after it
last heard the federator, acting on no order older than `order_max_age`; with
`lost_after >= fence_limit + order_max_age` the old copy is stopped before the
replacement can start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

PAUSE_SECONDS = 2.0
"""A jump of the loop's clock this long between two ticks (0.25 s apart) means the process was paused."""


def boottime() -> float:
    """Seconds on a clock that keeps counting while the process is stopped or the machine suspended."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock) if clock is not None else time.monotonic()


class ConfigConflict(Exception):
    """The agent's --fence-after breaks the federator's rule: lost_after >= fence_after + order_max_age."""


@dataclass(frozen=True, slots=True)
class Terms:
    """What the federator's Welcome promises: how long it waits, and the bound on an order's age."""

    lease_seconds: float
    lost_after_seconds: float
    order_max_age_seconds: float
    heartbeat_interval_seconds: float

    def fence_limit(self, fence_after: float) -> float:
        """How long without the federator the agent may go before it must stop its placements.

        With --fence-after, that (refused if it breaks the rule); without, the
        longest the rule allows: on resume from a pause longer than this, the
        federator may have re-placed the cluster's jobs already.
        """
        room = self.lost_after_seconds - self.order_max_age_seconds
        if fence_after > 0 and self.lost_after_seconds > 0 and fence_after > room:
            raise ConfigConflict(
                f"--fence-after {fence_after:g} breaks the federator's rule lost_after >= fence_after + "
                f"order_max_age ({self.lost_after_seconds:g} < {fence_after:g} + {self.order_max_age_seconds:g}): "
                f"set --fence-after to at most {room:g}, or raise the federator's --lost-after")
        if fence_after > 0:
            return fence_after
        return room if room > 0 else float("inf")


class Contact:
    """When the agent last heard the federator, and the federator's clock as the agent estimates it."""

    def __init__(self, clock: Callable[[], float] = boottime, wall: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.wall = wall  # this host's wall clock: only to convert a time a member said on its own (`from_wall`)
        self.heard_at: float | None = None  # the last message of this stream (None: none yet)
        self.session_at = clock()  # when the current stream was opened
        self._tick_at = clock()
        self._sync: tuple[float, float] | None = None  # (federator clock, our clock) at the Welcome

    def session_started(self) -> None:
        self.session_at = self.clock()
        self.heard_at = None
        self._sync = None

    def heard(self, federator_time: float = 0.0, *, welcome: bool = False) -> float:
        """A message arrived: the gap since the previous one of this stream (0 for the first).

        The Welcome sets the estimate of the federator's clock; a later message's time (a Heartbeat's) may move
        it forward, never back. Forward: a pause between the Hello and the Welcome's arrival left the estimate
        behind by that pause for the whole stream, and a Launch looked younger than it was. Never back:
        Heartbeats read after a pause were sent during it, and moved back they made a stale Launch fresh."""
        now = self.clock()
        gap = 0.0 if self.heard_at is None else now - self.heard_at
        self.heard_at = now
        if welcome and federator_time > 0:
            self._sync = (federator_time, now)
        elif federator_time > 0 and self._sync is not None:
            estimate = self._sync[0] + (now - self._sync[1])
            if federator_time > estimate:
                self._sync = (federator_time, now)
        return gap

    def age(self) -> float:
        """Seconds since the last message of this stream (or since it was opened)."""
        return self.clock() - (self.heard_at if self.heard_at is not None else self.session_at)

    def federator_now(self) -> float | None:
        if self._sync is None:
            return None
        federator_time, at = self._sync
        return federator_time + (self.clock() - at)

    def from_wall(self, wall_at: float) -> float:
        """`wall_at` (unix seconds on this host's wall clock, or a member's that keeps it) on the contact clock, at
        the offset between the two now: a time the member said (a workload's end) becomes comparable with the
        times this agent noted itself, whatever the wall clock did before (a step, a pause of this process)."""
        return self.clock() - (self.wall() - wall_at)

    def order_age(self, issued_at: float) -> float | None:
        """How old an order issued at `issued_at` (federator clock) is now; None if it cannot be told."""
        now = self.federator_now()
        if now is None or issued_at <= 0:
            return None
        return now - issued_at

    def tick(self) -> float:
        """Called every quarter second: how long since the previous call (far more after a pause)."""
        now = self.clock()
        jump, self._tick_at = now - self._tick_at, now
        return jump


__all__ = ["PAUSE_SECONDS", "Contact", "ConfigConflict", "Terms", "boottime"]
