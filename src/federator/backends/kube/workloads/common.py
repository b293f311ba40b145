"""What every workload adapter shares: names, labels, pod sets, and merging a placement into a pod template.

Pure functions over plain dicts (the JSON the API server speaks). A *pod set*
is what Kueue calls one: pods of one template, a count and the resources each
pod asks for. Every adapter reads its kind's pod sets from the object and
merges the federator's decisions into each pod template the same way, so the
federator (`jobfile`) and the agent derive a workload's needs alike.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from federator.backends.kube import accelerators
from federator.backends.kube.accelerators import AcceleratorRequest
from federator.backends.kube.capacity import GPU_PRODUCT_LABEL, GPU_RESOURCE
from federator.catalog import catalog
from federator.jsontext import whole_number
from federator.model import JobKind, JobSpec, Placement, QuantityError, Resources, format_bytes, to_bytes, to_milli
from federator.model.pod_sets import PodSetAsk, unequal
from federator.podtemplates import (  # the agent's marks on a placement's objects, shared with the submit check
    GENERATION_LABEL,
    JOB_ANNOTATION,
    JOB_LABEL,
    PLACEMENT_ANNOTATION,
    PLACEMENT_LABEL,
    REPLICAS_ANNOTATION,
)
from federator.template_accelerators import without_accelerators
from federator.template_pins import conflicts

Obj = dict[str, Any]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "federator"
SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
FEDERATOR_ENV = ("FEDERATOR_PLACEMENT_ID", "FEDERATOR_JOB_ID", "FEDERATOR_REPLICAS")
ARRAY_ENV = ("FEDERATOR_ARRAY_JOB_ID", "FEDERATOR_ARRAY_TASK_ID")  # an array's tasks only (array_env)

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


class WorkloadError(ValueError):
    """A workload this backend cannot read or express. `field` is the path inside the object at fault
    ("" when the whole object or the placement is at fault); the message names it too."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


@dataclass(frozen=True, slots=True)
class PodSet:
    """Pods of one template: `count` pods, each asking for `resources` (Kueue's PodSet)."""

    name: str
    count: int
    resources: Resources
    path: str  # where the pod template is in the object, e.g. "spec.template"
    # The device plugin resource the pods ask accelerators of ("" for none): nvidia.com/gpu, huawei.com/Ascend910,
    # amd.com/gpu... (any resource of the accelerator catalog), which decides the vendor whose pools can run them.
    accelerator_resource: str = ""


DEFAULT_MASTER_PORT = 29500
DEFAULT_CLUSTER_DOMAIN = "cluster.local"  # Kubernetes' default cluster domain (kubelet --cluster-domain)
DEFAULT_FINISHED_TTL_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What the agent adds to every workload it renders, beyond the placement itself."""

    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # e.g. Kueue's queue label
    # On the object and every pod template it has: the agent's identity (backends/kube/agent_identity.py)
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    master_port: int = DEFAULT_MASTER_PORT  # rendezvous port of multi-replica training (MASTER_PORT)
    # The member's DNS domain (kubelet --cluster-domain): an elastic gang's rendezvous endpoint is replica 0's FQDN
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    procs_per_replica: int = 1  # processes a training replica starts: PET_NPROC_PER_NODE (rendezvous.py)
    finished_ttl_seconds: int | None = DEFAULT_FINISHED_TTL_SECONDS  # batch Jobs: ours, and brought ones without one
    # How this member gives the placed pool's devices (accelerators.render); None: whole nvidia.com/gpu.
    accelerator: AcceleratorRequest | None = None
    # More env for every container, after the federator's own (an array task's index: array_env)
    env: tuple[tuple[str, str], ...] = ()


DEFAULT_OPTIONS = RenderOptions()


# -- names and labels ---------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


NAME_BUDGET = 52
"""The longest name of a placement's object on a member, unless its kind's adapter says less (`name_budget`).

