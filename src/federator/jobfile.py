"""Read FederatedJob documents (YAML or JSON) into validated JobSpecs.

A job file has the same shape as the FederatedJob custom resource, so a file
that `federator submit` takes is one `kubectl apply` takes too. Every problem
is reported with the path of the field at fault, and all problems of a
document are reported at once.

`spec.workload` embeds the user's own object (a JobSet, a LeaderWorkerSet, ...);
its replicas and per-replica resources are derived from the object's pod sets
by the adapter of its kind (`backends/kube/workloads`), the same pure functions
the agent renders it with, so the two never disagree.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federator.backends.kube.workloads import DEFAULT_MASTER_PORT, WorkloadError, adapter_for, needs
from federator.backends.kube.workloads.common import accelerator_resource, gang_sets
from federator.backends.kube.workloads.rendezvous import master_port
from federator.backends.sim.runtime import (
    ARRIVAL_ANNOTATION,
    DURATION_ANNOTATION,
    OUTCOME_ANNOTATION,
    STARTUP_ANNOTATION,
    duration_problem,
)
from federator.catalog import catalog

# the accelerator fields (spec.resources' count, spec.accelerators, spec.acceleratorModels) are parsed there
from federator.jobfile_accelerators import (
    GPU_RESOURCE,
    MAX_ACCELERATORS_PER_REPLICA,
    one_vendor,
    parse_accelerator_models,
    parse_alternatives,
    parse_resources,
    partition_worth,
    product_line,
)
from federator.jobfile_accelerators import placeholder_problem as placeholder_problem  # importable here as before
from federator.jobfile_affinity import parse_clusters
from federator.jobfile_elastic import elastic_minimum, parse_min_replicas
from federator.jobfile_failure_policy import parse_failure_policy
from federator.jobfile_placement_asks import parse_prefer, parse_region_weights
from federator.model import (
    AcceleratorAlternative,
    JobKind,
    JobSpec,
    Resources,
)
from federator.model.dependency import CONDITIONS, DEPENDS_ON_ANNOTATION, Condition, JobDependency, checked
from federator.model.pod_sets import PodSetAsk

# regions and labels as a Hello gives them (security/limits.py), as jobfile_affinity.py checks spec.clusters
from federator.security.limits import LABEL_KEY, LABEL_VALUE, valid_region
from federator.termtext import shown as shown  # importable here as before (cli, server)

API_VERSION = "federator.io/v1alpha1"
# A job's client request id (SubmitRequest.request_id) lives in its spec's annotations, so every
# store keeps it with no schema of its own: SQLite inside the job's document, Kubernetes mode on
# the FederatedJob's metadata.annotations.
REQUEST_ID_ANNOTATION = "federator.io/request-id"
KIND = "FederatedJob"
MAX_REPLICAS = 10_000
MAX_RUN_SECONDS = 90 * 24 * 3600  # spec.maxRunSeconds: 90 days, longer than any run a bill should meet unbounded
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


OLD_SPEC_NAMES: Mapping[str, str] = {"gpuModels": "acceleratorModels"}
"""Spec fields renamed since v1alpha1, old -> new: the old name is still read (never both) and not listed among
the known fields; it is written only where the new one is not known (`with_old_names`)."""


def with_old_names(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` (a job document) with its renamed spec fields under their old names, in place: for what knows
    only the old ones (a FederatedJob CRD from before a rename; request ids derived before it)."""
    spec = doc["spec"]
    for old, new in OLD_SPEC_NAMES.items():
        if new in spec:
            spec[old] = spec.pop(new)
    return doc


MAX_LABELS = 64
"""Labels a job may carry (each key and value as Kubernetes has them): as many as an agent's Hello may."""
MAX_ANNOTATIONS_BYTES = 256 << 10
"""All annotation keys and values of a job together, in UTF-8 bytes: Kubernetes' own limit (256 KiB)."""
MAX_PREFERRED_REGIONS = 64
"""Regions spec.regions.preferred may list: more than a federation has; each is read at every placement."""

