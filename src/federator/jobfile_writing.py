"""A JobSpec written back as the FederatedJob document it came from: `parse_job`'s inverse.

Why a module of its own: `jobfile.py` reads documents into specs, and this writes them (`federator get -o yaml`,
a FederatedJob the federator creates, an array's tasks, a simulation's records): the other direction, which grew
jobfile.py past 600 lines (review of stop 60). Moved verbatim; each part of a spec is written by the module that
reads it (accelerators, affinity, failure policy, placement asks), so the two directions stay side by side there.
"""

from __future__ import annotations

import json
from typing import Any

from federator.jobfile import API_VERSION, KIND
from federator.jobfile_accelerators import GPU_RESOURCE, alternative_document, one_count
from federator.jobfile_affinity import clusters_document
from federator.jobfile_failure_policy import failure_policy_document
from federator.jobfile_placement_asks import weights_document
from federator.model import JobSpec
from federator.model.dependency import DEPENDS_ON_ANNOTATION


def spec_to_document(spec: JobSpec) -> dict[str, Any]:
    """The FederatedJob document for a spec (inverse of parse_job)."""
    resources: dict[str, Any] = {}
    if spec.resources.cpu_milli:
        resources["cpu"] = f"{spec.resources.cpu_milli}m"
    if spec.resources.memory_bytes:
        resources["memory"] = str(spec.resources.memory_bytes)
    if spec.resources.accelerator_milli:
        g = spec.resources.accelerator_milli
        resources[GPU_RESOURCE] = g // 1000 if g % 1000 == 0 else f"{g}m"
    body: dict[str, Any] = {"kind": spec.kind.value, "replicas": spec.replicas, "resources": resources,
                            "queue": spec.queue, "priority": spec.priority}
    if spec.workload_json:  # kind, replicas and resources are the workload's own
        try:
            workload: object = json.loads(spec.workload_json)
        except (ValueError, RecursionError):
            workload = spec.workload_json  # parse_job says what is wrong with it
        body = {"workload": workload, "queue": spec.queue, "priority": spec.priority}
    if spec.accelerator_models:
        body["acceleratorModels"] = list(spec.accelerator_models)
    if spec.accelerators and spec.workload_json:
        # derived from the workload's own resource (another vendor's, e.g. huawei.com/Ascend910): its models
        # are what the user wrote; parse_job derives the alternatives from the workload again
        models = [a.model for a in spec.accelerators if a.model]
        if models:
            body["acceleratorModels"] = models
    elif (one := one_count(spec.accelerators)) is not None:
        name, milli, models = one
        resources[name] = milli // 1000 if milli % 1000 == 0 else f"{milli}m"
        if models:
            body["acceleratorModels"] = models
    elif spec.accelerators:
        body["accelerators"] = [alternative_document(a) for a in spec.accelerators]
    regions: dict[str, Any] = {}
    if spec.allowed_regions:
        regions["allowed"] = list(spec.allowed_regions)
    if spec.preferred_regions:
        regions["preferred"] = list(spec.preferred_regions)
    if spec.min_regions != 1:
        regions["minRegions"] = spec.min_regions
    if spec.user_region:
        regions["user"] = spec.user_region
    if spec.max_latency_ms:
        regions["maxLatencyMs"] = spec.max_latency_ms
    if spec.region_weights:
        regions["weights"] = weights_document(spec.region_weights)
    if regions:
        body["regions"] = regions
    if spec.clusters.bounds:
        body["clusters"] = clusters_document(spec.clusters)
    if spec.preemptible:
        body["preemptible"] = True
    if spec.max_run_seconds:
        body["maxRunSeconds"] = spec.max_run_seconds
    if spec.failure_policy.set:
        body["failurePolicy"] = failure_policy_document(spec.failure_policy)
    if spec.prefer:
        body["prefer"] = spec.prefer.value
    if spec.min_replicas and not spec.workload_json:  # a workload's is derived from it again (jobfile_elastic.py)
        body["minReplicas"] = spec.min_replicas
    if spec.pod_template_json:
        body["template"] = json.loads(spec.pod_template_json)
    meta: dict[str, Any] = {"name": spec.name, "namespace": spec.namespace}
    if spec.labels:
        meta["labels"] = dict(spec.labels)
    annotations = dict(spec.annotations)
    dependency = spec.depends_on
    if dependency is not None:  # said as the field it is written as, not as its stored form
        del annotations[DEPENDS_ON_ANNOTATION]
        body["dependsOn"] = {"condition": dependency.condition.value, "jobs": list(dependency.jobs)}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": body}


__all__ = ["spec_to_document"]
