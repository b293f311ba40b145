"""The shape of a workload adapter, and the parts most kinds share.

An adapter knows one kind (one apiVersion and kind): how to read its pod sets,
how to render a copy of an object for a placement, and how to read the phase
back from the object's own status. `TemplatedAdapter` does the first two for
every kind whose pods come from pod templates at known paths; a kind writes
only `pod_sets` (where its templates are and how many pods each makes), how
it scales for an inference placement, and its phase.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from federator.backends.kube.workloads.common import (
    DEFAULT_OPTIONS,
    NAME_BUDGET,
    REPLICAS_ANNOTATION,
    Obj,
    PodSet,
    RenderOptions,
    WorkloadError,
    federator_env,
    member_name,
    placement_metadata,
    stamp_template,
    templates_at,
)
from federator.model import JobKind, JobPhase, Placement


class WorkloadAdapter(Protocol):
    """One workload kind. Every method is pure (no I/O) and leaves its arguments unchanged."""

    @property
    def api_version(self) -> str:
        """The one version this adapter reads and writes, e.g. "jobset.x-k8s.io/v1alpha2"."""

    @property
    def kind(self) -> str: ...

    @property
    def plural(self) -> str:
        """The resource's plural name in the API ("jobsets")."""

    @property
    def job_kind(self) -> JobKind:
        """training: a gang in one cluster; inference: replicas (or groups) may spread."""

    @property
    def group(self) -> str: ...

    @property
    def key(self) -> str:
        """"Kind.group" ("JobSet.jobset.x-k8s.io", "Job.batch"): the name members advertise."""

    def pod_sets(self, obj: Mapping[str, Any]) -> list[PodSet]:
        """Pods the object makes, per template; WorkloadError names the field at fault."""

    def group_size(self, obj: Mapping[str, Any]) -> int:
        """Pods per group that must stay in one cluster when the replicas spread (1: any pod alone)."""

    def member_name(self, placement_id: str) -> str:
        """The name of the placement's object of this kind on a member: within what the kind's controller
        allows for the names it makes from it (`common.member_name`), the same on every call."""

    def check_names(self, obj: Mapping[str, Any]) -> None:
        """WorkloadError naming the field when names the object adds to its own (a replicated Job's name, a
        count of groups) would make the controller's names too long, whatever the placement; nothing otherwise."""

    def render(self, obj: Mapping[str, Any], placement: Placement, *, namespace: str,
               options: RenderOptions = ...) -> Obj:
        """A copy of `obj` that runs `placement`: named and labelled after it, each pod template
        stamped (labels, env, the chosen accelerator's node selector), plus `options.labels` on
        the object (the Kueue queue label, where a member runs Kueue)."""

    def phase(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[JobPhase, str]:
        """Placed -> Running -> Succeeded/Failed from the object's status (and its pods, where that helps)."""

    def counts(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[int, int] | None:
        """(running, ready) replicas of a serving kind (JobUpdate.replicas_running/replicas_ready), else None."""


def group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def kind_key(api_version: str, kind: str) -> str:
    group = group_of(api_version)
    return f"{kind}.{group}" if group else kind


@dataclass(frozen=True, slots=True)
class TemplatedAdapter:
    """Base of the kinds whose pods come from pod templates in the object."""

    api_version: str
    kind: str
    plural: str
    job_kind: JobKind
    name_budget: ClassVar[int] = NAME_BUDGET  # a kind whose controller makes longer names sets less (its module)
    dns1035: ClassVar[bool] = False  # whether its controller wants an RFC 1035 name (`common.member_name`)

    @property
    def group(self) -> str:
        return group_of(self.api_version)

    def member_name(self, placement_id: str) -> str:
        return member_name(placement_id, self.name_budget, dns1035=self.dns1035)

    def check_names(self, obj: Mapping[str, Any]) -> None:
        """Kinds whose controller adds names of the object's own to its name check them here."""

    @property
    def key(self) -> str:
        return kind_key(self.api_version, self.kind)

    def pod_sets(self, obj: Mapping[str, Any]) -> list[PodSet]:
        raise NotImplementedError

    def group_size(self, obj: Mapping[str, Any]) -> int:
        return 1

    def scale(self, obj: Obj, placement: Placement) -> None:
        """Set the object's replicas for an inference placement (training objects run as given)."""

    def finish(self, obj: Obj, placement: Placement, sets: list[PodSet], options: RenderOptions) -> None:
        """Kind-specific touches after stamping (rendezvous, restart policy)."""

    def render(self, obj: Mapping[str, Any], placement: Placement, *, namespace: str,
               options: RenderOptions = DEFAULT_OPTIONS) -> Obj:
        out: Obj = copy.deepcopy(dict(obj))
        self.scale(out, placement)
        sets = self.pod_sets(out)
        pods = sum(p.count for p in sets)
        self.check_names(out)
        placement_metadata(out, placement, namespace, pods=pods, name=self.member_name(placement.placement_id))
        out["metadata"]["labels"].update(options.labels)
        out["metadata"]["annotations"].update(options.annotations)
        env = federator_env(placement, pods) + [{"name": k, "value": v} for k, v in options.env]
        for pod_set, template in zip(sets, templates_at(out, [p.path for p in sets]), strict=True):
            stamp_template(template, placement, env=env,
                           model=placement.accelerator_model if pod_set.resources.accelerator_milli else "",
                           accelerator=options.accelerator, annotations=options.annotations,
                           at=f"spec.workload.{pod_set.path}")
        self.finish(out, placement, sets, options)
        return out

    def phase(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[JobPhase, str]:
        return pods_phase(obj, pods)

    def counts(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[int, int] | None:
        """(running, ready) replicas for JobUpdate.replicas_running/replicas_ready; None for a kind that does not
        serve (a gang runs whole or not at all: its phase says it)."""
        return None


# -- reading status ----------------------------------------------------------------


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The condition of type `kind` when its status is True."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == kind and c.get("status") == "True":
            return c
    return None


def said(c: Mapping[str, Any], default: str) -> str:
    return f"{c.get('reason') or default}: {c.get('message') or ''}".rstrip(": ")


def expected_pods(obj: Mapping[str, Any], default: int = 1) -> int:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(REPLICAS_ANNOTATION)
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def pending_why(pods: Iterable[Mapping[str, Any]]) -> str:
    for pod in pods:
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("message"):
                return f": {c.get('message')}"
    return ""


def pods_phase(obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], *, done: int = 0,
               ready: int = 0, serving: bool = False) -> tuple[JobPhase, str]:
    """Running once every expected pod runs (`done` finished already; the status may count `ready`
    pods the agent has not seen), else Placed saying how many pods wait and the scheduler's why
    ("1 of 2 replicas running; 1 pending: 0/5 nodes are available: ..."). The same words serve a placement
    that ran whole and lost a replica (a drained node): it stays Running (a placement only moves forward),
    with this message (backend.py). A serving kind's (`serving`) message also says how many running replicas
    are ready when some are not ("2 replicas running, 0 ready"); the phase stays what the pods say."""
    pods = list(pods)
    want = expected_pods(obj)
    phases = [(p.get("status") or {}).get("phase") for p in pods]
    running = phases.count("Running")
    started = max(running + done, ready)
    noun = "replica" if want == 1 else "replicas"
    unready = _unready(pods) if serving else 0
    if started >= want:
        return JobPhase.RUNNING, f"{want} {noun} running{_readiness(want, unready)}"
    pending = phases.count("Pending")
    return JobPhase.PLACED, f"{started} of {want} {noun} running{_readiness(started, unready)}" \
                            f"{f'; {pending} pending' if pending else ''}{pending_why(pods)}"


def replica_counts(obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], *,
                   ready: int = 0) -> tuple[int, int]:
    """(running, ready) replicas of a serving placement, the numbers of `pods_phase`'s words ("2 of 4 replicas
    running, 1 ready"): what JobUpdate.replicas_running/replicas_ready carry, so the federator can count and alert
    on a service short of replicas, not only print it (outside QA F2). `ready`: the workload's own count of ready
    pods, which may be ahead of the pods the agent has seen."""
    pods = list(pods)
    want = expected_pods(obj)
    running = min(want, max(sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running"), ready))
    return running, max(0, running - _unready(pods))


def not_created(obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> str:
    """"; 2 not created: <the controller's words>" when the workload's controller says it cannot create replicas
    (a ReplicaFailure condition, reason FailedCreate: a ResourceQuota, an admission webhook, PodSecurity), "" else.
    Such replicas are neither running nor pending, so "1 of 3 replicas running" alone hid them and their cause,
    which is one condition away on the workload the agent watches (outside QA F12)."""
    failure = condition(obj, "ReplicaFailure")
    if failure is None:
        return ""
    made = sum(1 for p in pods if (p.get("status") or {}).get("phase") in ("Running", "Pending"))
    missing = expected_pods(obj) - made
    return f"; {missing} not created: {failure.get('message') or failure.get('reason') or 'FailedCreate'}" \
        if missing > 0 else ""


def _unready(pods: list[Mapping[str, Any]]) -> int:
    """Running pods whose Ready condition says False (a failing readiness probe, a node gone quiet): a service's
    replica that answers no traffic. A pod that says nothing of readiness is not counted against it."""
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running"
               and any(c.get("type") == "Ready" and c.get("status") == "False"
                       for c in (p.get("status") or {}).get("conditions") or [] if isinstance(c, Mapping)))


def _readiness(running: int, unready: int) -> str:
    """", 1 ready" after "2 replicas running" when a service's running replicas are not all ready (outside QA: 0 of
    4 ready read "2 replicas running" on both members, and the user could not tell the service answered nothing)."""
    return f", {max(0, running - unready)} ready" if unready else ""


def require(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WorkloadError(path, "is required (a mapping)" if value is None else "must be a mapping")
    return value


def items(value: object, path: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not value:
        raise WorkloadError(path, "must list at least one entry")
    for i, v in enumerate(value):
        if not isinstance(v, Mapping):
            raise WorkloadError(f"{path}[{i}]", "must be a mapping")
    return value


__all__ = ["TemplatedAdapter", "WorkloadAdapter", "condition", "expected_pods", "group_of", "items", "kind_key",
           "not_created", "pending_why", "pods_phase", "replica_counts", "require", "said"]