52 is what the built-in kinds leave: an Indexed Job's pods get the hostname "<job>-<index>" (a DNS label, 63),
and the StatefulSet controller labels each pod `controller-revision-hash=<statefulset>-<hash>`, the hash up to
10 characters (kubernetes pkg/controller/history: `ControllerRevisionName`, `HashControllerRevision`), a label
value of at most 63. A kind whose controller makes longer names of its own sets a smaller budget by its adapter."""
_DIGEST_CHARS = 9  # "-" and the 8 hex digits of `_digest`


def member_name(placement_id: str, budget: int = NAME_BUDGET, *, dns1035: bool = False) -> str:
    """The name of a placement's object on a member: the placement id itself when it is a DNS label of at most
    `budget` characters, else its readable start and a digest of the whole id (unique per placement, and the
    same on every call, so a restarted agent finds the object again by name).

    `dns1035`: the kind's controller wants an RFC 1035 label (it names a Service or pods after the object,
    JobSet's and KubeRay's webhooks check it), which starts with a letter."""
    name = _NOT_DNS.sub("-", placement_id.lower()).strip("-")
    if dns1035 and not name[:1].isalpha():
        name = f"p-{name}"
    if len(name) > budget or name != placement_id:
        name = f"{name[:budget - _DIGEST_CHARS].rstrip('-')}-{_digest(placement_id)}"
    return name


def workload_name(placement_id: str) -> str:
    """The name of a placement's object of a built-in kind (Job, Deployment, StatefulSet), and the name
    every kind's object had before kinds had budgets of their own (`member_name`): agents look for both."""
    return member_name(placement_id)


def placement_label(placement_id: str) -> str:
    """The placement id itself when it is a valid label value, else a shortened, unique form."""
    if len(placement_id) <= 63 and _LABEL_VALUE.match(placement_id):
        return placement_id
    short = re.sub(r"[^A-Za-z0-9_.-]+", "-", placement_id)[:54].strip("-_.")
    return f"{short}-{_digest(placement_id)}"


def workload_labels(placement: Placement) -> dict[str, str]:
    """The labels of everything the agent makes for a placement, its pods included. The job id one stays the same
    across the job's generations and members, so a Service (or an ingress) made for a serving job selects its
    pods whichever placement runs them (outside QA: a Service had nothing stable to select)."""
    return {MANAGED_BY_LABEL: MANAGED_BY, PLACEMENT_LABEL: placement_label(placement.placement_id),
            GENERATION_LABEL: str(placement.generation), JOB_LABEL: placement_label(placement.job_id)}


def placement_metadata(obj: Obj, placement: Placement, namespace: str, *, pods: int, name: str = "") -> None:
    """Name the object after its placement (`name`, its kind's `member_name`; `workload_name` when not given)
    and label it, so a restarted agent finds it from labels alone.

    The user's own labels and annotations stay; the user's name does not (two placements of one
    job, or a re-placement, would collide)."""
    meta = obj.setdefault("metadata", {})
    for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
                "ownerReferences", "generateName"):
        meta.pop(key, None)
    obj.pop("status", None)
    meta["name"] = name or workload_name(placement.placement_id)
    meta["namespace"] = namespace
    meta["labels"] = {**(meta.get("labels") or {}), **workload_labels(placement)}
    meta["annotations"] = {**(meta.get("annotations") or {}), PLACEMENT_ANNOTATION: placement.placement_id,
                           JOB_ANNOTATION: placement.job_id, REPLICAS_ANNOTATION: str(pods)}


def placement_of(obj: Mapping[str, Any]) -> str:
    """The placement id a workload or pod runs ("" if it is not the federator's)."""
    meta = obj.get("metadata") or {}
    return str((meta.get("annotations") or {}).get(PLACEMENT_ANNOTATION, ""))


# -- reading pod sets -------------------------------------------------------------


_STEP = re.compile(r"^([^\[\]]+)((?:\[\d+\])*)$")