MAX_FIELD_CHARS = 160
MAX_PROBLEM_CHARS = 400


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One bad field: its path in the document's spelling, and what is wrong (both cut to a bounded length, so
    an error never echoes a huge input back)."""

    field: str
    problem: str

    def __post_init__(self) -> None:
        if len(self.field) > MAX_FIELD_CHARS:
            object.__setattr__(self, "field", self.field[:MAX_FIELD_CHARS] + "...")
        if len(self.problem) > MAX_PROBLEM_CHARS:
            object.__setattr__(self, "problem", self.problem[:MAX_PROBLEM_CHARS] + "...")

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


MAX_PROBLEMS = 100
"""Problems one refusal lists at most; the rest are counted."""


class JobFileError(ValueError):
    """A job document that is not a valid FederatedJob; lists every problem found."""

    def __init__(self, problems: Iterable[FieldProblem], source: str = "") -> None:
        found = tuple(problems)
        self.total = len(found)  # problems found, the ones past MAX_PROBLEMS counted only
        if len(found) > MAX_PROBLEMS:  # 100,000 bad list items must not make a reply too big to send
            found = (*found[:MAX_PROBLEMS], FieldProblem("document", f"and {len(found) - MAX_PROBLEMS} more problems"))
        self.problems = found
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(str(p) for p in self.problems))


TOP_LEVEL_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")
"""A document's known top-level keys. `status` is what `kubectl get federatedjob -o yaml` writes next to the spec:
read and ignored (the federator writes a job's status), so such an export can be submitted as it is."""


def _depends_on(raw: object, bad: Any) -> JobDependency | None:
    """spec.dependsOn: {condition: afterok|afterany|afternotok|afterstart (afterok if left out), jobs: [job ids or
    names]},
    the jobs this one waits on (server/dependencies.py); None, with the problem said, when it does not read."""
    if not isinstance(raw, Mapping):
        bad("spec.dependsOn", f"must be a mapping with jobs (and condition), got {shown(raw)}")
        return None
    for key in raw:
        if key not in ("condition", "jobs"):
            bad("spec.dependsOn", f"unknown field {shown(key)}; it takes condition and jobs")
            return None
    condition = raw.get("condition", Condition.AFTER_OK.value)
    if condition not in [c.value for c in Condition]:
        bad("spec.dependsOn.condition", f"must be {CONDITIONS}, got {shown(condition)}")
        return None
    jobs = raw.get("jobs")
    if not isinstance(jobs, list) or not all(isinstance(j, str) for j in jobs):
        bad("spec.dependsOn.jobs", f"must be a list of job ids or names, got {shown(jobs)}")
        return None
    dependency = checked(Condition(condition), tuple(jobs))
    if isinstance(dependency, str):
        bad("spec.dependsOn.jobs", dependency.removeprefix("jobs: "))
        return None
    return dependency


def held_of(doc: object) -> bool:
    """Whether a job document asks to be held (spec.held: true, server/job_holds.py): not part of the JobSpec, since
    a hold is the job's state, not what it asks to run; `federator submit` sends it as SubmitRequest.hold, and in
    Kubernetes mode the FederatedJob's spec.held holds and releases the job (backends/kube/controller.py)."""
    spec = doc.get("spec") if isinstance(doc, Mapping) else None
    return isinstance(spec, Mapping) and spec.get("held") is True


def parse_job(doc: object, *, source: str = "") -> JobSpec:
    """Validate one FederatedJob document; raises JobFileError naming each bad field."""
    problems: list[FieldProblem] = []

    def bad(field: str, problem: str) -> None:
        problems.append(FieldProblem(field, problem))

    if not isinstance(doc, Mapping):
        raise JobFileError([FieldProblem("document", f"must be a mapping, got {type(doc).__name__}")], source)
    if doc.get("apiVersion") != API_VERSION:
        bad("apiVersion", f"must be {API_VERSION!r}, got {shown(doc.get('apiVersion'))}")
    if doc.get("kind") != KIND:
        bad("kind", f"must be {KIND!r}, got {shown(doc.get('kind'))}")
    meta = _mapping(doc.get("metadata"), "metadata", bad)
    spec = _mapping(doc.get("spec"), "spec", bad)
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            near = difflib.get_close_matches(str(key), TOP_LEVEL_KEYS, n=1, cutoff=0.75)  # `specs`, `metdata`
            bad(str(key)[:63], f"is not a known top-level field (known: {', '.join(TOP_LEVEL_KEYS)}; status is "
                               "ignored); " + (f"did you mean {near[0]}?" if near else
                                               "did you mean to put it under spec or metadata?"))

    name = meta.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        bad("metadata.name", "must be a lower-case DNS name (a-z, 0-9, '-', '.') of at most 253 characters, "
                             f"got {shown(name)}")
    namespace = meta.get("namespace", "default")
    if not isinstance(namespace, str) or not _NAME.match(namespace):
        bad("metadata.namespace", f"must be a lower-case DNS name, got {shown(namespace)}")
    labels = _string_map(meta.get("labels"), "metadata.labels", bad)
    if len(labels) > MAX_LABELS:
        bad("metadata.labels", f"at most {MAX_LABELS} labels, got {len(labels)}")
        labels = {}
    for key, value in labels.items():
        if not LABEL_KEY.match(key):
            bad("metadata.labels", f"{shown(key)} is not a valid label key ([prefix/]name, name at most 63 "
                                   "characters of A-Z a-z 0-9 - _ . starting and ending alphanumeric)")
        elif not LABEL_VALUE.match(value):
            bad(f"metadata.labels[{key}]", f"{shown(value)} is not a valid label value (at most 63 characters of "
                                           "A-Z a-z 0-9 - _ . starting and ending alphanumeric)")
    annotations = _string_map(meta.get("annotations"), "metadata.annotations", bad)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        bad("metadata.annotations", f"at most {MAX_ANNOTATIONS_BYTES // 1024} KiB in all (keys and values, as "
                                    f"Kubernetes), got {size} bytes in {len(annotations)} annotations")
        annotations = {}
    for key in annotations:
        if not LABEL_KEY.match(key):
            bad("metadata.annotations", f"{shown(key)} is not a valid annotation key ([prefix/]name)")

    _master_port(annotations, bad)
    _simulated(annotations, bad)
    if not isinstance(doc.get("spec"), Mapping):  # no spec: each of its fields "required" would only repeat that
        raise JobFileError(problems, source)
    has_workload = "workload" in spec
    brought = _workload(spec.get("workload"), bad) if has_workload else None
    for derived in ("replicas", "resources", "template"):
        if has_workload and derived in spec:
            bad(f"spec.{derived}", "is derived from spec.workload (its pod sets); remove it")

    kind_raw = spec.get("kind")
    kind = brought.kind if brought is not None else JobKind.TRAINING
    if has_workload and (kind_raw is None or brought is None):
        pass
    elif not isinstance(kind_raw, str) or kind_raw not in {k.value for k in JobKind}:
        bad("spec.kind", f"must be one of {', '.join(k.value for k in JobKind)}, got {shown(kind_raw)}")
    elif brought is not None and kind_raw != brought.kind.value:
        bad("spec.kind", f"is {kind_raw}, but spec.workload ({brought.kind_name}) is {brought.kind.value} work; "
                         "leave spec.kind out")
    else:
        kind = JobKind(kind_raw)

    replicas = brought.replicas if brought is not None else spec.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
        if brought is not None:
            bad("spec.workload", f"its pod sets must come to an integer from 1 to {MAX_REPLICAS} replicas, "
                                 f"got {shown(replicas)}")
        else:
            bad("spec.replicas", f"must come to an integer from 1 to {MAX_REPLICAS} replicas, got {shown(replicas)}")
        replicas = 1

    if has_workload:
        resources = brought.resources if brought is not None else Resources(cpu_milli=1)
        # the workload's own device plugin resource binds it to that vendor, as the one-count form's does
        resource_name = brought.resource_name if brought is not None else ""
    else:
        resources, resource_name = parse_resources(spec.get("resources"), bad, "accelerators" in spec)
    if brought is not None and resources.accelerator_milli > MAX_ACCELERATORS_PER_REPLICA * 1000:
        bad("spec.workload", f"at most {MAX_ACCELERATORS_PER_REPLICA} accelerators per replica, "
                             f"got {resources.accelerator_milli // 1000}")
    if "acceleratorModels" in spec and "gpuModels" in spec:
        bad("spec.gpuModels", "is the old name of acceleratorModels; give one of them")
    # `gpuModels`: the name before vendors, kept working; errors name the key the user wrote
    models_key = "gpuModels" if "gpuModels" in spec else "acceleratorModels"
    models_field = f"spec.{models_key}"
    accelerator_models = parse_accelerator_models(spec.get(models_key), models_field, bad)
    if accelerator_models and resources.accelerator_milli == 0 and not resource_name and \
            not (has_workload and brought is None):  # a refused workload's asks are unknown: it was named already
        asks = "spec.workload's pods ask" if has_workload else "spec.resources asks"
        bad(models_field, f"is set but {asks} for no {GPU_RESOURCE} (or other accelerator)")
    alternatives = parse_alternatives(spec.get("accelerators"), bad) if "accelerators" in spec else ()
    if alternatives and accelerator_models:
        bad(models_field, f"give either spec.accelerators (with a model each) or {models_field}, not both")
    if alternatives and has_workload:
        bad("spec.accelerators", "alternatives apply to the pods the federator makes; spec.workload names its own "
                                 f"resources (use {models_field} to choose among models)")
    mixed = one_vendor(accelerator_models, models_field, bad, workload=has_workload,
                        resource=resource_name or GPU_RESOURCE)
    if resource_name and resource_name != GPU_RESOURCE and not mixed:
        # another vendor's resource in the one-count form: alternatives of that vendor, one per model, bound to
        # the resource itself where the vendor's plugin has one per product line (huawei.com/Ascend310P)
        vendor = catalog().vendor_of_resource(resource_name)
        kept = resource_name if vendor is None or len(vendor.resources) > 1 else ""
        if kept and vendor is not None:
            product_line(accelerator_models, models_field, bad, resource_name, vendor.name)
            partition_worth(accelerator_models, models_field, bad, resource_name, vendor.name,
                            resources.accelerator_milli)
        milli, resources = resources.accelerator_milli, Resources(resources.cpu_milli, resources.memory_bytes)
        alternatives = tuple(AcceleratorAlternative(milli, m, vendor.name if vendor else "", resource_name=kept)
                             for m in accelerator_models or ("",))
        accelerator_models = ()

    queue = spec.get("queue", "default")
    if queue_problem(queue):
        bad("spec.queue", queue_problem(queue))
    priority = spec.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not -1_000_000 <= priority <= 1_000_000:
        bad("spec.priority", f"must be an integer from -1000000 to 1000000, got {shown(priority)}")
        priority = 0

    regions: tuple[str, ...] = ()
    region_spec = _mapping(spec.get("regions", {}), "spec.regions", bad)
    preferred = region_spec.get("preferred", [])
    if not isinstance(preferred, list):
        bad("spec.regions.preferred", f"must be a list of region names, got {shown(preferred)}")
    elif len(preferred) > MAX_PREFERRED_REGIONS:
        bad("spec.regions.preferred", f"at most {MAX_PREFERRED_REGIONS} regions, got {len(preferred)}")
    else:
        # Each bad entry by its index and value: an empty name used to turn the whole list into one repr.
        wrong = [(i, r) for i, r in enumerate(preferred) if not isinstance(r, str) or not valid_region(r)]
        for i, region in wrong:
            bad(f"spec.regions.preferred[{i}]", f"must be a region name (a lower-case DNS label of at most "
                                                f"63 characters, as agents' Hellos give), got {shown(region)}")
        if not wrong:
            regions = tuple(preferred)
    allowed = _region_list(region_spec.get("allowed", []), "spec.regions.allowed", bad)
    min_regions = region_spec.get("minRegions", 1)
    if isinstance(min_regions, bool) or not isinstance(min_regions, int) or not 1 <= min_regions <= 100:
        bad("spec.regions.minRegions", f"must be an integer from 1 to 100, got {shown(min_regions)}")
        min_regions = 1
    elif min_regions > 1 and kind is not JobKind.INFERENCE:
        bad("spec.regions.minRegions", "applies to inference jobs only (a training gang runs in one cluster)")
    elif min_regions > replicas:
        bad("spec.regions.minRegions", f"is {min_regions} but the job has only {replicas} replicas")
    user_region = region_spec.get("user", "")
    if not isinstance(user_region, str) or (user_region and not valid_region(user_region)):
        bad("spec.regions.user", f"must be a region name (a lower-case DNS label of at most 63 characters), "
                                 f"got {shown(user_region)}")
        user_region = ""
    max_latency = region_spec.get("maxLatencyMs", 0)
    if isinstance(max_latency, bool) or not isinstance(max_latency, int) or max_latency < 0:
        bad("spec.regions.maxLatencyMs", f"must be a non-negative integer (milliseconds), got {shown(max_latency)}")
        max_latency = 0
    elif max_latency and not user_region:
        bad("spec.regions.maxLatencyMs", "needs spec.regions.user (the region the latency is measured from)")
    for key in region_spec:
        if key not in ("allowed", "preferred", "minRegions", "user", "maxLatencyMs", "weights"):
            bad(f"spec.regions.{str(key)[:63]}",
                "is not a known field (known: allowed, maxLatencyMs, minRegions, preferred, user, weights)")
    weights = parse_region_weights(region_spec.get("weights"), bad, kind=kind, allowed=allowed, others={
        "spec.regions.preferred": bool(preferred), "spec.regions.user": bool(user_region),
        "spec.regions.minRegions": min_regions != 1})  # jobfile_placement_asks.py
    prefer = parse_prefer(spec.get("prefer"), bad)
    clusters = parse_clusters(spec.get("clusters"), bad)  # spec.clusters (jobfile_affinity.py)
    failure_policy = parse_failure_policy(spec.get("failurePolicy"), bad)  # jobfile_failure_policy.py
    preemptible = spec.get("preemptible", False)
    if not isinstance(preemptible, bool):
        bad("spec.preemptible", f"must be true or false, got {shown(preemptible)}")
        preemptible = False

    if not isinstance(spec.get("held", False), bool):  # read by held_of (the job itself is no different held)
        bad("spec.held", f"must be true or false, got {shown(spec.get('held'))}")
    if "dependsOn" in spec:  # kept as its annotation, as the store keeps it (model/dependency.py)
        dependency = _depends_on(spec["dependsOn"], bad)
        if dependency is not None:
            annotations[DEPENDS_ON_ANNOTATION] = dependency.annotation()

    min_replicas = parse_min_replicas(spec, bad, kind=kind, replicas=replicas,  # model/elastic.py
                                      derived=brought.min_replicas if brought is not None else None,
                                      workload_kind=brought.kind_name if brought is not None else "")
    max_run = spec.get("maxRunSeconds", 0)
    if "maxRunSeconds" in spec and (isinstance(max_run, bool) or not isinstance(max_run, int)
                                    or not 1 <= max_run <= MAX_RUN_SECONDS):
        bad("spec.maxRunSeconds", f"must be an integer from 1 to {MAX_RUN_SECONDS} (seconds, 90 days; leave it out "
                                  f"for no limit), got {shown(max_run)}")
        max_run = 0

    template = spec.get("template")
    template_json = ""
    if template is not None:
        if not isinstance(template, Mapping):
            bad("spec.template", "must be a pod template (a mapping)")
        else:
            template_json = json.dumps(template, sort_keys=True)

    known = {"kind", "replicas", "resources", "acceleratorModels", "accelerators", "queue", "priority", "regions",
             "template", "preemptible", "workload", "maxRunSeconds", "held", "dependsOn", "clusters",
             "failurePolicy", "prefer", "minReplicas"}
    for key in spec:
        if key not in known and key not in OLD_SPEC_NAMES:
            moved = {"minRegions": "regions.minRegions", "maxLatencyMs": "regions.maxLatencyMs",
                     "preferredRegions": "regions.preferred", "gpus": "resources", "image": "template",
                     "activeDeadlineSeconds": "maxRunSeconds", "timeout": "maxRunSeconds",
                     "maxRestarts": "failurePolicy.maxRestarts",
                     "backoffLimit": "failurePolicy.maxRestarts", "weights": "regions.weights",
                     "staticWeightList": "regions.weights", "optimize": "prefer"}.get(str(key))
            # a misspelling (`replica`, `acceleratorModel`): the nearest known name (outside QA, new user F3)
            moved = moved or next(iter(difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.75)), None)
            bad(f"spec.{str(key)[:63]}", "is not a known field" + (f"; did you mean spec.{moved}?" if moved else "")
                + f" (known: {', '.join(sorted(known))})")

    if problems:
        raise JobFileError(problems, source)
    return JobSpec(
        name=str(name),
        namespace=str(namespace),
        kind=kind,
        replicas=replicas,
        resources=resources,
        accelerator_models=accelerator_models,
        queue=str(queue),
        priority=priority,
        preferred_regions=regions,
        labels=tuple(sorted(labels.items())),
        annotations=tuple(sorted(annotations.items())),
        pod_template_json=template_json,
        preemptible=preemptible,
        min_regions=min_regions,
        user_region=user_region,
        max_latency_ms=max_latency,
        workload_json=brought.json if brought is not None else "",
        group_size=brought.group_size if brought is not None else 1,
        pod_sets=brought.pod_sets if brought is not None else (),
        accelerators=alternatives,
        max_run_seconds=max_run,
        allowed_regions=allowed,
        clusters=clusters,
        failure_policy=failure_policy,
        region_weights=weights,
        prefer=prefer,
        min_replicas=min_replicas,
    )


