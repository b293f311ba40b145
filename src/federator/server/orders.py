"""Orders from the federator to one agent, before they become wire messages."""

from __future__ import annotations

from dataclasses import dataclass

from federator.model import JobSpec, Placement


@dataclass(frozen=True, slots=True)
class LaunchOrder:
    placement: Placement
    spec: JobSpec


@dataclass(frozen=True, slots=True)
class CancelOrder:
    placement_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorNotice:
    """An agent message the federator refused: sent back on the stream as an Error (the stream goes on)."""

    reason: str
    message: str
    placement_id: str = ""


Order = LaunchOrder | CancelOrder | ErrorNotice
