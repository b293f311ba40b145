"""Plain domain types shared by every layer: resources, clusters, jobs, placements."""

from federator.model.cluster import (
    BUILTIN_WORKLOAD_KINDS,
    PRICE_LABEL,
    WORKLOAD_KINDS,
    ClusterCapacity,
    ClusterInfo,
    ClusterState,
    GpuPool,
)
from federator.model.job import Job, JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Reason, ReasonCode
from federator.model.resources import MILLI, QuantityError, Resources, format_bytes, format_gpus, to_bytes, to_milli

__all__ = [
    "BUILTIN_WORKLOAD_KINDS",
    "MILLI",
    "PRICE_LABEL",
    "WORKLOAD_KINDS",
    "ClusterCapacity",
    "ClusterInfo",
    "ClusterState",
    "GpuPool",
    "Job",
    "JobId",
    "JobKind",
    "JobPhase",
    "JobSpec",
    "Placement",
    "PlacementId",
    "QuantityError",
    "Reason",
    "ReasonCode",
    "Resources",
    "format_bytes",
    "format_gpus",
    "to_bytes",
    "to_milli",
]
