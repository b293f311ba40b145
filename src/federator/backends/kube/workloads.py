"""Placements as Kubernetes workloads, and their phase read back: pure functions.

A training placement becomes a `batch/v1` Job in Indexed completion mode
(parallelism = completions = replicas, so each replica knows its rank from
JOB_COMPLETION_INDEX); an inference placement becomes an `apps/v1` Deployment.
Both carry the placement id as a label and an annotation (labels are limited to
63 characters, so the label holds a shortened form when needed and the
annotation the whole id), so an agent that restarts finds every workload it
runs from labels alone.

The job's pod template is used as given, with the federator's decisions merged
in: the GPU model as a nodeSelector, the per-replica resources on the first
container, a toleration for the GPU taint, the placement labels.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from federator.backends.kube.capacity import GPU_PRODUCT_LABEL, GPU_RESOURCE
from federator.model import JobKind, JobPhase, JobSpec, Placement, Resources

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "federator"
PLACEMENT_LABEL = "federator.io/placement-id"
GENERATION_LABEL = "federator.io/generation"
PLACEMENT_ANNOTATION = "federator.io/placement-id"
JOB_ANNOTATION = "federator.io/job-id"
REPLICAS_ANNOTATION = "federator.io/replicas"
SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
DEFAULT_IMAGE = "busybox:1.36"
DEFAULT_FINISHED_TTL_SECONDS = 3600
SIM_DURATION_ANNOTATION = "federator.io/sim-duration"  # read by the default container too

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")

Obj = dict[str, Any]


class WorkloadError(ValueError):
    """A placement this backend cannot express as a workload; the message says why."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def workload_name(placement_id: str) -> str:
    """A DNS label (<= 52 characters, so Indexed pod hostnames "<name>-<index>" stay valid) for a placement."""
    name = _NOT_DNS.sub("-", placement_id.lower()).strip("-")
    if len(name) > 52 or name != placement_id:
        name = f"{name[:43].rstrip('-')}-{_digest(placement_id)}"
    return name


def placement_label(placement_id: str) -> str:
    """The placement id itself when it is a valid label value, else a shortened, unique form."""
    if len(placement_id) <= 63 and _LABEL_VALUE.match(placement_id):
        return placement_id
    short = re.sub(r"[^A-Za-z0-9_.-]+", "-", placement_id)[:54].strip("-_.")
    return f"{short}-{_digest(placement_id)}"


def _quantity_milli(milli: int) -> str:
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def resource_amounts(res: Resources) -> dict[str, str]:
    out: dict[str, str] = {}
    if res.cpu_milli:
        out["cpu"] = _quantity_milli(res.cpu_milli)
    if res.memory_bytes:
        out["memory"] = str(res.memory_bytes)
    if res.gpu_milli:
        out[GPU_RESOURCE] = str(res.gpu_milli // 1000)
    return out


def _default_container(spec: JobSpec) -> Obj:
    seconds = _duration_seconds(spec.annotation(SIM_DURATION_ANNOTATION), 30)
    return {"name": "main", "image": DEFAULT_IMAGE,
            "command": ["sh", "-c", f'echo "federator placement $FEDERATOR_PLACEMENT_ID"; sleep {seconds}']}


def _duration_seconds(text: str, default: int) -> int:
    match = re.match(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*$", text or "")
    if not match:
        return default
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return max(1, round(float(match.group(1)) * scale))


def pod_template(placement: Placement, spec: JobSpec, *, restart_policy: str | None) -> Obj:
    """The job's pod template with the placement's decisions merged in."""
    if spec.resources.is_fractional_gpu:
        raise WorkloadError(f"spec.resources.{GPU_RESOURCE}: a fraction of a GPU needs a GPU-sharing device "
                            "plugin; the Kubernetes backend asks for whole GPUs")
    template: Obj = copy.deepcopy(json.loads(spec.pod_template_json)) if spec.pod_template_json else {}
    meta = template.setdefault("metadata", {})
    labels = meta.setdefault("labels", {})
    labels.update(workload_labels(placement))
    annotations = meta.setdefault("annotations", {})
    annotations[PLACEMENT_ANNOTATION] = placement.placement_id
    pod = template.setdefault("spec", {})
    containers = pod.get("containers") or [_default_container(spec)]
    pod["containers"] = containers
    main = containers[0]
    resources = main.setdefault("resources", {})
    amounts = resource_amounts(spec.resources)
    resources["requests"] = {**(resources.get("requests") or {}), **amounts}
    if GPU_RESOURCE in amounts:  # extended resources: limit = request
        resources["limits"] = {**(resources.get("limits") or {}), GPU_RESOURCE: amounts[GPU_RESOURCE]}
    env = [e for e in main.get("env") or [] if e.get("name") not in _ENV_NAMES]
    env += [{"name": "FEDERATOR_PLACEMENT_ID", "value": placement.placement_id},
            {"name": "FEDERATOR_JOB_ID", "value": placement.job_id},
            {"name": "FEDERATOR_REPLICAS", "value": str(placement.replicas)}]
    main["env"] = env
    if placement.gpu_model and spec.resources.gpu_milli:
        pod["nodeSelector"] = {**(pod.get("nodeSelector") or {}), GPU_PRODUCT_LABEL: placement.gpu_model}
        tolerations = list(pod.get("tolerations") or [])
        if not any(t.get("key") == GPU_RESOURCE for t in tolerations):
            tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
        pod["tolerations"] = tolerations
    if restart_policy is not None:
        pod["restartPolicy"] = restart_policy
    return template


_ENV_NAMES = frozenset({"FEDERATOR_PLACEMENT_ID", "FEDERATOR_JOB_ID", "FEDERATOR_REPLICAS"})


def workload_labels(placement: Placement) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, PLACEMENT_LABEL: placement_label(placement.placement_id),
            GENERATION_LABEL: str(placement.generation)}


def _metadata(placement: Placement, namespace: str) -> Obj:
    return {
        "name": workload_name(placement.placement_id),
        "namespace": namespace,
        "labels": workload_labels(placement),
        "annotations": {PLACEMENT_ANNOTATION: placement.placement_id, JOB_ANNOTATION: placement.job_id,
                        REPLICAS_ANNOTATION: str(placement.replicas)},
    }


def build_workload(placement: Placement, spec: JobSpec, *, namespace: str,
                   finished_ttl_seconds: int | None = DEFAULT_FINISHED_TTL_SECONDS) -> Obj:
    """The Job (training) or Deployment (inference) that runs a placement."""
    if spec.kind is JobKind.TRAINING:
        template = pod_template(placement, spec, restart_policy=None)
        policy = template["spec"].get("restartPolicy")
        template["spec"]["restartPolicy"] = policy if policy in ("Never", "OnFailure") else "Never"
        job_spec: Obj = {
            "completionMode": "Indexed",
            "completions": placement.replicas,
            "parallelism": placement.replicas,
            # A gang is all or nothing: one replica failing fails the placement, and
            # the federator decides what happens next.
            "backoffLimit": 0,
            "template": template,
        }
        if finished_ttl_seconds is not None:
            job_spec["ttlSecondsAfterFinished"] = finished_ttl_seconds
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(placement, namespace),
                "spec": job_spec}
    template = pod_template(placement, spec, restart_policy="Always")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(placement, namespace),
        "spec": {
            "replicas": placement.replicas,
            "selector": {"matchLabels": {PLACEMENT_LABEL: placement_label(placement.placement_id)}},
            "template": template,
        },
    }