def _steps(path: str) -> list[str | int]:
    """"spec.replicatedJobs[0].template" -> ["spec", "replicatedJobs", 0, "template"]."""
    out: list[str | int] = []
    for part in path.split("."):
        m = _STEP.match(part)
        if not m:
            raise ValueError(f"bad field path {path!r}")
        out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return out


def _shown(steps: list[str | int]) -> str:
    text = ""
    for s in steps:
        text += f"[{s}]" if isinstance(s, int) else (f".{s}" if text else s)
    return text


def mapping_at(obj: Mapping[str, Any], path: str, *, required: bool = True) -> Mapping[str, Any]:
    """The mapping at a field path ("spec.replicatedJobs[0].template"); {} if absent and not required."""
    steps = _steps(path)
    node: object = obj
    for n, step in enumerate(steps):
        if isinstance(step, int):
            value = node[step] if isinstance(node, list) and step < len(node) else None
        else:
            value = node.get(step) if isinstance(node, Mapping) else None
        here = _shown(steps[: n + 1])
        if value is None:
            if required:
                raise WorkloadError(here, "is required")
            return {}
        want_list = n + 1 < len(steps) and isinstance(steps[n + 1], int)
        if want_list and not isinstance(value, list):
            raise WorkloadError(here, f"must be a list, got {type(value).__name__}")
        if not want_list and not isinstance(value, Mapping):
            raise WorkloadError(here, f"must be a mapping, got {type(value).__name__}")
        node = value
    assert isinstance(node, Mapping)
    return node


def count_at(obj: Mapping[str, Any], path: str, default: int, *, minimum: int = 0) -> int:
    """An integer field (a replica count), with the API's default when it (or its parent) is absent. A whole float
    is read as the integer the member's API server stores (`replicas: 4.0` is 4; jsontext.whole_number):
    refused, the job was turned away though the member would have run it (small60)."""
    node: object = obj
    for step in _steps(path):
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and step < len(node) else None
        else:
            node = node.get(step) if isinstance(node, Mapping) else None
    if node is None:
        return default
    count = whole_number(node)
    if count is None or count < minimum:
        raise WorkloadError(path, f"must be an integer >= {minimum}, got {node!r}")
    return count


def container_resources(res: object, path: str) -> Resources:
    """What one container asks for: its requests, or its limits where it sets no request (as the API
    server defaults them)."""
    return container_ask(res, path)[0]


def container_ask(res: object, path: str) -> tuple[Resources, str]:
    """What one container asks for, and the accelerator resource its devices are counted in ("" for none)."""
    if res is None:
        return Resources(), ""
    if not isinstance(res, Mapping):
        raise WorkloadError(path, "must be a mapping")
    merged: dict[str, object] = {}
    fields: dict[str, str] = {}  # where each merged amount was written, for a refusal to name
    for part in ("limits", "requests"):
        amounts = res.get(part) or {}
        if not isinstance(amounts, Mapping):
            raise WorkloadError(f"{path}.{part}", "must map resource names to quantities")
        merged.update({str(k): v for k, v in amounts.items()})
        fields.update({str(k): f"{path}.{part}[{k}]" for k in amounts})
    cpu = memory = 0
    try:
        if "cpu" in merged:
            cpu = to_milli(merged["cpu"])
        if "memory" in merged:
            memory = to_bytes(merged["memory"])
    except QuantityError as exc:
        raise WorkloadError(path, str(exc)) from None
    name, milli = accelerator_ask(merged, path, fields=fields)
    return Resources(cpu_milli=cpu, memory_bytes=memory, accelerator_milli=milli), name


