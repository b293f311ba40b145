"""Submit-time checks of the accelerators a job names, against the catalog and the fleet.

Why here and not in the scheduler: a model name with a typo (`H10O`) would
otherwise wait as Pending forever with "no cluster has H10O nodes"; the user
should hear at once, with the field named and the models the fleet has. A
model the catalog knows is accepted even when no member has it now: members
come and go, and a job may wait for one. Valid but likely wrong jobs get
warnings, not refusals (alternatives of different vendors sharing one image
may be a multi-arch build).

Submit is on the hot path: the fleet's model set is cached and rebuilt only
after a member reports a different set of pools, the catalog's answers are
memoized per name by the catalog itself, and nothing here looks at jobs. The
fleet-fit warning (could any member hold the job even empty?) is memoized per
job shape until a member's pools change shape (`fleet_shape`: devices, nodes,
model; not free room) or its largest node its size: it built a snapshot of every member and judged every
pool on each Submit, O(fleet) for an answer that changes when the fleet does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace

from federator.catalog import catalog
from federator.catalog.model_names import nearest_models
from federator.jobfile import placeholder_problem
from federator.model import (
    AcceleratorAlternative,
    ClusterCapacity,
    ClusterInfo,
    ClusterState,
    JobId,
    JobSpec,
    ReasonCode,
)
from federator.model.accelerator import accepts_model
from federator.scheduler import PlacementRequest, Scheduler, Snapshot
from federator.scheduler.fleet_fit import fleet_shape, never_coded
from federator.server.workload_roles import reserved_as

FleetModel = tuple[str, str, str]  # (vendor, model, family) of a pool a member reported
Member = tuple[str, str, ClusterState, ClusterCapacity | None]  # name, region, state, last report
FITS_KEPT = 10_000  # fleet-fit answers kept per fleet shape (job shapes; a few hundred in practice)
log = logging.getLogger("federator.server")
# The field a fleet-fit warning names when a replica's CPU or memory is more than any member's largest node has
_HOST_FIELDS: dict[ReasonCode | None, str] = {ReasonCode.INSUFFICIENT_CPU: "spec.resources.cpu",
                ReasonCode.INSUFFICIENT_MEMORY: "spec.resources.memory"}


def asked_models(spec: JobSpec) -> list[tuple[str, str, str]]:
    """(field, model, vendor) of every model a job names, in its file's spelling of the field.

    A spec does not keep which key a file wrote its models under, so they are named by the field's name,
    `spec.acceleratorModels`, also for a file that wrote the old name `gpuModels`."""
    if spec.accelerators:
        return [(f"spec.accelerators[{i}].model", a.model, a.vendor) for i, a in enumerate(spec.accelerators)
                if a.model]
    return [(f"spec.acceleratorModels[{i}]", m, "") for i, m in enumerate(spec.accelerator_models)]


def in_fleet(model: str, vendor: str, fleet: Iterable[FleetModel]) -> bool:
    """Whether a member reported a pool that the name selects (by model or family) of that vendor ("" = any)."""
    return any(accepts_model(model, m, f) and vendor in ("", v) for v, m, f in fleet)


def near_spellings(model: str, vendor: str = "") -> list[str]:
    """The catalog's names (models, families, device words) of `vendor` ("" = any) a user most likely meant by a
    model nobody has: close by difflib (`AMD-MI300X`, `Ascend-910B`, `MI300` -> MI300X), else those the name ends
    (`910B3`, Huawei's own chip name, -> Ascend910B3). Vendor spellings were refused with no hint (vendqa61 V3)."""
    near = nearest_models(model, vendor=vendor)
    if near or len(model) < 3:
        return near
    cat = catalog()
    names = {n for m in cat.models(vendor or None) for n in (m.name, m.family) if n}
    return sorted(n for n in names if n.upper().endswith(model.upper()) and n.upper() != model.upper())[:3]


def fleet_listing(fleet: Iterable[FleetModel]) -> str:
    return ", ".join(sorted({f"{v}/{m}" for v, m, _ in fleet})) or "none (no member has reported yet)"


def model_vendor(model: str) -> str:
    """The vendor of a model in the process's catalog ("" if the catalog does not know it)."""
    entry = catalog().find_model(model)
    return entry.vendor if entry else ""


def alternative_vendor(alt: AcceleratorAlternative, vendor_of: Callable[[str], str] = model_vendor) -> str:
    """The vendor an alternative runs on: its own, else its model's in the catalog ("" if open)."""
    if alt.vendor:
        return alt.vendor
    return vendor_of(alt.model) if alt.model else ""


def alternative_warnings(spec: JobSpec, vendor_of: Callable[[str], str] = model_vendor) -> list[str]:
    """Alternatives of different vendors sharing one image: a CUDA build does not run on CANN or ROCm,
    unless the image is a multi-arch build, hence a warning and not a refusal."""
    alts = spec.accelerators
    if len(alts) < 2 or not spec.pod_template_json:
        return []
    first = alternative_vendor(alts[0], vendor_of)
    out = []
    for i, alt in enumerate(alts[1:], start=1):
        vendor = alternative_vendor(alt, vendor_of)
        if vendor and first and vendor != first and not alt.pod_template_json:
            out.append(f"spec.accelerators[{i}]: runs on {vendor} but has no template override, so it uses "
                       f"spec.template's image, built for {first}; give it one with its own image "
                       "(or ignore this if that image is built for both)")
    return out


def fleet_fit_never(spec: JobSpec, members: Iterable[Member], legacy_vendor: str = "") -> tuple[str, ReasonCode | None]:
    """Why no member cluster could hold the job even empty ("" when one could), and the code of a replica's CPU or
    memory shortage (scheduler/fleet_fit.py `never_coded`): what `fleet_fit_warnings` words, memoized per job shape
    by `FleetModels.fit_warnings`."""
    snapshot = Snapshot.of(ClusterInfo(name, region, state, (), cap) for name, region, state, cap in members
                           if cap is not None)
    n = spec.min_replicas if spec.elastic else spec.replicas  # an elastic gang may run at its minimum
    said, code = never_coded(PlacementRequest(JobId(""), spec, n), snapshot, legacy_vendor)
    if said and code is None and spec.elastic and not said.startswith("minRegions"):
        lower = lower_minimum(spec, snapshot, legacy_vendor)
        said = f"{said}; {lower}" if lower else said
    return said, code


def lower_minimum(spec: JobSpec, snapshot: Snapshot, legacy_vendor: str = "") -> str:
    """For an elastic gang whose spec.minReplicas no member could hold even empty: the largest lower minimum one
    could, and whether it would start now, "" when none could. elasticqa63: replicas 4, minReplicas 3 of 8 H100 on
    members of 2 H100 nodes was warned naming spec.replicas, while a minReplicas of 2 would have started at once."""
    low, high = 0, spec.min_replicas - 1  # the largest count the fleet could hold is in [low, high]; 0: none
    while low < high:  # a fit is monotone in the count: bisection, as scheduler/elastic.py `largest`
        mid = (low + high + 1) // 2
        if never_coded(PlacementRequest(JobId(""), spec, mid), snapshot, legacy_vendor)[0]:
            high = mid - 1
        else:
            low = mid
    if not low:
        return ""
    whole = replace(spec, replicas=low, min_replicas=0)  # a dry cycle at that count, over the members' last reports
    if Scheduler().schedule(snapshot, [PlacementRequest(JobId(""), whole, low)]).decisions:
        return f"with spec.minReplicas {low} it would start now (cancel it and submit it with that minimum)"
    return (f"with spec.minReplicas {low} it could run on the fleet as it stands, once a member has room for {low} "
            "(cancel it and submit it with that minimum)")


def fit_words(spec: JobSpec, said: str, code: ReasonCode | None) -> list[str]:
    """The warning of `fleet_fit_never`'s answer, naming the field the user wrote: spec.replicas, spec.resources'
    cpu or memory, spec.regions.minRegions; for a brought workload (which has no spec.replicas or spec.resources)
    spec.workload, with how its pod sets were counted as the gang (server/workload_roles.py; outside QA, ML E2)."""
    if not said:
        return []
    if said.startswith("minRegions"):
        return [f"spec.regions.minRegions: {said}; the job is accepted"]
    if spec.pod_sets:  # a gang of unequal roles: `said` names them, at what each asks
        return [f"spec.workload: {said}; the job is accepted"]
    counted = reserved_as(spec)
    if counted:
        return [f"spec.workload: {said}; {counted}; the job is accepted"]
    field = _HOST_FIELDS[code] if code in _HOST_FIELDS else "spec.minReplicas" if spec.elastic else "spec.replicas"
    return [f"{field}: {said}; the job is accepted"]


def fleet_fit_warnings(spec: JobSpec, members: Iterable[Member], legacy_vendor: str = "") -> list[str]:
    """A job no member cluster could hold even empty (`members`: name, region, state, last report): the cycle
    judges it never runnable as the fleet stands (scheduler/fleet_fit.py), and its user hears so at once, as of a
    model no member has, not after hours of "no node with 8 free" (outside SRE QA, F11). A warning, not a
    refusal: a larger member may join, and the job runs then. Every known member counts, whatever its state,
    as in the cycle's check."""
    return fit_words(spec, *fleet_fit_never(spec, members, legacy_vendor))


class FleetModels:
    """The models the fleet has (cached) and the checks Submit makes with them."""

    def __init__(self) -> None:
        self._fleet: frozenset[FleetModel] = frozenset()
        self._by_cluster: dict[str, frozenset[FleetModel]] = {}
        self._present: dict[tuple[str, str], bool] = {}  # in_fleet answers for the fleet as it is now
        self._memory: dict[str, int] = {}  # per member: the most memory one of its devices has (MiB, 0 = unknown)
        self._shapes: dict[str, tuple[object, ...]] = {}  # per member: region, pools' `fleet_shape`, largest node
        self._fits: dict[tuple[object, ...], tuple[str, ReasonCode | None]] = {}  # fleet_fit_never per job shape

    @property
    def models(self) -> frozenset[FleetModel]:
        return self._fleet

    def reported(self, cluster: str, capacity: ClusterCapacity, region: str = "") -> None:
        """A member's report: the set is rebuilt only when that member's pools are not the ones it had, and the
        fleet-fit answers forgotten only when their shapes (or its region) are not."""
        pools = frozenset((p.vendor, p.accelerator_model, p.family) for p in capacity.accelerator_pools)
        shape = (region, tuple(fleet_shape(p) for p in capacity.accelerator_pools), capacity.largest_node_cpu_milli,
                 capacity.largest_node_memory_bytes)
        if self._shapes.get(cluster) != shape:
            self._shapes[cluster] = shape
            self._fits.clear()
        self._memory[cluster] = max((p.memory_mib for p in capacity.accelerator_pools), default=0)
        if self._by_cluster.get(cluster) != pools:
            self._by_cluster[cluster] = pools
            foreign = sorted({v for v, _, _ in pools if v and catalog().vendor(v) is None})
            if foreign:  # said once per change of the member's pools, not per report
                log.warning("cluster %s reports pools of vendor(s) %s, which this federator's accelerator catalog "
                            "lacks: jobs may name their models, but their resource names and models are not checked "
                            "here; give serve the agent's --accelerator-catalog file", cluster, ", ".join(foreign))
            fleet = frozenset().union(*self._by_cluster.values())
            if fleet != self._fleet:
                self._fleet, self._present = fleet, {}

    def gone(self, cluster: str) -> None:
        """A member forgotten (server/leases.py): its models leave the fleet, unless another member has them."""
        self._memory.pop(cluster, None)
        self._shapes.pop(cluster, None)
        self._fits.clear()
        if self._by_cluster.pop(cluster, None) is not None:
            fleet = frozenset().union(*self._by_cluster.values())
            if fleet != self._fleet:
                self._fleet, self._present = fleet, {}

    def fit_warnings(self, spec: JobSpec, members: Iterable[Member], legacy_vendor: str = "") -> list[str]:
        """`fleet_fit_warnings` of `members` (the federator's, as reported here: read only when the answer for
        this job's shape is not kept), memoized by what the check reads of the job (as the cycle's `FleetFit`)."""
        key = (legacy_vendor, spec.kind, spec.replicas, spec.resources, spec.accelerator_models, spec.accelerators,
               spec.min_regions, spec.group_size, spec.pod_sets, spec.min_replicas)
        said = self._fits.get(key)
        if said is None:
            if len(self._fits) >= FITS_KEPT:
                self._fits.clear()
            said = self._fits[key] = fleet_fit_never(spec, members, legacy_vendor)
        return fit_words(spec, *said)  # worded per job: a workload's roles are its own, not its shape's

    def _foreign_models(self, spec: JobSpec, legacy_vendor: str) -> list[str]:
        """The one-count form's models (`nvidia.com/gpu` + acceleratorModels) that this federator's catalog does not
        know and the fleet has only as another vendor's: the job can never run on them, as a federator whose
        catalog knows the model refuses it (jobfile_accelerators.one_vendor). A federator without the agent's
        catalog took such a job silently and it waited for ever (outside QA, vendors V6); the scheduler's pending
        reason says "has no nvidia MetaX-C500 nodes", and this says why at Submit."""
        if spec.accelerators or not legacy_vendor:
            return []
        out = []
        for i, model in enumerate(spec.accelerator_models):
            if catalog().find_model(model) is not None or self._in_fleet(model, legacy_vendor):
                continue
            vendors = sorted({v for v, m, f in self._fleet if accepts_model(model, m, f)})
            if vendors:
                out.append(f"spec.acceleratorModels[{i}]: {model} is {' and '.join(vendors)} hardware as the member "
                           f"clusters report it (this federator's accelerator catalog does not know it), but the "
                           f"one-count form asks for {legacy_vendor} devices: the job waits until {legacy_vendor} "
                           f"nodes of that name join; ask for {vendors[0]}'s resource, or list alternatives in "
                           f"spec.accelerators ({{model: {model}, count: N}})")
        return out

    def _in_fleet(self, model: str, vendor: str) -> bool:
        present = self._present.get((model, vendor))
        if present is None:
            if len(self._present) > 10_000:
                self._present.clear()
            present = self._present[(model, vendor)] = in_fleet(model, vendor, self._fleet)
        return present

    def unknown(self, spec: JobSpec) -> str:
        """"field: problem" for the first model neither the catalog nor any member knows, listing the
        fleet's models; "" when every model is known."""
        for field, model, vendor in asked_models(spec):
            if catalog().is_placeholder(model):  # a client that skipped the job-file checks (jobfile.py) hears it too
                return f"{field}: {placeholder_problem(model)}"
            if catalog().selects(model, vendor) or self._in_fleet(model, vendor):
                continue
            of = f"{vendor} model" if vendor else "model"
            near = near_spellings(model, vendor)
            hint = f" (did you mean {' or '.join(near)}?)" if near else ""
            return (f"{field}: unknown accelerator {of} {model!r}{hint}: neither the accelerator catalog nor any "
                    f"member cluster has it; the fleet has: {fleet_listing(self._fleet)}")
        return ""

    def warnings(self, spec: JobSpec, legacy_vendor: str = "") -> list[str]:
        """What a user should hear about an accepted job that is likely wrong or will wait; `legacy_vendor`: the
        vendor the one-count form's models are bound to (SchedulerConfig.legacy_vendor)."""
        out = alternative_warnings(spec) + self._foreign_models(spec, legacy_vendor)
        asked = asked_models(spec)
        if asked and self._fleet and not any(self._in_fleet(m, v) for _, m, v in asked):
            names = " or ".join(dict.fromkeys(m for _, m, _ in asked))
            where = "spec.accelerators" if spec.accelerators else "spec.acceleratorModels"
            out.append(f"{where}: no member cluster has {names} now (the fleet has: {fleet_listing(self._fleet)}); "
                       "the job waits until one joins")
        most = max(self._memory.values(), default=0)
        for i, alt in enumerate(spec.accelerators):
            if most and alt.min_memory_mib > most:
                out.append(f"spec.accelerators[{i}].minMemoryMiB: no member cluster has a device with "
                           f"{alt.min_memory_mib} MiB now (the most any has: {most} MiB); the job waits until one "
                           "joins")
        return out


__all__ = ["FleetModel", "FleetModels", "alternative_warnings", "asked_models", "fit_words", "fleet_fit_never",
           "fleet_fit_warnings", "in_fleet"]
