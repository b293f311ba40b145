"""The plugin framework: Filter and Score plugins over a cluster snapshot.

Modelled on the Kubernetes scheduler framework, with a *cluster* where
kube-scheduler has a node. A plugin implements only the extension points it
needs; a rejection is a value (a Reason with a bounded code), never an
exception, so the cycle can report why every pending job waits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from federator.model import MILLI, ClusterInfo, JobId, JobSpec, Reason

MAX_SCORE = 100


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """A job, or the rest of one, asking for `replicas` replicas somewhere."""

    job_id: JobId
    spec: JobSpec
    replicas: int
    submitted_at: float = 0.0

    @property
    def gpus_per_replica(self) -> int:
        """Whole GPUs a replica occupies for fitting (a fractional replica takes one)."""
        return math.ceil(self.spec.resources.gpu_milli / MILLI)


@dataclass(frozen=True, slots=True)
class CycleContext:
    """Values computed once per cycle over the whole snapshot (kube's PreScore)."""

    max_price: float = 0.0
    region_gpu_utilization: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class FilterPlugin(Protocol):
    name: str

    def filter(self, request: PlacementRequest, cluster: ClusterInfo) -> Reason | None:
        """None if `request` could run on `cluster` now; otherwise why not."""


@runtime_checkable
class ScorePlugin(Protocol):
    name: str

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> int:
        """0..MAX_SCORE; higher is better. Only called for clusters that passed every filter."""


_TOKEN_SPLIT = re.compile(r"[-_ ./]+")


def gpu_model_matches(requested: str, actual: str) -> bool:
    """Whether a user's GPU model name selects a cluster's GPU model.

    Users write "H100" or "A100-SXM4-80GB"; nodes are labelled with names such
    as "NVIDIA-H100-80GB-HBM3". A request matches when its tokens appear, in
    order and adjacent, among the actual name's tokens (case-insensitive), so
    "H100" matches "NVIDIA-H100-80GB-HBM3" but "A10" does not match "A100".
    """
    want = [t for t in _TOKEN_SPLIT.split(requested.upper()) if t]
    have = [t for t in _TOKEN_SPLIT.split(actual.upper()) if t]
    if not want:
        return False
    for start in range(len(have) - len(want) + 1):
        if have[start : start + len(want)] == want:
            return True
    return False


def matching_models(spec: JobSpec, cluster: ClusterInfo) -> list[str]:
    """The GPU models of `cluster` that `spec` accepts, in the cluster's order."""
    pools = [p.gpu_model for p in cluster.capacity.gpu_pools]
    if not spec.gpu_models:
        return pools
    return [m for m in pools if any(gpu_model_matches(req, m) for req in spec.gpu_models)]
