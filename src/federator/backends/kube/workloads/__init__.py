"""Workloads of member clusters: one adapter per kind, each a set of pure functions.

| kind | module | shape |
| --- | --- | --- |
| batch/v1 Job | `batch` | training (default): an Indexed Job, with rendezvous when it has several pods |
| apps/v1 Deployment, StatefulSet | `apps` | inference (Deployment by default): replicas spread |
| JobSet (jobset.x-k8s.io) | `jobset` | training |
| TrainJob (trainer.kubeflow.org), PyTorchJob (kubeflow.org) | `kubeflow` | training |
| LeaderWorkerSet (leaderworkerset.x-k8s.io) | `lws` | inference in groups (a group is a gang) |
| RayJob (ray.io) | `ray` | training |

Each adapter reads pod sets (what `jobfile` turns into replicas and
per-replica resources, so the federator and the agent agree), renders an
object for a placement, and reads the phase back from the object's status.
`registry` maps (API group, kind) to its adapter.
"""

from federator.backends.kube.workloads.adapter import TemplatedAdapter, WorkloadAdapter, kind_key
from federator.backends.kube.workloads.common import (
    DEFAULT_FINISHED_TTL_SECONDS,
    DEFAULT_MASTER_PORT,
    GENERATION_LABEL,
    JOB_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PLACEMENT_ANNOTATION,
    PLACEMENT_LABEL,
    REPLICAS_ANNOTATION,
    SELECTOR,
    PodSet,
    RenderOptions,
    WorkloadError,
    needs,
    placement_label,
    placement_of,
    resource_amounts,
    workload_labels,
    workload_name,
)
from federator.backends.kube.workloads.kubeflow import TRAINJOB_KEY, TRAINJOB_POD_LABEL, trainjob_of_pod
from federator.backends.kube.workloads.registry import (
    ADAPTERS,
    BUILTIN_KINDS,
    BY_KEY,
    REGISTRY,
    adapter_for,
    adapter_of,
    build_workload,
    supported_kinds,
    workload_counts,
    workload_phase,
)
from federator.backends.kube.workloads.rendezvous import (
    MASTER_PORT_ANNOTATION,
    needs_rendezvous,
    rendezvous_service,
)

__all__ = [
    "ADAPTERS", "BUILTIN_KINDS", "BY_KEY", "DEFAULT_FINISHED_TTL_SECONDS", "DEFAULT_MASTER_PORT", "GENERATION_LABEL",
    "JOB_ANNOTATION", "MANAGED_BY", "MANAGED_BY_LABEL", "MASTER_PORT_ANNOTATION", "PLACEMENT_ANNOTATION",
    "PLACEMENT_LABEL", "PodSet", "REGISTRY", "REPLICAS_ANNOTATION", "RenderOptions", "SELECTOR", "TRAINJOB_KEY",
    "TRAINJOB_POD_LABEL", "TemplatedAdapter", "WorkloadAdapter", "WorkloadError", "adapter_for", "adapter_of",
    "build_workload", "kind_key", "needs", "needs_rendezvous", "placement_label", "placement_of",
    "rendezvous_service", "resource_amounts", "supported_kinds", "trainjob_of_pod", "workload_labels",
    "workload_counts", "workload_name", "workload_phase",
]
