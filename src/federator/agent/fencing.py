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
  The Welcome's own travel is bounded NTP-style, by the round trip of the
  stream's opening less the federator's time between taking the stream (and
  its Hello) up and sending the Welcome (`Welcome.hello_received_at`, since
  0.21.0), and the estimate takes
  the upper bound: dated from `federator_time` alone, a Welcome delayed D in
  the network made every order of the stream look up to D younger than it was.

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
        self._sent: tuple[float, float] | None = None  # the same, the Welcome dated as sent: never ahead (`said_now`)
        self._hello_at: float | None = None  # when this stream, and so its Hello, was opened (None: none yet)
        self.welcome_travel = 0.0  # the bound taken on the Welcome's travel (0: none could be told)

    def session_started(self) -> None:
        self.session_at = self.clock()
        self.heard_at = None
        self._sync = None
        self._sent = None
        self._hello_at = self.session_at  # before the call: the round trip that bounds the Welcome's starts here
        self.welcome_travel = 0.0

    def heard(self, federator_time: float = 0.0, *, welcome: bool = False, hello_received_at: float = 0.0) -> float:
        """A message arrived: the gap since the previous one of this stream (0 for the first).

        The Welcome sets the estimate of the federator's clock: its `federator_time` moved on by the most it can
        have travelled (`travel_bound`); a later message's time (a Heartbeat's) may move the estimate forward,
        never back. Forward: with no bound on the Welcome's travel (a federator that does not say
        `hello_received_at`), a delay or a pause between the Hello and the Welcome's arrival left the estimate
        behind by that delay for the whole stream, and a Launch looked younger than it was. Never back:
        Heartbeats read after a pause were sent during it, and moved back they made a stale Launch fresh."""
        now = self.clock()
        gap = 0.0 if self.heard_at is None else now - self.heard_at
        self.heard_at = now
        if welcome and federator_time > 0:
            self.welcome_travel = self.travel_bound(now, federator_time, hello_received_at)
            self._sync = (federator_time + self.welcome_travel, now)
            self._sent = (federator_time, now)
        elif federator_time > 0 and self._sync is not None:
            estimate = self._sync[0] + (now - self._sync[1])
            if federator_time > estimate:
                self._sync = (federator_time, now)
            if self._sent is not None and federator_time > self._sent[0] + (now - self._sent[1]):
                self._sent = (federator_time, now)
        return gap

    def travel_bound(self, arrived_at: float, federator_time: float, hello_received_at: float) -> float:
        """The most the Welcome can have spent on its way: the Hello's round trip less the federator's part.

        NTP's bound: the stream and its Hello left at `_hello_at` (noted before the call was opened) and the
        Welcome arrived at `arrived_at` (our clock); in between the federator held the stream from
        `hello_received_at` (when its handler took it up, so after we noted ours) to `federator_time` (its
        clock: a difference of two readings of one clock, so no synchronisation is needed). What is left of
        the round trip was travel, the Hello's and the Welcome's, so the Welcome's own is at most all of it.

        Why the upper bound, not the midpoint (half the round trip, NTP's guess at the offset): the estimate
        exists to refuse orders older than order_max_age, on which the fencing rule rests (lost_after >=
        fence_after + order_max_age). Taken at the upper bound the estimate is never behind the federator's
        clock, so no order looks younger than it is, and one looks at most one round trip older (a fresh
        order within a round trip of its bound is refused, or held under "launch-confirmation"). At the
        midpoint a Welcome slow one way (a queue on the federator's side of a WAN link) would still leave
        orders up to half the round trip younger than they are: a stale one could start.

        Without the federator's side (a federator before 0.21.0: 0), or without a Hello sent on this stream,
        0: the Welcome dated as sent, as before. The federator's time between reading the Hello and sending
        the Welcome (its busy loop answering the Hello, up to tens of seconds at a national backlog) is left
        out: counted as travel it made every fresh order and confirming Heartbeat of the stream look stale,
        for good (the estimate only moves forward). What a loaded federator loop made the stream wait before
        its handler ran cannot be told from travel (measured: about half of its delay in answering a Hello),
        and is counted: the bound errs long. A `hello_received_at` after `federator_time` (the
        federator's clock stepped back, or nonsense) counts none of the round trip as the federator's, the
        safe side; one that leaves a negative round trip (its clock stepped forward) bounds nothing: 0."""
        if hello_received_at <= 0 or self._hello_at is None:
            return 0.0
        held = max(0.0, federator_time - hello_received_at)
        return max(0.0, (arrived_at - self._hello_at) - held)

    def age(self) -> float:
        """Seconds since the last message of this stream (or since it was opened)."""
        return self.clock() - (self.heard_at if self.heard_at is not None else self.session_at)

    def federator_now(self) -> float | None:
        if self._sync is None:
            return None
        federator_time, at = self._sync
        return federator_time + (self.clock() - at)

    def said_now(self) -> float | None:
        """The federator's clock now, as its messages dated it: each taken as sent, so never ahead of it (behind by
        a message's travel at most). For a time this agent says (JobUpdate.ended_at), not for an order's age: the
        federator bills to it, and `federator_now`, ahead by up to the Hello's round trip (the Welcome's travel
        bound, which errs long on a loaded federator), dated every end that much late: a job billed past its
        workload's end (tests/server/test_end_time_workload_grpc.py, 0.2-0.4 s on a loaded machine)."""
        if self._sent is None:
            return None
        federator_time, at = self._sent
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
