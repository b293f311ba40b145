"""What a job may ask of where its replicas go beyond the bounds: static weights per region, and the cheapest place.

Why its own module: two asks of users migrating from Karmada and SkyPilot (outside migration QA, M8 and M11).
- `spec.regions.weights` (Karmada's `replicaDivisionPreference: Weighted` with a `staticWeightList`): an inference
  job's replicas split over the regions named, in proportion to their weights ("east: 2, west: 1"), and only
  there. scheduler/weights.py keeps the rule (the rounding, what happens when a region lacks room).
- `spec.prefer: cheapest` (SkyPilot's default): among the places that fit, the cheapest accelerator-hour first
  (each cluster's label federator.io/price-per-accelerator-hour); scheduler/cheapest.py keeps the rule.
"""

from __future__ import annotations

from enum import StrEnum

MAX_REGION_WEIGHT = 1000
"""The heaviest weight a region may have: enough for any ratio a person writes (Karmada's are small integers)."""

MAX_WEIGHTED_REGIONS = 64
"""As many regions as spec.regions.preferred and allowed may name."""


class Preference(StrEnum):
    """spec.prefer: what decides among the places that fit. "" (the default): the operator's policy alone."""

    POLICY = ""
    CHEAPEST = "cheapest"


def weight_of(weights: tuple[tuple[str, int], ...], region: str) -> int:
    """A region's weight in spec.regions.weights (0: not named, so it takes no replica)."""
    return next((w for r, w in weights if r == region), 0)


__all__ = ["MAX_REGION_WEIGHT", "MAX_WEIGHTED_REGIONS", "Preference", "weight_of"]