def accelerator_ask(amounts: Mapping[str, object], path: str,
                    fields: Mapping[str, str] | None = None) -> tuple[str, int]:
    """The accelerator resource a container's resource map asks for and how many milli-devices: any
    device plugin resource of the accelerator catalog (nvidia.com/gpu, huawei.com/Ascend910, amd.com/gpu,
    ...), at most one kind per container; ("", 0) when it asks for none. `fields` says where each amount
    was written (`...resources.requests[nvidia.com/gpu]`), for a refusal to name it."""
    known = set(catalog().resource_names) | {GPU_RESOURCE}
    asked = [k for k in amounts if k in known]
    if len(asked) > 1:
        raise WorkloadError(path, f"asks for two kinds of accelerator ({', '.join(sorted(asked))}); a pod runs "
                                  "on one vendor's devices")
    if not asked:
        return "", 0
    name = asked[0]
    field = (fields or {}).get(name, f"{path}.{name}")
    try:
        milli = to_milli(amounts[name])
    except QuantityError as exc:
        raise WorkloadError(field, str(exc)) from None
    if milli % 1000:
        raise WorkloadError(field, f"an extended resource is a whole number, got {amounts[name]!r} (a fraction of a "
                                   f"device is asked without spec.workload: spec.resources: {{{name}: 500m}})")
    return name, milli


def accelerator_milli(amounts: Mapping[str, object], path: str) -> int:
    """Milli-accelerators a container's resource map asks for (whole devices of any catalog vendor)."""
    return accelerator_ask(amounts, path)[1]


def _max(a: Resources, b: Resources) -> Resources:
    return Resources(
        max(a.cpu_milli, b.cpu_milli),
        max(a.memory_bytes, b.memory_bytes),
        max(a.accelerator_milli, b.accelerator_milli),
    )


def pod_resources(template: Mapping[str, Any], path: str) -> Resources:
    """Per-pod needs of a pod template, as the scheduler counts them: the sum over containers, at
    least the largest init container (they run one at a time, before the others)."""
    return pod_ask(template, path)[0]


def pod_ask(template: Mapping[str, Any], path: str) -> tuple[Resources, str]:
    """`pod_resources`, and the one accelerator resource the pod's containers ask for ("" for none)."""
    spec = mapping_at(template, "spec")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise WorkloadError(f"{path}.spec.containers", "must list at least one container")
    total = Resources()
    names: dict[str, str] = {}  # accelerator resource -> the first container asking for it
    for i, c in enumerate(containers):
        if not isinstance(c, Mapping):
            raise WorkloadError(f"{path}.spec.containers[{i}]", "must be a container (a mapping)")
        at = f"{path}.spec.containers[{i}].resources"
        res, name = container_ask(c.get("resources"), at)
        total = total + res
        if name:
            names.setdefault(name, at)
    inits = spec.get("initContainers") or []
    if not isinstance(inits, list):
        raise WorkloadError(f"{path}.spec.initContainers", "must be a list of containers")
    for i, c in enumerate(inits):
        if isinstance(c, Mapping):
            at = f"{path}.spec.initContainers[{i}].resources"
            res, name = container_ask(c.get("resources"), at)
            total = _max(total, res)
            if name:
                names.setdefault(name, at)
    if len(names) > 1:
        raise WorkloadError(path, f"asks for two kinds of accelerator ({', '.join(sorted(names))}); a pod runs "
                                  "on one vendor's devices")
    return total, next(iter(names), "")


def template_pod_set(obj: Mapping[str, Any], path: str, *, name: str, count: int) -> PodSet:
    try:
        template = mapping_at(obj, path)
    except WorkloadError as exc:
        raise WorkloadError(exc.field, exc.problem) from None
    resources, accelerator = pod_ask(template, path)
    return PodSet(name=name, count=count, resources=resources, path=path, accelerator_resource=accelerator)


def counted_sets(pod_sets: list[PodSet]) -> list[PodSet]:
    """The pod sets whose pods are the federator's replicas: those asking for accelerators, all when none does."""
    return [p for p in pod_sets if p.resources.accelerator_milli and p.count] or [p for p in pod_sets if p.count]


