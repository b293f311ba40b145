"""Which adapter reads which object: (API group, kind) -> adapter, and the two entry points on top.

`build_workload` is what the agent creates for a placement: the job's own
object (`spec.workload`) rendered by its kind's adapter, or, without one, a
batch/v1 Job (training) or apps/v1 Deployment (inference) made from the job's
replicas, resources and pod template. `workload_phase` reads any of them back.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from federator.backends.kube.accelerators import AcceleratorRequest
from federator.backends.kube.workloads.adapter import WorkloadAdapter, group_of, kind_key
from federator.backends.kube.workloads.apps import DeploymentAdapter, StatefulSetAdapter
from federator.backends.kube.workloads.batch import BatchJobAdapter
from federator.backends.kube.workloads.common import (
    DEFAULT_OPTIONS,
    Obj,
    RenderOptions,
    WorkloadError,
    array_env,
    render_accelerators,
)
from federator.backends.kube.workloads.elastic import apply_elastic
from federator.backends.kube.workloads.jobset import JobSetAdapter
from federator.backends.kube.workloads.kubeflow import PyTorchJobAdapter, TrainJobAdapter
from federator.backends.kube.workloads.lws import LeaderWorkerSetAdapter
from federator.backends.kube.workloads.ray import RayJobAdapter
from federator.backends.kube.workloads.rendezvous import master_port, procs_per_replica
from federator.model import JobKind, JobPhase, JobSpec, Placement
from federator.template_accelerators import accelerator_container

BATCH_JOB = BatchJobAdapter()
DEPLOYMENT = DeploymentAdapter()
ADAPTERS: tuple[WorkloadAdapter, ...] = (
    BATCH_JOB, DEPLOYMENT, StatefulSetAdapter(), JobSetAdapter(), LeaderWorkerSetAdapter(), TrainJobAdapter(),
    PyTorchJobAdapter(), RayJobAdapter(),
)
REGISTRY: dict[tuple[str, str], WorkloadAdapter] = {(a.group, a.kind): a for a in ADAPTERS}
BY_KEY: dict[str, WorkloadAdapter] = {a.key: a for a in ADAPTERS}
BUILTIN_KINDS = frozenset({a.key for a in ADAPTERS if a.group in ("batch", "apps")})
"""Kinds every Kubernetes cluster serves: a member that advertises nothing is assumed to run these."""

DEFAULT_IMAGE = "busybox:1.36"
SIM_DURATION_ANNOTATION = "federator.io/sim-duration"  # read by the default container too


def supported_kinds() -> str:
    return ", ".join(f"{a.kind} ({a.api_version})" for a in ADAPTERS)


def adapter_for(obj: Mapping[str, Any]) -> WorkloadAdapter:
    """The adapter of an object's kind; WorkloadError naming apiVersion or kind otherwise."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version:
        raise WorkloadError("apiVersion", "is required (for example jobset.x-k8s.io/v1alpha2)")
    if not isinstance(kind, str) or not kind:
        raise WorkloadError("kind", "is required (for example JobSet)")
    adapter = REGISTRY.get((group_of(api_version), kind))
    if adapter is None:
        raise WorkloadError("kind", f"{kind_key(api_version, kind)} is not a supported workload kind "
                                    f"(supported: {supported_kinds()})")
    if adapter.api_version != api_version:
        raise WorkloadError("apiVersion", f"{kind} is supported as {adapter.api_version}, got {api_version!r}")
    return adapter


_BY_KIND: dict[str, WorkloadAdapter] = {a.kind: a for a in ADAPTERS}  # kinds are unique across the groups


def adapter_of(obj: Mapping[str, Any]) -> WorkloadAdapter | None:
    """The adapter of an object read back from a cluster (None for kinds no adapter knows). Items of a
    list may come without apiVersion; the kind alone then decides."""
    kind = str(obj.get("kind") or "")
    if obj.get("apiVersion"):
        return REGISTRY.get((group_of(str(obj["apiVersion"])), kind))
    return _BY_KIND.get(kind)


