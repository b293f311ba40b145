"""RayJob (ray.io/v1): a Ray cluster (head + worker groups) made for one job, then torn down.

Pod sets as Kueue counts them: the head (one pod) and, per worker group,
replicas x numOfHosts pods. The submitter pod KubeRay adds in K8sJobMode is not
counted (a small CPU pod).

KubeRay keeps a RayJob's RayCluster (its GPU workers) running after the Ray job
finishes unless `spec.shutdownAfterJobFinishes` is true; the federator reads the
placement Succeeded then, and the workers would idle on their accelerators
until the FederatedJob is deleted. So a RayJob that says nothing of it (neither
that field nor KubeRay's `deletionPolicy`/`deletionStrategy`) is rendered with
it true; one that sets it keeps its own choice.

KubeRay refuses a RayJob whose name is over `NAME_BUDGET` characters, so the
member's copy is named within that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from federator.backends.kube.workloads.adapter import TemplatedAdapter, pods_phase, require
from federator.backends.kube.workloads.common import Obj, PodSet, RenderOptions, count_at, mapping_at, template_pod_set
from federator.model import JobKind, JobPhase, Placement

_CLUSTER = "spec.rayClusterSpec"
NAME_BUDGET = 47
"""The longest name of a member's copy of a RayJob: KubeRay (v1.6.0, ray-operator/controllers/ray/utils
constant.go `MaxRayJobNameLength` = `MaxRayClusterNameLength` (53) - 6, checked in validation.go
`ValidateRayJobMetadata`, with an RFC 1035 label) leaves room for the "-<5 random>" of its RayCluster's name."""


@dataclass(frozen=True, slots=True)
class RayJobAdapter(TemplatedAdapter):
    api_version: str = "ray.io/v1"
    kind: str = "RayJob"
    plural: str = "rayjobs"
    job_kind: JobKind = JobKind.TRAINING
    name_budget: ClassVar[int] = NAME_BUDGET
    dns1035: ClassVar[bool] = True

    def pod_sets(self, obj: Mapping[str, Any]) -> list[PodSet]:
        cluster = require(mapping_at(obj, "spec", required=False).get("rayClusterSpec"), _CLUSTER)
        out = [template_pod_set(obj, f"{_CLUSTER}.headGroupSpec.template", name="head", count=1)]
        groups = cluster.get("workerGroupSpecs") or []
        for i, group in enumerate(groups if isinstance(groups, list) else []):
            at = f"{_CLUSTER}.workerGroupSpecs[{i}]"
            replicas = count_at(obj, f"{at}.replicas", count_at(obj, f"{at}.minReplicas", 1))
            hosts = count_at(obj, f"{at}.numOfHosts", 1, minimum=1)
            name = str(group.get("groupName") or i) if isinstance(group, Mapping) else str(i)
            out.append(template_pod_set(obj, f"{at}.template", name=name, count=replicas * hosts))
        return out

    def finish(self, obj: Obj, placement: Placement, sets: list[PodSet], options: RenderOptions) -> None:
        spec = obj.setdefault("spec", {})
        if not any(k in spec for k in ("shutdownAfterJobFinishes", "deletionPolicy", "deletionStrategy")):
            spec["shutdownAfterJobFinishes"] = True  # free the accelerators once the Ray job is done

    def phase(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[JobPhase, str]:
        status = obj.get("status") or {}
        deployment, job = status.get("jobDeploymentStatus"), status.get("jobStatus")
        message = status.get("message") or ""
        if deployment == "Complete" or job in ("SUCCEEDED", "FAILED", "STOPPED"):
            if job == "SUCCEEDED":
                return JobPhase.SUCCEEDED, f"Ray job {job}"
            return JobPhase.FAILED, f"Ray job {job or deployment}: {message}".rstrip(": ")
        if deployment == "Failed":
            return JobPhase.FAILED, f"{status.get('reason') or 'Failed'}: {message}".rstrip(": ")
        return pods_phase(obj, pods)


__all__ = ["RayJobAdapter"]
