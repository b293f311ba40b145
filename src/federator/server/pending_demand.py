"""What the waiting jobs ask for, by accelerator vendor and model: `federator_pending_accelerators`.

Why: the network exists to put idle accelerators to work, and its planners and SREs must see, from the metrics
alone, where accelerators of a model sit free while jobs wanting that model wait (outside planners' QA, P3). The
pending jobs were counted by queue and reason only, so demand had no model and no unit to set against
`federator_cluster_accelerators`. Here it is counted in the same unit as that supply: whole-device equivalents, a
partition asked by name at its worth (a 1g.10gb 0.125), a fraction as asked.

The labels are bounded by the fleet and the accelerator catalog, not by what users write: a job's model is named
as a member reports it, else by its catalog entry's name (a model wanted that no member has: what a planner buys),
else `other` (a name a tenant could otherwise mint as label values); a job open to several models, or to any, is
`any` (its vendor the one its alternatives share, else `any`). A job counts its
preferred alternative only, so the sum over models is the accelerators the waiting jobs want, each once. A held job
(reason `Held`) asks for nothing until it is released, nor does one waiting on other jobs (`Dependency`) or an
array's task past its throttle (`ArrayThrottle`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from federator.catalog import catalog
from federator.model import MILLI, Job, JobPhase
from federator.model.accelerator import AcceleratorAlternative
from federator.model.cluster import AcceleratorPool, held_milli, partition_worth

ANY = "any"
OTHER = "other"


def pending_accelerators(jobs: Iterable[Job], pools: Iterable[AcceleratorPool]) -> dict[tuple[str, str], float]:
    """(vendor, model) -> accelerators the pending jobs ask for (replicas x per replica, whole-device
    equivalents). Jobs asking none (CPU only) are not counted."""
    vendors: dict[str, str] = {}
    worth: dict[str, int] = {}
    for pool in pools:
        vendors.setdefault(pool.accelerator_model, pool.vendor)
        if unit := partition_worth(pool):
            worth[pool.accelerator_model] = max(unit, worth.get(pool.accelerator_model, 0))
    pending = JobPhase.PENDING
    # One key per distinct ask: a national backlog is 100,000 jobs but a few hundred shapes, and a scrape runs on
    # the event loop.
    asks = Counter((job.spec.accelerators, job.spec.resources.accelerator_milli, job.spec.accelerator_models,
                    job.spec.replicas) for job in jobs if job.phase is pending and job.hold is None
                    and not job.waiting_on and not job.throttled)
    demand: dict[tuple[str, str], float] = {}
    for (accelerators, milli, models, replicas), n in asks.items():
        alternatives = accelerators or _legacy(milli, models)
        if not alternatives:
            continue
        label = _label(alternatives, vendors)
        first = alternatives[0]
        per_replica = held_milli(first.milli, worth.get(first.model, 0)) if label[1] not in (ANY, OTHER) \
            else first.milli
        demand[label] = demand.get(label, 0.0) + n * replicas * per_replica / MILLI
    return demand


def _legacy(milli: int, models: tuple[str, ...]) -> tuple[AcceleratorAlternative, ...]:
    """The one-count form (spec.resources with acceleratorModels) as alternatives: one per model, or one open."""
    if not milli:
        return ()
    return tuple(AcceleratorAlternative(milli, model=m) for m in models) or (AcceleratorAlternative(milli),)


def _label(alternatives: tuple[AcceleratorAlternative, ...], vendors: Mapping[str, str]) -> tuple[str, str]:
    """(vendor, model) a job's demand is counted under (see the module)."""
    models = {a.model for a in alternatives}
    said = {a.vendor or vendors.get(a.model, "") for a in alternatives}
    vendor = said.pop() if len(said) == 1 and "" not in said else ANY
    if vendor != ANY and vendor not in vendors.values() and catalog().vendor(vendor) is None:
        vendor = OTHER  # a vendor neither a member nor the catalog knows: bounded as a model is
    if len(models) != 1 or "" in models or any(a.min_memory_mib for a in alternatives):
        return vendor, ANY
    model = models.pop()
    if model in vendors:
        return vendors[model], model
    entry = catalog().find_model(model, alternatives[0].vendor or None)  # wanted, and no member has it
    return (entry.vendor, entry.name) if entry is not None else (OTHER, OTHER)


__all__ = ["ANY", "OTHER", "pending_accelerators"]