def _duration_seconds(text: str, default: int) -> int:
    match = re.match(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*$", text or "")
    if not match:
        return default
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return max(1, round(float(match.group(1)) * scale))


def _default_container(spec: JobSpec) -> Obj:
    seconds = _duration_seconds(spec.annotation(SIM_DURATION_ANNOTATION), 30)
    return {"name": "main", "image": DEFAULT_IMAGE,
            "command": ["sh", "-c", f'echo "federator placement $FEDERATOR_PLACEMENT_ID"; sleep {seconds}']}


def default_object(placement: Placement, spec: JobSpec, *, finished_ttl_seconds: int | None,
                   accelerator: AcceleratorRequest | None = None) -> Obj:
    """The Job (training) or Deployment (inference) the federator makes from a job's own fields."""
    if accelerator is None and spec.resources.is_fractional_accelerator:
        raise WorkloadError("spec.resources.nvidia.com/gpu", "a fraction of a GPU needs a GPU-sharing device "
                                                             "plugin; the Kubernetes backend asks for whole GPUs")
    template: Obj = copy.deepcopy(json.loads(spec.pod_template_json)) if spec.pod_template_json else {}
    pod = template.setdefault("spec", {})
    containers = pod.get("containers") or [_default_container(spec)]
    pod["containers"] = containers
    render_accelerators(pod, containers, resources=spec.resources, model="", accelerator=accelerator,
                        main=accelerator_container(template), at="spec.template.spec")
    if spec.kind is JobKind.TRAINING:
        # backoffLimit 0: a gang is all or nothing; an elastic one's retries are set after rendering (elastic.py)
        job_spec: Obj = {"completionMode": "Indexed", "completions": placement.replicas,
                         "parallelism": placement.replicas, "backoffLimit": 0, "template": template}
        if finished_ttl_seconds is not None:
            job_spec["ttlSecondsAfterFinished"] = finished_ttl_seconds
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {}, "spec": job_spec}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {},
            "spec": {"replicas": placement.replicas, "template": template}}


def build_workload(placement: Placement, spec: JobSpec, *, namespace: str,
                   options: RenderOptions = DEFAULT_OPTIONS) -> Obj:
    """The object that runs a placement; WorkloadError if this backend cannot express it."""
    options = RenderOptions(labels=options.labels, annotations=options.annotations,
                            finished_ttl_seconds=options.finished_ttl_seconds,
                            master_port=master_port(dict(spec.annotations), options.master_port),
                            cluster_domain=options.cluster_domain,
                            procs_per_replica=procs_per_replica(placement, spec),
                            accelerator=options.accelerator, env=options.env + array_env(spec))
    if spec.workload_json:
        try:
            obj = json.loads(spec.workload_json)
        except ValueError as exc:
            raise WorkloadError("spec.workload", f"is not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise WorkloadError("spec.workload", "must be a Kubernetes object")
        out = adapter_for(obj).render(obj, placement, namespace=namespace, options=options)
        ttl = options.finished_ttl_seconds
        if (out.get("apiVersion"), out.get("kind")) == ("batch/v1", "Job") and ttl is not None \
                and isinstance(out.get("spec"), dict):
            # A brought Job without a TTL of its own stayed on its member for ever once finished: a failed first
            # try's Job outlived the FederatedJob's deletion (outside QA, ML user F7). It ends as ours do.
            out["spec"].setdefault("ttlSecondsAfterFinished", ttl)
        return out
    obj = default_object(placement, spec, finished_ttl_seconds=options.finished_ttl_seconds,
                         accelerator=options.accelerator)
    adapter = BATCH_JOB if spec.kind is JobKind.TRAINING else DEPLOYMENT
    out = adapter.render(obj, placement, namespace=namespace, options=options)
    # an elastic gang: torchrun min:max, its c10d store on replica 0's FQDN, pod retries (elastic.py)
    apply_elastic(out, spec, port=options.master_port, cluster_domain=options.cluster_domain)
    return out


def workload_phase(workload: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[JobPhase, str]:
    """Placed -> Running -> Succeeded/Failed, from a workload of any supported kind and its pods."""
    adapter = adapter_of(workload)
    if adapter is None:
        return JobPhase.FAILED, f"{workload.get('kind')} is not a workload kind this agent reads"
    return adapter.phase(workload, list(pods))


def workload_counts(workload: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[int, int] | None:
    """(running, ready) replicas of a serving workload (JobUpdate.replicas_running/replicas_ready), None for a
    kind that does not serve or that this agent does not read."""
    adapter = adapter_of(workload)
    return None if adapter is None else adapter.counts(workload, list(pods))


__all__ = ["ADAPTERS", "BATCH_JOB", "BUILTIN_KINDS", "BY_KEY", "DEFAULT_IMAGE", "DEPLOYMENT", "REGISTRY",
           "SIM_DURATION_ANNOTATION", "adapter_for", "adapter_of", "build_workload", "default_object",
           "supported_kinds", "workload_counts", "workload_phase"]