def needs(pod_sets: list[PodSet]) -> tuple[int, Resources]:
    """The (replicas, per-replica resources) the federator schedules for a workload's pod sets.

    The scheduler's model is N equal replicas. The replicas are the pods of the pod sets that ask
    for accelerators (all pods when none does: CPU-only work); per replica, the largest ask of
    each resource among those pod sets. So a pod set of a few CPU-only helpers (a launcher, a
    leader) does not count as accelerator replicas, and unequal pod sets are over-, never
    under-reserved."""
    counted = counted_sets(pod_sets)
    if not counted:
        raise WorkloadError("", "has no pods (every pod set has a count of 0)")
    per = Resources()
    for p in counted:
        per = _max(per, p.resources)
    return sum(p.count for p in counted), per


def gang_sets(job_kind: JobKind, pod_sets: list[PodSet]) -> tuple[PodSetAsk, ...]:
    """The roles a gang is fitted, reserved and billed by (model/pod_sets.py): the pod sets `needs` counts (those
    asking for accelerators; all when none does), when they ask unequal amounts; () for equal ones, and for spread
    work (a LeaderWorkerSet's groups are spread as equal replicas at the largest ask)."""
    if job_kind is not JobKind.TRAINING:
        return ()
    counted = counted_sets(pod_sets)
    sets = tuple(PodSetAsk(p.name, p.count, p.resources) for p in counted)
    return sets if unequal(sets) else ()


def accelerator_resource(pod_sets: list[PodSet]) -> str:
    """The one accelerator resource a workload's pod sets ask for ("" for CPU-only work): it decides the
    vendor whose pools can run the workload. Pod sets asking two vendors' devices are refused."""
    names = {p.accelerator_resource for p in pod_sets if p.accelerator_resource and p.count}
    if len(names) > 1:
        raise WorkloadError("", f"its pod sets ask for two kinds of accelerator ({', '.join(sorted(names))}); "
                                "a workload runs on one vendor's devices")
    return next(iter(names), "")


# -- rendering ---------------------------------------------------------------------


def templates_at(obj: Obj, paths: list[str]) -> Iterator[Obj]:
    """The pod templates at `paths` in `obj` (mutable, for rendering a copy; each path exists, as
    `pod_sets` checked)."""
    for path in paths:
        node: Any = obj
        for step in _steps(path):
            node = node[step]
        yield node


def render_accelerators(pod: Obj, containers: list[Obj], *, resources: Resources | None, model: str,
                        accelerator: AcceleratorRequest | None = None, main: int = 0, at: str = "spec") -> None:
    """The chosen accelerator model on a pod spec: its node selector and toleration; with `resources`
    (the federator renders the pod from the job's template), the request on the accelerator container,
    `containers[main]` (`template_accelerators.accelerator_container`: the one the template's annotation
    names, else the first), and no accelerator anywhere else: whatever accelerator resource or DRA claim
    the template carried is removed first, so the pod runs what the job declares and is counted, and no
    more (a job stored before the submit rule too; outside testers, S1).

    With `accelerator` (what the member's discovery says the chosen pool needs:
    a vendor's resource and product label, a MIG partition, a HAMi slot, a DRA
    claim) that goes in instead of ``nvidia.com/gpu``.

    A pod spec pinning one of the labels the agent pins the pool by to another value is never rewritten: a
    WorkloadError at `at` (the pod spec's path, as the user wrote it) refuses the placement here, so the pods
    never run on another model than the template asked (template_pins.py; outside QA new60 N1)."""
    selector = dict(accelerator.node_selector) if accelerator is not None else \
        ({GPU_PRODUCT_LABEL: model} if model else {})
    for key, theirs, ours in conflicts(pod, selector):
        raise WorkloadError(f"{at}.nodeSelector[{key}]", (
            f"pins the pods to {theirs!r}, but this placement's pool is pinned by {key}={ours}: the agent does not "
            "replace a template's own pin, so the placement is refused here; name the pinned model in "
            "spec.acceleratorModels so that placement honours it"))
    if resources is not None:
        without_accelerators(pod)
    target = containers[main] if resources is not None and 0 <= main < len(containers) else None
    if accelerator is not None:
        if target is not None:
            reqs = target.setdefault("resources", {})
            amounts = {k: v for k, v in resource_amounts(resources or Resources()).items() if k != GPU_RESOURCE}
            reqs["requests"] = {**(reqs.get("requests") or {}), **amounts}
            accelerators.apply(pod, target, accelerator)
        elif model:
            _swap_device_asks(pod, accelerator, model, at)
            accelerators.apply(pod, None, accelerator)
        return
    if target is not None:
        reqs = target.setdefault("resources", {})
        amounts = resource_amounts(resources or Resources())
        reqs["requests"] = {**(reqs.get("requests") or {}), **amounts}
        if GPU_RESOURCE in amounts:  # extended resources: limit = request
            reqs["limits"] = {**(reqs.get("limits") or {}), GPU_RESOURCE: amounts[GPU_RESOURCE]}
    if not model:
        return
    pod["nodeSelector"] = {**(pod.get("nodeSelector") or {}), GPU_PRODUCT_LABEL: model}
    tolerations = list(pod.get("tolerations") or [])
    if not any(t.get("key") == GPU_RESOURCE for t in tolerations if isinstance(t, Mapping)):
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    pod["tolerations"] = tolerations