@dataclass(frozen=True, slots=True)
class _Brought:
    """What spec.workload comes to, through its kind's adapter (the one the agent renders it with)."""

    kind: JobKind
    kind_name: str
    replicas: int
    resources: Resources
    group_size: int
    json: str
    resource_name: str = ""  # the accelerator resource its pods ask for: it decides the vendor
    pod_sets: tuple[PodSetAsk, ...] = ()  # a gang's roles when they ask unequal amounts (model/pod_sets.py)
    min_replicas: int = 0  # the fewest pods an elastic gang starts with (model/elastic.py), from its elasticPolicy


def _workload(value: object, bad: Any) -> _Brought | None:
    """spec.workload: one object of a supported kind; its pod sets give the replicas and resources."""
    if not isinstance(value, Mapping):
        bad("spec.workload", f"must be a Kubernetes object (apiVersion, kind, spec), got {type(value).__name__}")
        return None
    try:
        adapter = adapter_for(value)
        pod_sets = adapter.pod_sets(value)
        replicas, resources = needs(pod_sets)
        resource_name = accelerator_resource(pod_sets)
        group_size = adapter.group_size(value)
        adapter.check_names(value)  # what its member would refuse at every placement
    except WorkloadError as exc:
        bad(f"spec.workload.{exc.field}" if exc.field else "spec.workload", exc.problem)
        return None
    except (AttributeError, TypeError, KeyError, IndexError) as exc:  # an adapter's miss: a refusal, not UNKNOWN
        bad("spec.workload", f"a field has the wrong type ({type(exc).__name__}: {str(exc)[:80]}); see the kind's "
                             "API reference")  # tests/test_workload_shapes.py finds these in the adapters
        return None
    if resources.accelerator_milli == 0 and resources.cpu_milli == 0 and resources.memory_bytes == 0:
        bad("spec.workload", "its pods ask for nothing; set resources.requests (cpu, memory or nvidia.com/gpu) "
                             "on the containers")
        return None
    sets = gang_sets(adapter.job_kind, pod_sets)
    low = elastic_minimum(value, pod_sets) if adapter.kind == "PyTorchJob" and not sets else 0  # model/elastic.py
    return _Brought(kind=adapter.job_kind, kind_name=adapter.kind, replicas=replicas, resources=resources,
                    group_size=group_size, json=json.dumps(value, sort_keys=True), resource_name=resource_name,
                    pod_sets=sets, min_replicas=low)



