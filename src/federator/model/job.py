"""Jobs, placements and the reasons a job waits.

A *job* is what a user submits. A *placement* is the part of a job bound to one
member cluster: a training gang has exactly one, an inference job has one per
cluster its replicas spread over. The same names are used in the proto, the
CRD, the metrics and the docs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import NewType

from federator.model.resources import Resources

JobId = NewType("JobId", str)
PlacementId = NewType("PlacementId", str)


class JobKind(StrEnum):
    TRAINING = "training"
    INFERENCE = "inference"


class JobPhase(StrEnum):
    PENDING = "Pending"
    PLACED = "Placed"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.CANCELLED)

    @property
    def is_active(self) -> bool:
        """Holds capacity in a member cluster."""
        return self in (JobPhase.PLACED, JobPhase.RUNNING)


class ReasonCode(StrEnum):
    """Why a job is pending. A bounded set: it is a metric label."""

    NO_CLUSTERS = "NoClusters"
    CLUSTER_NOT_READY = "ClusterNotReady"
    GPU_MODEL_UNAVAILABLE = "GpuModelUnavailable"
    INSUFFICIENT_GPUS = "InsufficientGpus"
    GANG_DOES_NOT_FIT = "GangDoesNotFit"
    INSUFFICIENT_CPU = "InsufficientCpu"
    INSUFFICIENT_MEMORY = "InsufficientMemory"
    QUOTA_EXCEEDED = "QuotaExceeded"
    REGION_UNAVAILABLE = "RegionUnavailable"
    REFUSED_BY_CLUSTER = "RefusedByCluster"
    RECENTLY_REFUSED = "RecentlyRefused"  # that cluster refused this job a moment ago; others are tried first
    PREEMPTED = "Preempted"  # was running; preempted by higher-priority or under-share work
    LATENCY_BUDGET = "LatencyBudget"  # no region with capacity is close enough to the users
    WORKLOAD_KIND_UNSUPPORTED = "WorkloadKindUnsupported"  # no cluster runs the job's spec.workload kind
    SHARING_UNAVAILABLE = "SharingUnavailable"  # the model is there, but not shared (fractions) or not whole
    WAITING = "Waiting"


@dataclass(frozen=True, slots=True)
class Reason:
    code: ReasonCode
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a user asked for; the spec of a FederatedJob."""

    name: str
    kind: JobKind
    replicas: int
    resources: Resources  # per replica
    gpu_models: tuple[str, ...] = ()  # any of these; () = any model (or none, if no GPUs)
    queue: str = "default"
    priority: int = 0
    preferred_regions: tuple[str, ...] = ()
    namespace: str = "default"
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    pod_template_json: str = ""
    preemptible: bool = False  # may be stopped and requeued to make room for other work
    min_regions: int = 1  # inference: replicas must span at least this many regions
    user_region: str = ""  # inference: where the users are; with max_latency_ms, a hard bound
    max_latency_ms: int = 0  # 0 = no budget; else only regions this close to user_region
    # The user's own workload object (spec.workload) as JSON; "" = the federator makes a batch/v1 Job
    # (training) or apps/v1 Deployment (inference). replicas, resources and kind are derived from it.
    workload_json: str = ""
    # Replicas that must stay in one cluster together when an inference job spreads (a LeaderWorkerSet
    # group); derived from the workload, 1 otherwise.
    group_size: int = 1

    @property
    def workload_kind(self) -> str:
        """"Kind.group" of spec.workload ("JobSet.jobset.x-k8s.io"); "" when the federator makes the workload."""
        return workload_kind_of(self.workload_json) if self.workload_json else ""

    @property
    def total(self) -> Resources:
        return self.resources * self.replicas

    def annotation(self, key: str, default: str = "") -> str:
        return dict(self.annotations).get(key, default)


@lru_cache(maxsize=4096)
def workload_kind_of(workload_json: str) -> str:
    """"Kind.group" ("Job.batch", "JobSet.jobset.x-k8s.io") of a workload object in JSON; "" if unreadable."""
    try:
        obj = json.loads(workload_json)
    except ValueError:
        return ""
    if not isinstance(obj, dict):
        return ""
    api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    return f"{kind}.{group}" if group else kind


@dataclass(slots=True)
class Placement:
    """The part of a job bound to one cluster. `generation` is the fencing token."""

    placement_id: PlacementId
    job_id: JobId
    cluster: str
    region: str
    replicas: int
    gpu_model: str
    generation: int
    phase: JobPhase = JobPhase.PLACED
    message: str = ""


@dataclass(slots=True)
class Job:
    """A job as the federator tracks it (mutable server state, persisted by the store)."""

    job_id: JobId
    spec: JobSpec
    submitted_at: float
    phase: JobPhase = JobPhase.PENDING
    pending_reason: Reason | None = None
    placements: list[Placement] = field(default_factory=list)
    placed_at: float = 0.0
    finished_at: float = 0.0
    message: str = ""
    generation: int = 0

    @property
    def clusters(self) -> list[str]:
        return [p.cluster for p in self.placements]