def _swap_device_asks(pod: Obj, request: AcceleratorRequest, model: str, at: str) -> None:
    """A brought workload's own device asks turned into the placed pool's (in place), as a native job's pod gets them
    from `accelerators.render`: each container's `huawei.com/Ascend910: 1` becomes `huawei.com/Ascend910-5c.1cpu.16g:
    1` on a vNPU pool, `nvidia.com/gpu: 2` two `nvidia.com/mig-1g.10gb` on a MIG pool (the count per container kept,
    the template's ask replaced, not added beside), and a DRA member's claim replaces the one container's ask. Left as
    written, the pods ran on whole chips while the partition pool was booked and billed, or stayed Pending for ever
    on a MIG node (vendor QA vendqa61 V4). An ask the pool cannot take is a WorkloadError naming the field, so the
    placement is refused here and never runs on another device than the one placed."""
    known = set(catalog().resource_names) | {GPU_RESOURCE}
    claim = (request.claim or {}).get("spec", {}).get("devices", {}).get("requests", [{}])[0].get("exactly", {}) \
        if request.uses_dra else {}
    pool = next(iter(request.limits)) if len(request.limits) == 1 and not request.uses_dra else ""
    claimed = False
    for part in ("containers", "initContainers"):
        for i, container in enumerate(pod.get(part) or []):
            res = container.get("resources") if isinstance(container, dict) else None
            if not isinstance(res, dict):
                continue
            asks = {(kind, str(k)): v for kind in ("requests", "limits") if isinstance(res.get(kind), dict)
                    for k, v in res[kind].items() if k in known}
            if not asks:
                continue
            (kind, name), value = next(iter(asks.items()))
            field = f"{at}.{part}[{i}].resources.{kind}[{name}]"
            if claim:
                if claimed or _milli_or_none(value) != int(claim.get("count") or 0) * 1000:
                    raise WorkloadError(field, (
                        f"this member gives {model} by a DRA claim of {claim.get('count')} device(s) per pod, which "
                        "the agent gives one container of the pod: ask them all on one container"))
                claimed = True
                container.setdefault("resources", {})["claims"] = [
                    *[c for c in res.get("claims") or [] if c.get("name") != accelerators.CLAIM_NAME],
                    {"name": accelerators.CLAIM_NAME}]
            elif not pool:
                raise WorkloadError(field, (
                    f"this member gives {model} as {', '.join(sorted(request.limits)) or 'nothing'} per pod, which "
                    f"the agent cannot write for a workload's own {name}: declare the job without spec.workload "
                    "(spec.resources), or name another accelerator model"))
            for kind_ in ("requests", "limits"):
                amounts = res.get(kind_)
                if not isinstance(amounts, dict):
                    continue
                for key in [k for k in amounts if k in known]:
                    count = amounts.pop(key)
                    if pool:
                        amounts[pool] = count
                if not amounts:
                    res.pop(kind_)


