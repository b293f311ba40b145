"""Data residency: the regions a job may run in, a hard bound on every placement.

Why: a job's only region fields were `regions.preferred` (a preference: replicas spill to any region when those
are full) and a latency budget from `regions.user` (a network setting: one latency figure added to the policy
let an "east only" job spill to central). Personal health data may be processed only in named provinces
(outside compliance QA, C1), so two fences, both hard:

- the job's own `spec.regions.allowed` (JobSpec.allowed_regions);
- its queue's `allowedRegions` (QueueConfig.allowed_regions), the operator's fence for an organisation, read
  from the policy as it stands at each cycle: a reload that narrows it holds every later placement inside.

A replica goes only to a cluster whose region both allow (`permitted`). The AllowedRegions filter is always on
(`Scheduler` adds it to whatever `filters` the policy lists), and every path that chooses a cluster is a
scheduler cycle (the turn's cycle, re-queues, preemption, server/drain_surge.py, server/rebalancing.py,
server/moving.py, scale-ups), so none places outside. The queue's fence rides on the request (`fenced`) so
that requests of one shape in two queues with different fences are never judged alike.

The latency budget's filter (RegionLatency) lives here too: the other bound on where a job may run, hard on
latency, though not a residency control (a policy's latency table is the network's to change).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from federator.model import ClusterInfo, Reason, ReasonCode
from federator.scheduler.framework import CycleContext, PlacementRequest

if TYPE_CHECKING:  # config imports the plugins, which import this
    from federator.scheduler.config import SchedulerConfig

ALWAYS_FILTERS = ("AllowedRegions", "ClusterAffinity", "SameAs")  # spec.clusters too (cluster_affinity.py, same_as.py)
"""Filters a cycle runs whatever the policy's `filters` list: a hard bound no configuration may drop."""
FIELD = "spec.regions.allowed"
QUEUE_FIELD = "allowedRegions"


def queue_fence(config: SchedulerConfig, queue: str) -> tuple[str, ...]:
    """The regions a queue's jobs may run in; () = any."""
    return config.queues.get(queue, config.default_queue).allowed_regions


def permitted(job_allowed: Sequence[str], fence: Sequence[str]) -> frozenset[str] | None:
    """The regions both the job and its queue allow; None = any region."""
    if not job_allowed and not fence:
        return None
    if not fence:
        return frozenset(job_allowed)
    if not job_allowed:
        return frozenset(fence)
    return frozenset(job_allowed) & frozenset(fence)


def fenced(requests: Sequence[PlacementRequest], config: SchedulerConfig) -> Sequence[PlacementRequest]:
    """The requests with their queue's fence on them (`PlacementRequest.queue_fence`); the same list when no
    queue has one (the common case costs one pass over the queues)."""
    if not any(q.allowed_regions for q in (*config.queues.values(), config.default_queue)):
        return requests
    return [replace(r, queue_fence=f) if (f := queue_fence(config, r.spec.queue)) != r.queue_fence else r
            for r in requests]


def refusal(region: str, job_allowed: Sequence[str], fence: Sequence[str]) -> str | None:
    """Why a replica may not run in `region`, naming the field that says so; None when it may."""
    allowed = permitted(job_allowed, fence)
    if allowed is None or region in allowed:
        return None
    if job_allowed and region not in job_allowed:
        return (f"region {region} is not among the regions this job may run in "
                f"({', '.join(sorted(job_allowed))}): {FIELD}")
    return (f"region {region} is not among the regions its queue may run in "
            f"({', '.join(sorted(fence))}): the queue's {QUEUE_FIELD}")


def submit_warnings(allowed: Sequence[str], preferred: Sequence[str], fence: Sequence[str],
                    regions: set[str]) -> list[str]:
    """What Submit warns of a valid job's region fields (server/intake.py): a preferred region it may not run in
    (never used), and an allowed region no member cluster is in (a typo: the job waits for ever there), once
    some cluster is known."""
    out: list[str] = []
    inside = permitted(allowed, fence)
    if inside is not None:
        shown = ", ".join(sorted(inside)) or "none"
        out += [f"spec.regions.preferred[{i}]: {r!r} is not among the regions the job may run in ({shown}): it is "
                f"never used" for i, r in enumerate(preferred) if r not in inside]
    if regions:
        out += [f"{FIELD}[{i}]: no member cluster is in region {r!r}; check the name"
                for i, r in enumerate(allowed) if r not in regions]
    return out


@dataclass(frozen=True, slots=True)
class AllowedRegions:
    """A Filter: only clusters in a region the job (spec.regions.allowed) and its queue (allowedRegions) allow."""

    name: str = "AllowedRegions"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        why = refusal(cluster.region, request.spec.allowed_regions, request.queue_fence)
        return None if why is None else Reason(ReasonCode.REGION_UNAVAILABLE, f"{cluster.name}: {why}")


@dataclass(frozen=True, slots=True)
class RegionLatency:
    """With a latency budget, only regions within it of the users' region (the policy's matrix)."""

    name: str = "RegionLatency"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        spec = request.spec
        if not spec.max_latency_ms:
            return None
        ms = ctx.latency_ms(spec.user_region, cluster.region)
        if ms is None:
            return Reason(ReasonCode.LATENCY_BUDGET,
                          f"{cluster.name}: no latency known from {spec.user_region} to {cluster.region}")
        if ms > spec.max_latency_ms:
            return Reason(ReasonCode.LATENCY_BUDGET,
                          f"{cluster.name}: {cluster.region} is {ms}ms from {spec.user_region}, "
                          f"budget {spec.max_latency_ms}ms")
        return None
