"""Warnings a valid submission gets about where it would run: a queue named like a declared one, a latency budget
no member's region meets, a region no member is in.

Why a module of its own: intake (server/intake.py) accepts or refuses a job, and these are neither; each says a
likely typo or a wait the user would otherwise learn of only from a pending reason. Pure over the spec, the
policy and the fleet's regions; moved verbatim out of intake.py when it passed 600 lines (review of stop 60).
"""

from __future__ import annotations

import difflib

from federator.model import JobSpec
from federator.scheduler import SchedulerConfig


def queue_warnings(queue: str, config: SchedulerConfig) -> list[str]:
    """A queue the policy (or a Queue object) does not declare, named like one it does: most likely a typo, which
    would move the job out of its team's quota and fair share into defaultQueue's (outside QA, ML user F11)."""
    if queue in config.queues:
        return []
    close = difflib.get_close_matches(queue, list(config.queues), n=1, cutoff=0.75)
    if not close:
        return []
    return [f"spec.queue: {queue!r} is not a declared queue (did you mean {close[0]!r}?); it runs with "
            "defaultQueue's weight and quota, not those of a declared queue"]


def latency_warnings(spec: JobSpec, config: SchedulerConfig, regions: set[str]) -> list[str]:
    """A latency budget no member's region meets now (the policy's `regions.latencyMs` knows no latency from the
    users' region, or none within the budget): the job is valid, and waits until one does, as LatencyBudget then
    says; the user hears it at submit, as for a model no member has."""
    if not spec.max_latency_ms or not regions:
        return []
    known = sorted((ms, r) for r in regions if (ms := config.latency_ms(spec.user_region, r)) is not None)
    if known and known[0][0] <= spec.max_latency_ms:
        return []
    why = (f"the nearest, {known[0][1]}, is {known[0][0]} ms away" if known else
           f"the policy's regions.latencyMs knows no latency from {spec.user_region} to any of them")
    return [f"spec.regions.maxLatencyMs: no member cluster's region is within {spec.max_latency_ms} ms of "
            f"{spec.user_region} ({why}); the job waits until one is"]


def region_warnings(spec: JobSpec, regions: set[str], config: SchedulerConfig) -> list[str]:
    """A preferred or users' region no member cluster is in (a typo: `wset`): the job is valid and places as if the
    region were not named, so the user hears it at submit (outside QA, inference F8). The users' region may well
    have no cluster (users in a province without a data centre): it is said only when the policy's latencies do
    not name it either. Said once some cluster is known, listing at most 12 of the regions there are."""
    if not regions:
        return []
    latencies = {r for pair in config.region_latency_ms for r in pair}
    known = sorted(regions)
    shown = ", ".join(known[:12]) + (f" and {len(known) - 12} more" if len(known) > 12 else "")
    named = [(f"spec.regions.preferred[{i}]", r) for i, r in enumerate(spec.preferred_regions)]
    if spec.user_region and spec.user_region not in latencies and not spec.max_latency_ms:  # else latency_warnings
        named.append(("spec.regions.user", spec.user_region))
    return [f"{field}: no member cluster is in region {region!r} (regions: {shown}); check the name"
            for field, region in named if region not in regions]


__all__ = ["latency_warnings", "queue_warnings", "region_warnings"]
