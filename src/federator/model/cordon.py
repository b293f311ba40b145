"""A member cluster an operator took out of scheduling (server/cordons.py says what it does and why)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cordon:
    """Why a cluster takes no new work: who said so, when (seconds since the epoch), and their words."""

    by: str
    at: float
    reason: str = ""

    def describe(self) -> str:
        return f"cordoned by {self.by}" + (f": {self.reason}" if self.reason else "")


__all__ = ["Cordon"]
