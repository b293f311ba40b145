"""apps/v1 Deployment (the default shape of an inference placement) and StatefulSet.

Both are inference kinds: their replicas may spread over clusters, so each
placement's copy gets `spec.replicas` = the placement's share. Neither ever
finishes by itself; a placement is Running once every replica is ready.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federator.backends.kube.workloads.adapter import TemplatedAdapter, not_created, pods_phase, replica_counts
from federator.backends.kube.workloads.common import (
    PLACEMENT_LABEL,
    Obj,
    PodSet,
    RenderOptions,
    count_at,
    placement_label,
    template_pod_set,
)
from federator.model import JobKind, JobPhase, Placement


@dataclass(frozen=True, slots=True)
class _ReplicatedAdapter(TemplatedAdapter):
    def pod_sets(self, obj: Mapping[str, Any]) -> list[PodSet]:
        return [template_pod_set(obj, "spec.template", name="main", count=count_at(obj, "spec.replicas", 1))]

    def scale(self, obj: Obj, placement: Placement) -> None:
        obj.setdefault("spec", {})["replicas"] = placement.replicas

    def finish(self, obj: Obj, placement: Placement, sets: list[PodSet], options: RenderOptions) -> None:
        # The pods of this placement only (a user's selector would also match another placement's copy).
        obj["spec"]["selector"] = {"matchLabels": {PLACEMENT_LABEL: placement_label(placement.placement_id)}}
        obj["spec"]["template"].setdefault("spec", {})["restartPolicy"] = "Always"

    def phase(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[JobPhase, str]:
        status = obj.get("status") or {}
        stuck = next((c for c in status.get("conditions") or []
                      if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"), None)
        if stuck:
            return JobPhase.FAILED, f"ProgressDeadlineExceeded: {stuck.get('message', '')}"
        pods = list(pods)
        phase, message = pods_phase(obj, pods, ready=int(status.get("readyReplicas") or 0), serving=True)
        # Replicas its controller could not create (a quota, a webhook): say how many and why (F12).
        return phase, message + not_created(obj, pods) if phase is JobPhase.PLACED else message

    def counts(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[int, int] | None:
        return replica_counts(obj, pods, ready=int((obj.get("status") or {}).get("readyReplicas") or 0))


@dataclass(frozen=True, slots=True)
class DeploymentAdapter(_ReplicatedAdapter):
    api_version: str = "apps/v1"
    kind: str = "Deployment"
    plural: str = "deployments"
    job_kind: JobKind = JobKind.INFERENCE


@dataclass(frozen=True, slots=True)
class StatefulSetAdapter(_ReplicatedAdapter):
    api_version: str = "apps/v1"
    kind: str = "StatefulSet"
    plural: str = "statefulsets"
    job_kind: JobKind = JobKind.INFERENCE


__all__ = ["DeploymentAdapter", "StatefulSetAdapter"]
