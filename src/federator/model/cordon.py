"""A member cluster an operator took out of scheduling (server/cordons.py says what it does and why), and the
drain that moves its work off too (server/drains.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Drain:
    """Why a cordoned cluster's federated work is being moved off: who asked, when (seconds since the epoch), and
    their words. Its own record, not the cordon's: a cluster cordoned by one admin may be drained by another,
    later and for another reason, and the jobs it moves name the drain."""

    by: str
    at: float
    reason: str = ""

    def describe(self) -> str:
        return f"drained by {self.by}" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True, slots=True)
class Cordon:
    """Why a cluster takes no new work: who said so, when (seconds since the epoch), and their words; `drain`
    while an admin's drain holds too. A drain is part of the cordon because it cannot hold without one (work
    moved off a cluster that takes new work would come back) and one Uncordon ends both."""

    by: str
    at: float
    reason: str = ""
    drain: Drain | None = None

    def describe(self) -> str:
        return f"cordoned by {self.by}" + (f": {self.reason}" if self.reason else "")


__all__ = ["Cordon", "Drain"]
