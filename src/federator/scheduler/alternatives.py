"""Which accelerators a placement takes: the Assignment, and the job's alternatives across vendors.

A job may list alternatives (`spec.accelerators`: 8 x H100, or 16 x Ascend910B
with its own image), most preferred first. The cycle tries them in that order
as variants of one request, so a job pinned to one model behaves exactly as
before alternatives existed, and the Assignment records the one chosen: its
pool's vendor and resource name, the count per replica, and its index.

The one-count form (`nvidia.com/gpu: 8`, with or without `acceleratorModels`) names a
resource, and a resource belongs to one vendor: such a job runs on that
vendor's pools only (`SchedulerConfig.legacy_vendor`), never on an Ascend or
AMD pool that happens to be free. Other vendors need `spec.accelerators`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

from federator.model import ClusterInfo, JobSpec, Reason, ReasonCode, Resources, partition_worth
from federator.scheduler.framework import OTHER_VENDORS_ONLY, PlacementRequest
from federator.security.podsecurity_member import needed_by_texts


@dataclass(frozen=True, slots=True)
class Assignment:
    """Replicas of one job bound to one cluster: becomes a Placement."""

    cluster: str
    region: str
    replicas: int
    accelerator_model: str
    accelerator_vendor: str = ""
    accelerator_resource: str = ""  # what the pods request: the pool's resource name
    accelerator_milli: int = 0  # per replica, under the chosen alternative
    alternative: int = 0  # index into spec.accelerators (0 when the spec lists none)
    unit_milli: int = 0  # a partition pool's (MIG, vNPU) worth of one partition; 0 for whole or shared devices


def assign(cluster: ClusterInfo, replicas: int, model: str, request: PlacementRequest) -> Assignment:
    """An Assignment naming the pool's vendor and resource, the request's count per replica, and what one of the
    pool's partitions is worth (what the replicas hold, `model.held_milli`)."""
    pool = cluster.capacity.pool(model) if model else None
    return Assignment(cluster.name, cluster.region, replicas, model,
                      pool.vendor if pool else "", pool.resource_name if pool else "",
                      request.accelerator_milli if model else 0, request.alternative, partition_worth(pool))



@lru_cache(maxsize=1 << 14)
def variant_spec(spec: JobSpec, i: int) -> JobSpec:
    """The job as if it had asked for alternative `i` only (its count, its model): what filters,
    scores, quotas and reservations read. The original spec (with every alternative and its
    template) stays with the job; the placement records `i`."""
    a = spec.accelerators[i]
    return replace(spec, resources=replace(spec.resources, accelerator_milli=a.milli),
                   accelerator_models=(a.model,) if a.model else (), accelerators=())


def first_ask(spec: JobSpec) -> tuple[Resources, tuple[str, ...]]:
    """What a job asks per replica and the models it accepts, as the cycle first tries it: its own resources
    and models, or with `spec.accelerators` its first (most preferred) alternative's. Every one-count job of a
    vendor other than the legacy one is such a list of one, whose `spec.resources` asks no accelerator: read
    from those, the cycle's demand saw a pending Ascend fraction as CPU-only work (vendqa61 V2)."""
    if not spec.accelerators:
        return spec.resources, spec.accelerator_models
    first = variant_spec(spec, 0)
    return first.resources, first.accelerator_models


def accepted_models(spec: JobSpec, alternative: int = 0) -> tuple[str, ...]:
    """The models a job accepts under its alternative `alternative` (() = any of the alternative's vendor),
    or its `spec.accelerator_models` when it lists no alternatives: what a placed job's Allocation says it wanted,
    so that its shape counts in the demand of the models it can use, not of every model (vendqa61 V2)."""
    alts = spec.accelerators
    if not alts:
        return spec.accelerator_models
    model = alts[alternative if 0 <= alternative < len(alts) else 0].model
    return (model,) if model else ()


def variants(request: PlacementRequest, legacy_vendor: str = "") -> list[PlacementRequest]:
    """One request per alternative, most preferred first; for a job without alternatives, the request
    itself, bound to `legacy_vendor` (the vendor of the one-count form's resource) if it asks for any."""
    if not request.spec.accelerators:
        return [_legacy(request, legacy_vendor)]
    return [variant(request, i) for i in range(len(request.spec.accelerators))]


def variant(request: PlacementRequest, i: int) -> PlacementRequest:
    """The request for alternative `i` alone (built when tried: most jobs place on their first). What its pod
    template asks of a member's pod security level is read here, where the alternative's template still is."""
    s = request.spec
    a = s.accelerators[i]
    return replace(request, spec=variant_spec(s, i), alternative=i, vendor=a.vendor, resource_name=a.resource_name,
                   min_memory_mib=a.min_memory_mib,
                   pod_security=needed_by_texts(s.pod_template_json, a.pod_template_json, s.workload_json))


def _legacy(request: PlacementRequest, legacy_vendor: str) -> PlacementRequest:
    if legacy_vendor and request.accelerator_milli and not request.vendor:
        return replace(request, vendor=legacy_vendor)
    return request


Outcome = tuple[Assignment, ...] | Reason


def first_that_fits(request: PlacementRequest, place: Callable[[PlacementRequest], Outcome],
                    legacy_vendor: str = "") -> tuple[PlacementRequest, Outcome]:
    """Try the request's alternatives in order; the first that places wins. When none does, the
    reason is the first alternative's code with every alternative's story."""
    alts = request.spec.accelerators
    if not alts:
        one = _legacy(request, legacy_vendor)
        outcome = place(one)
        if (isinstance(outcome, Reason) and one.vendor and outcome.code is ReasonCode.ACCELERATOR_UNAVAILABLE
                and OTHER_VENDORS_ONLY in outcome.message):
            outcome = Reason(outcome.code, f"{outcome.message} (the one-count form asks for {one.vendor} "
                                           "devices; list other vendors' models in spec.accelerators)")
        return one, outcome
    first = variant(request, 0)
    reasons: list[Reason] = []
    for i in range(len(alts)):
        tried = first if i == 0 else variant(request, i)
        outcome = place(tried)
        if not isinstance(outcome, Reason):
            return tried, outcome
        reasons.append(outcome)
    if len(reasons) == 1:
        return first, reasons[0]
    story = "; ".join(f"alternative {i + 1} ({alts[i].describe()}): {r.message}" for i, r in enumerate(reasons))
    return first, Reason(reasons[0].code, story)
