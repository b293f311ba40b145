"""A member cluster under quarantine (server/quarantine.py says what it does and why)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Held:
    """A cluster's quarantine: until when (Unix seconds, the federator's clock: steady_clock.py), and why."""

    until: float
    why: str


__all__ = ["Held"]