def _simulated(annotations: Mapping[str, str], bad: Any) -> None:
    """The annotations a simulated cluster runs a job by (backends/sim/runtime.py): what they may say."""
    for key in (DURATION_ANNOTATION, STARTUP_ANNOTATION, ARRIVAL_ANNOTATION):
        problem = duration_problem(annotations[key]) if key in annotations else ""
        if problem:
            bad(f"metadata.annotations[{key}]", problem)
    outcome = annotations.get(OUTCOME_ANNOTATION)
    if outcome is not None and outcome not in ("Succeeded", "Failed"):
        bad(f"metadata.annotations[{OUTCOME_ANNOTATION}]", f"must be Succeeded or Failed, got {shown(outcome)}")


def _master_port(annotations: Mapping[str, str], bad: Any) -> None:
    try:
        master_port(annotations, DEFAULT_MASTER_PORT)
    except WorkloadError as exc:
        bad(exc.field, exc.problem)


def queue_problem(queue: object) -> str:
    """'' for a queue name a job may give (spec.queue), else what is wrong with it."""
    if isinstance(queue, str) and _NAME.match(queue):
        return ""
    return f"must be a lower-case DNS name, got {shown(queue)}"


def _region_list(value: object, field: str, bad: Any) -> tuple[str, ...]:
    """A list of region names (spec.regions.allowed), each checked by its index; () for a bad one."""
    if not isinstance(value, list):
        bad(field, f"must be a list of region names, got {shown(value)}")
        return ()
    if len(value) > MAX_PREFERRED_REGIONS:
        bad(field, f"at most {MAX_PREFERRED_REGIONS} regions, got {len(value)}")
        return ()
    wrong = [(i, r) for i, r in enumerate(value) if not isinstance(r, str) or not valid_region(r)]
    for i, region in wrong:
        bad(f"{field}[{i}]", f"must be a region name (a lower-case DNS label of at most 63 characters, as agents' "
                             f"Hellos give), got {shown(region)}")
    return () if wrong else tuple(dict.fromkeys(value))


def _mapping(value: object, field: str, bad: Any) -> Mapping[str, Any]:
    if value is None:
        bad(field, "is required")
        return {}
    if not isinstance(value, Mapping):
        bad(field, f"must be a mapping, got {type(value).__name__}")
        return {}
    return value


def _string_map(value: object, field: str, bad: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        bad(field, "must map strings to strings")
        return {}
    return dict(value)
