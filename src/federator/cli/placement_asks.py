"""A job's 0.19.0 placement asks (spec.regions.weights, spec.prefer) as the CLI handles them: kept, and explained.

Why its own module: a federator before 0.19.0 drops the unknown fields of a JobSpec and places the job by its
policy alone; the user asked for a split or the cheapest place and would not learn it was lost. `federator submit`
reads the job the Submit returned (as it does for spec.failurePolicy) and takes it back when an ask is missing.
And `federator get job NAME` says where such a job went and why (`asked_lines`): the replicas per weighted region
against the split asked, the price of each cluster it runs on beside the other members' (outside migration QA,
M11: "say where it went and why").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from federator.api.v1 import types_pb2
from federator.model import PRICE_LABELS, Job, JobSpec, parse_price


def dropped_asks(sent: types_pb2.JobSpec, kept: JobSpec) -> str:
    """The job-file names of the asks `sent` made that `kept` (the federator's job) lacks; "" when none."""
    lost = []
    if sent.region_weights and not kept.region_weights:
        lost.append("spec.regions.weights")
    if sent.prefer and not kept.prefer:
        lost.append("spec.prefer")
    return " and ".join(lost)


def _price(labels: Mapping[str, str]) -> float | None:
    raw = next((labels[k] for k in PRICE_LABELS if k in labels), None)
    return parse_price(raw) if raw is not None else None


def asked_lines(job: Job, clusters: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """What `get job NAME` adds under its table for a job with weights or `prefer: cheapest` that holds placements
    (none otherwise): each weighted region's replicas of its share; the price of each cluster it runs on, and the
    cheapest other Ready member's. `clusters`: `get clusters`' dicts, or None when the caller may not list them."""
    if not job.placements or not (job.spec.region_weights or job.spec.prefer):
        return []
    out = []
    if job.spec.region_weights:
        held: dict[str, int] = {}
        for p in job.placements:
            held[p.region] = held.get(p.region, 0) + p.replicas
        asked = ", ".join(f"{r}: {w}" for r, w in job.spec.region_weights)
        out.append(f"spec.regions.weights ({asked}): " + ", ".join(
            f"{r} {held.get(r, 0)}" for r, _ in job.spec.region_weights) + f" of {job.spec.replicas} replicas")
    if job.spec.prefer:
        if clusters is None:
            out.append(f"spec.prefer: {job.spec.prefer.value}: placed on "
                       f"{', '.join(dict.fromkeys(p.cluster for p in job.placements))} (the prices need "
                       "`federator get clusters`, which you may not list)")
            return out
        prices = {str(c["name"]): _price(c.get("labels") or {}) for c in clusters}
        on = list(dict.fromkeys(p.cluster for p in job.placements))

        def shown(name: str) -> str:
            price = prices.get(name)
            return f"{name} at {price:g}/accelerator-hour" if price is not None else f"{name} (no price)"

        others = sorted((p, n) for n, p in prices.items() if n not in on and p is not None)
        dearest = max((float("inf") if prices.get(o) is None else prices[o] or 0.0) for o in on)
        cheaper = [n for p, n in others if p < dearest]
        line = f"spec.prefer: {job.spec.prefer.value}: placed on {', '.join(shown(n) for n in on)}"
        if cheaper:  # a cheaper member that did not fit then (room, model, bounds), or freed since
            line += (f"; cheaper now: {', '.join(shown(n) for n in cheaper[:3])} (none fit the job when it was "
                     "placed: room, model or its bounds; or room came since, and a placed job is not moved)")
        elif others:
            line += f"; every other priced member costs more (next: {shown(others[0][1])})"
        out.append(line)
    return out


__all__ = ["asked_lines", "dropped_asks"]