# -- reading workloads back -------------------------------------------------


def placement_of(obj: Mapping[str, Any]) -> str:
    """The placement id a workload or pod runs ("" if it is not the federator's)."""
    meta = obj.get("metadata") or {}
    return str((meta.get("annotations") or {}).get(PLACEMENT_ANNOTATION, ""))


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind and c.get("status") == "True":
            return dict(c)
    return None


def _pending_why(pods: Iterable[Mapping[str, Any]]) -> str:
    for pod in pods:
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("message"):
                return f": {c.get('message')}"
    return ""


def workload_phase(workload: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[JobPhase, str]:
    """Placed -> Running (every replica started) -> Succeeded/Failed, from a workload and its pods."""
    pods = list(pods)
    meta = workload.get("metadata") or {}
    status = workload.get("status") or {}
    replicas = int((meta.get("annotations") or {}).get(REPLICAS_ANNOTATION)
                   or (workload.get("spec") or {}).get("parallelism") or (workload.get("spec") or {}).get("replicas")
                   or 1)
    running = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
    if workload.get("kind") == "Job":
        if _condition(workload, "Complete") or _condition(workload, "SuccessCriteriaMet"):
            return JobPhase.SUCCEEDED, f"{status.get('succeeded', replicas)} of {replicas} replicas completed"
        failed = _condition(workload, "Failed") or _condition(workload, "FailureTarget")
        if failed:
            return JobPhase.FAILED, f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".rstrip(": ")
        started = running + int(status.get("succeeded") or 0)
    else:
        stuck = next((c for c in status.get("conditions") or []
                      if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"), None)
        if stuck:
            return JobPhase.FAILED, f"ProgressDeadlineExceeded: {stuck.get('message', '')}"
        started = max(running, int(status.get("readyReplicas") or 0))
    if started >= replicas:
        return JobPhase.RUNNING, f"{replicas} replicas running"
    return JobPhase.PLACED, f"{started} of {replicas} replicas running{_pending_why(pods)}"


__all__ = [
    "DEFAULT_FINISHED_TTL_SECONDS", "GENERATION_LABEL", "JOB_ANNOTATION", "MANAGED_BY", "MANAGED_BY_LABEL",
    "PLACEMENT_ANNOTATION", "PLACEMENT_LABEL", "SELECTOR", "WorkloadError", "build_workload", "placement_label",
    "placement_of", "pod_template", "resource_amounts", "workload_name", "workload_phase",
]
