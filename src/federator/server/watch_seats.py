"""Seats for JobService.Watch streams: at most so many per user, and at most so many in all, fairly shared.

Every open stream costs the federator memory (its frame and the digests of its last sends, 0.1-0.2 MiB:
docs/benchmarks.md "Watch streams") and, on every change, a wake and a read of the shared history; while it sends,
the loop. The per-user cap (--max-watches-per-user, 32) bounds one user, not the users together: a thousand
organisations' users at 32 each would be 32,000 streams. So the federator holds at most --max-watches streams in
all (Limits.max_watches says why its default), and refuses one more RESOURCE_EXHAUSTED with the reason
WATCHES_FULL and a RetryInfo (as a Submit's back-pressure), since another user's stream ending frees the seat.

Fair: below the last tenth of the cap, only the per-user cap applies, so one user takes at most 32 (a few users
can still fill the nine tenths); the last tenth is kept for users holding no stream at all, so while it lasts
every user who has none still gets one (a portal runs one Watch and fans it out), however many streams the
heavy users hold. 0 is no cap, for either.
"""

from __future__ import annotations

import grpc
from prometheus_client import Gauge

from federator.jobfile import shown
from federator.server.errors import Exhausted, exhausted

WATCHES_FULL_RETRY_SECONDS = 10.0
"""A Watch refused for the server's cap is retried after this (RetryInfo, `retry-after`): streams live long, and a
seat frees only when one of them ends, so sooner would mostly meet the same refusal."""


class SeatCounts:
    """Long calls open, per identity and in all, shown on `gauge`: the counting a cap of streams needs, shared by
    Watch's seats here and `federator logs --follow`'s (server/log_follow.py FollowSeats), each with its own rule
    and words for a refusal."""

    def __init__(self, per_user: int, in_all: int = 0, gauge: Gauge | None = None) -> None:
        self.per_user = per_user
        self.in_all = in_all
        self._open: dict[str, int] = {}
        self.total = 0
        if gauge is not None:
            gauge.set_function(lambda: float(self.total))

    def held(self, user: str) -> int:
        """The seats `user` holds."""
        return self._open.get(user, 0)

    def seat(self, user: str) -> None:
        """Count one more seat of `user` (its cap checked by the caller)."""
        self._open[user] = self._open.get(user, 0) + 1
        self.total += 1

    def give_back(self, user: str) -> None:
        held = self._open.get(user, 0) - 1
        if held < 0:
            return  # never taken: nothing to free
        self.total -= 1
        if held > 0:
            self._open[user] = held
        else:
            self._open.pop(user, None)


class Seats(SeatCounts):
    """Open Watch streams, per identity (`per_user`, --max-watches-per-user) and in all (`in_all`, --max-watches);
    0 is no cap. `take` answers the refusal, `give_back` frees a seat; `gauge` shows the streams open."""

    def __init__(self, per_user: int, in_all: int = 0, gauge: Gauge | None = None) -> None:
        super().__init__(per_user, in_all, gauge)
        self.kept = in_all // 10  # the last tenth: only for users holding no stream

    def take(self, user: str) -> grpc.Status | None:
        """None when `user` took a seat, else the RESOURCE_EXHAUSTED status to end the call with, naming the limit."""
        held = self.held(user)
        if self.per_user and held >= self.per_user:
            return exhausted(
                f"watch: user {shown(user)} has {held} Watch streams open, the most one user may hold "
                f"({self.per_user}, --max-watches-per-user); end one first (a portal runs one Watch and fans it out)",
                Exhausted.WATCH_LIMIT)
        refusal = self._full(held)
        if refusal:
            return exhausted(f"{refusal}; retry after {WATCHES_FULL_RETRY_SECONDS:g}s", Exhausted.WATCHES_FULL,
                             retry_after=WATCHES_FULL_RETRY_SECONDS)
        self.seat(user)
        return None

    def _full(self, held: int) -> str:
        """Why the server's cap refuses a user holding `held` streams, or ''."""
        if not self.in_all:
            return ""
        if self.total >= self.in_all:
            return (f"watch: the federator holds {self.total} Watch streams open, its limit is {self.in_all} "
                    "(--max-watches)")
        if held and self.total >= self.in_all - self.kept:
            return (f"watch: the federator holds {self.total} Watch streams open, its limit is {self.in_all} "
                    f"(--max-watches), and the last {self.kept} are kept for users holding none; this user holds "
                    f"{held}")
        return ""


__all__ = ["WATCHES_FULL_RETRY_SECONDS", "SeatCounts", "Seats"]
