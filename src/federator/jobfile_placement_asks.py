"""`spec.regions.weights` and `spec.prefer` of a job file (a FederatedJob's too): read and checked, and written back.

Why its own module: jobfile.py is long, and the two asks are a concern of their own (model/placement_asks.py says
what they mean, scheduler/weights.py and scheduler/cheapest.py keep them). As the rest of the job file, a bad value
is named by its field path and what it must be, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from federator.model import MAX_REGION_WEIGHT, MAX_WEIGHTED_REGIONS, JobKind, Preference
from federator.security.limits import valid_region

WEIGHTS = "spec.regions.weights"
PREFER = "spec.prefer"

Bad = Callable[[str, str], None]


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_region_weights(value: object, bad: Bad, *, kind: JobKind, allowed: tuple[str, ...],
                         others: Mapping[str, bool]) -> tuple[tuple[str, int], ...]:
    """spec.regions.weights: region -> weight (1 to MAX_REGION_WEIGHT), at most MAX_WEIGHTED_REGIONS; inference
    only; each region within spec.regions.allowed (when given); none of `others` (the region asks the weights
    replace: field name -> whether the job sets it). Absent or empty = no weights."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        bad(WEIGHTS, f"must be a mapping of region name to weight (east: 2, west: 1), got {_shown(value)}")
        return ()
    if not value:
        return ()
    if len(value) > MAX_WEIGHTED_REGIONS:
        bad(WEIGHTS, f"at most {MAX_WEIGHTED_REGIONS} regions, got {len(value)}")
        return ()
    out: list[tuple[str, int]] = []
    for region, weight in value.items():
        if not isinstance(region, str) or not valid_region(region):
            bad(f"{WEIGHTS}.{str(region)[:63]}", "must be a region name (a lower-case DNS label of at most 63 "
                                                 "characters, as agents' Hellos give)")
            continue
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_REGION_WEIGHT:
            bad(f"{WEIGHTS}.{region}", f"must be an integer from 1 to {MAX_REGION_WEIGHT} (the region's share of "
                                       f"the replicas, in proportion to the others'), got {_shown(weight)}")
            continue
        if allowed and region not in allowed:
            bad(f"{WEIGHTS}.{region}", f"is not in spec.regions.allowed ({', '.join(allowed)}): the job may "
                                       f"not run there")
            continue
        out.append((region, weight))
    if kind is not JobKind.INFERENCE:
        bad(WEIGHTS, "applies to inference jobs only (a training gang runs in one cluster)")
        return ()
    given = [name for name, set_ in others.items() if set_]
    if given:
        bad(WEIGHTS, f"decides alone how the replicas split over regions: leave out {', '.join(given)} "
                     f"(or the weights)")
        return ()
    return tuple(sorted(out)) if len(out) == len(value) else ()


def parse_prefer(value: object, bad: Bad) -> Preference:
    """spec.prefer: "cheapest", or absent (the operator's policy)."""
    if value is None or value == "":
        return Preference.POLICY
    known = [p.value for p in Preference if p.value]
    if not isinstance(value, str) or value not in known:
        bad(PREFER, f"must be one of {', '.join(known)} (or left out: the operator's policy decides), "
                    f"got {_shown(value)}")
        return Preference.POLICY
    return Preference(value)


def weights_document(weights: tuple[tuple[str, int], ...]) -> dict[str, Any]:
    """spec.regions.weights as a job file writes it (what `parse_region_weights` reads back)."""
    return dict(weights)


__all__ = ["PREFER", "WEIGHTS", "parse_prefer", "parse_region_weights", "weights_document"]