def _milli_or_none(value: object) -> int | None:
    try:
        return to_milli(value)
    except QuantityError:
        return None


def _quantity_milli(milli: int) -> str:
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def resource_amounts(res: Resources) -> dict[str, str]:
    out: dict[str, str] = {}
    if res.cpu_milli:
        out["cpu"] = _quantity_milli(res.cpu_milli)
    if res.memory_bytes:
        out["memory"] = format_bytes(res.memory_bytes)  # "32Gi", as a person reads it on the member
    if res.accelerator_milli:
        out[GPU_RESOURCE] = str(res.accelerator_milli // 1000)
    return out


def set_env(container: Obj, env: list[Obj]) -> None:
    """`env` in a container, replacing any variable of the same name the user set."""
    names = {e["name"] for e in env}
    container["env"] = [e for e in container.get("env") or [] if e.get("name") not in names] + copy.deepcopy(env)


def federator_env(placement: Placement, pods: int) -> list[Obj]:
    return [{"name": "FEDERATOR_PLACEMENT_ID", "value": placement.placement_id},
            {"name": "FEDERATOR_JOB_ID", "value": placement.job_id},
            {"name": "FEDERATOR_REPLICAS", "value": str(pods)}]


def array_env(spec: JobSpec) -> tuple[tuple[str, str], ...]:
    """An array task's FEDERATOR_ARRAY_JOB_ID and FEDERATOR_ARRAY_TASK_ID (types.proto ArrayTask, Slurm's
    SLURM_ARRAY_*), for every container as FEDERATOR_JOB_ID is; none for a job of no array."""
    task = spec.array
    if task is None:
        return ()
    return (("FEDERATOR_ARRAY_JOB_ID", task.array_id), ("FEDERATOR_ARRAY_TASK_ID", str(task.task_id)))


def stamp_template(template: Obj, placement: Placement, *, env: list[Obj], model: str,
                   resources: Resources | None = None, restart_policy: str | None = None,
                   accelerator: AcceleratorRequest | None = None,
                   annotations: Mapping[str, str] | None = None, at: str = "spec.template") -> Obj:
    """Merge a placement into one pod template (in place): labels and the placement annotation (so the
    agent finds the pods), env in every container, the accelerator's node selector when the pods
    ask for one (never over the template's own value of it: `render_accelerators`; `at` is the template's path
    as the user wrote it)."""
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **workload_labels(placement)}
    meta["annotations"] = {**(meta.get("annotations") or {}), **(annotations or {}),
                           PLACEMENT_ANNOTATION: placement.placement_id}
    pod = template.setdefault("spec", {})
    containers = pod.get("containers") or []
    for c in containers:
        set_env(c, env)
    render_accelerators(pod, containers, resources=resources, model=model,
                        accelerator=accelerator if model else None, at=f"{at}.spec")
    if restart_policy is not None:
        pod["restartPolicy"] = restart_policy
    return template


__all__ = [
    "ARRAY_ENV", "DEFAULT_CLUSTER_DOMAIN", "DEFAULT_FINISHED_TTL_SECONDS", "DEFAULT_MASTER_PORT", "DEFAULT_OPTIONS",
    "FEDERATOR_ENV",
    "GENERATION_LABEL", "JOB_ANNOTATION", "MANAGED_BY", "MANAGED_BY_LABEL", "NAME_BUDGET", "PLACEMENT_ANNOTATION",
    "PLACEMENT_LABEL",
    "REPLICAS_ANNOTATION", "SELECTOR", "Obj", "PodSet", "RenderOptions", "WorkloadError", "accelerator_ask",
    "accelerator_milli", "accelerator_resource", "array_env", "container_ask", "container_resources", "count_at",
    "federator_env", "mapping_at", "member_name", "needs", "placement_label", "placement_metadata", "placement_of",
    "pod_ask", "pod_resources", "render_accelerators", "resource_amounts", "set_env", "stamp_template",
    "template_pod_set", "templates_at", "workload_labels", "workload_name",
]
