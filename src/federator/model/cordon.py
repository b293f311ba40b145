"""A member cluster an operator took out of scheduling (server/cordons.py says what it does and why), and the
drain that moves its work off too (server/drains.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

SURGE_SECONDS = 600.0
"""A drain's surge bound unless its operator sets one (server/drain_surge.py): long enough for an image pull and
a model load, short of a maintenance window, and of FederatorDrainStalled's 15 minutes."""
MAX_SURGE_SECONDS = 86_400.0
"""The longest surge bound a drain may ask: a day. A drain is how an operator learns when the cluster may go down;
one that could wait for weeks would not say."""


def surge_problem(seconds: float) -> str:
    """"" when `seconds` may be a drain's surge bound, else what is wrong with it (the edge names the field)."""
    if not math.isfinite(seconds) or not 1.0 <= seconds <= MAX_SURGE_SECONDS:
        return (f"must be from 1 to {MAX_SURGE_SECONDS:.0f} seconds (a day), or 0 for the default "
                f"{SURGE_SECONDS:.0f}; got {seconds:g}")
    return ""


@dataclass(frozen=True, slots=True)
class Drain:
    """Why a cordoned cluster's federated work is being moved off: who asked, when (seconds since the epoch), and
    their words. Its own record, not the cordon's: a cluster cordoned by one admin may be drained by another,
    later and for another reason, and the jobs it moves name the drain."""

    by: str
    at: float
    reason: str = ""
    # How long the drain waits for a serving job's replacements before it ends the job's replicas on the drained
    # cluster anyway (server/drain_surge.py): the operator's for this drain, else SURGE_SECONDS.
    surge_seconds: float = SURGE_SECONDS

    def describe(self) -> str:
        return f"drained by {self.by}" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True, slots=True)
class Cordon:
    """Why a cluster takes no new work: who said so, when (seconds since the epoch), and their words; `drain`
    while an admin's drain holds too. A drain is part of the cordon because it cannot hold without one (work
    moved off a cluster that takes new work would come back) and one Uncordon ends both.

    A maintenance window (`window_from`, `window_until`, Unix seconds; 0: not given) is a cordon that holds only
    from `window_from` until `window_until` (server/maintenance_windows.py): before it, the cluster takes only the
    jobs whose run bound ends by `window_from`; after it, the cordon is over. A drain never has one."""

    by: str
    at: float
    reason: str = ""
    drain: Drain | None = None
    window_from: float = 0.0
    window_until: float = 0.0

    def ahead(self, now: float) -> bool:
        """Whether this is a maintenance window that has not begun at `now`."""
        return self.window_from > now

    def over(self, now: float) -> bool:
        """Whether this is a maintenance window that has ended at `now`."""
        return 0.0 < self.window_until <= now

    def in_force(self, now: float) -> bool:
        """Whether the cluster takes no new work for this cordon at `now`: always, but for a window's before and
        after."""
        return not self.ahead(now) and not self.over(now)

    def began(self) -> float:
        """When the cordon holds from: its window's start, else when it was asked."""
        return self.window_from or self.at

    def describe(self) -> str:
        return f"cordoned by {self.by}" + (f": {self.reason}" if self.reason else "")


__all__ = ["MAX_SURGE_SECONDS", "SURGE_SECONDS", "Cordon", "Drain", "surge_problem"]
