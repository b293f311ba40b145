"""The built-in Filter and Score plugins, and the registry that names them.

Each plugin is a small frozen dataclass. To add one: write a class with a
`name` and a `filter` or `score` method, and add it to FILTERS or SCORES.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from federator.model import ClusterInfo, ClusterState, JobKind, Reason, ReasonCode, format_bytes
from federator.scheduler.framework import (
    MAX_SCORE,
    CycleContext,
    FilterPlugin,
    PlacementRequest,
    ScorePlugin,
    matching_models,
)


@dataclass(frozen=True, slots=True)
class ClusterReady:
    """No new work goes to a cluster whose agent is partitioned or lost."""

    name: str = "ClusterReady"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo) -> Reason | None:
        if cluster.state is not ClusterState.READY:
            return Reason(ReasonCode.CLUSTER_NOT_READY, f"{cluster.name} is {cluster.state}")
        return None


@dataclass(frozen=True, slots=True)
class GpuModelFilter:
    """The cluster must have nodes of an accepted GPU model."""

    name: str = "GpuModel"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo) -> Reason | None:
        if request.gpus_per_replica == 0:
            return None
        if not matching_models(request.spec, cluster):
            wanted = "|".join(request.spec.gpu_models) or "any GPU"
            return Reason(ReasonCode.GPU_MODEL_UNAVAILABLE, f"{cluster.name} has no {wanted} nodes")
        return None


@dataclass(frozen=True, slots=True)
class GangFit:
    """Whole replicas must fit on nodes' free GPUs, using the nodes-by-free-GPUs model.

    For a training gang all replicas must fit in this one cluster; for
    inference one replica is enough to make the cluster a candidate (the
    spreading step decides how many go where).
    """

    name: str = "GangFit"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo) -> Reason | None:
        g = request.gpus_per_replica
        if g == 0:
            return None
        need = request.replicas if request.spec.kind is JobKind.TRAINING else 1
        best = 0
        best_model = ""
        for model in matching_models(request.spec, cluster):
            pool = cluster.capacity.pool(model)
            if pool is None:
                continue
            fits = pool.gang_capacity(g)
            if fits >= need:
                return None
            if fits >= best:
                best, best_model = fits, model
        if best == 0 and all(
            (p := cluster.capacity.pool(m)) is None or p.nodes_with_at_least(g) == 0
            for m in matching_models(request.spec, cluster)
        ):
            return Reason(
                ReasonCode.INSUFFICIENT_GPUS,
                f"{cluster.name} has no node with {g} free {best_model or 'matching'} GPUs",
            )
        return Reason(
            ReasonCode.GANG_DOES_NOT_FIT,
            f"{cluster.name} fits {best} of {need} replicas x {g} {best_model} GPUs",
        )


@dataclass(frozen=True, slots=True)
class CpuMemoryFit:
    """CPU and memory for the replicas must be free, in the cluster and on one node."""

    name: str = "CpuMemoryFit"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo) -> Reason | None:
        cap = cluster.capacity
        res = request.spec.resources
        n = request.replicas if request.spec.kind is JobKind.TRAINING else 1
        if res.cpu_milli > cap.node_cpu_milli_free_max or res.cpu_milli * n > cap.cpu_milli_free:
            return Reason(
                ReasonCode.INSUFFICIENT_CPU,
                f"{cluster.name} has {cap.cpu_milli_free / 1000:g} CPUs free "
                f"({cap.node_cpu_milli_free_max / 1000:g} on its freest node), "
                f"needs {n} x {res.cpu_milli / 1000:g}",
            )
        if res.memory_bytes > cap.node_memory_bytes_free_max or res.memory_bytes * n > cap.memory_bytes_free:
            return Reason(
                ReasonCode.INSUFFICIENT_MEMORY,
                f"{cluster.name} has {format_bytes(cap.memory_bytes_free)} memory free, "
                f"needs {n} x {format_bytes(res.memory_bytes)}",
            )
        return None


def _gpu_free_fraction(request: PlacementRequest, cluster: ClusterInfo) -> float:
    cap = cluster.capacity
    if request.gpus_per_replica:
        pools = [cap.pool(m) for m in matching_models(request.spec, cluster)]
        alloc = sum(p.allocatable_gpus for p in pools if p)
        return sum(p.free_gpus for p in pools if p) / alloc if alloc else 0.0
    return cap.cpu_milli_free / cap.cpu_milli_allocatable if cap.cpu_milli_allocatable else 0.0


@dataclass(frozen=True, slots=True)
class LeastAllocated:
    """Prefer the cluster with the largest free share of the resource the job needs."""

    name: str = "LeastAllocated"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> int:
        return round(MAX_SCORE * _gpu_free_fraction(request, cluster))


@dataclass(frozen=True, slots=True)
class RegionLoad:
    """Send work to underused regions: score falls with the region's GPU utilisation."""

    name: str = "RegionLoad"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> int:
        util = ctx.region_gpu_utilization.get(cluster.region, 0.0)
        return round(MAX_SCORE * (1.0 - util))


@dataclass(frozen=True, slots=True)
class Price:
    """Prefer cheaper GPU-hours; a cluster with no price label scores in the middle."""

    name: str = "Price"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> int:
        price = cluster.price_per_gpu_hour
        if price is None or ctx.max_price <= 0:
            return MAX_SCORE // 2
        return round(MAX_SCORE * (1.0 - min(price, ctx.max_price) / ctx.max_price))


@dataclass(frozen=True, slots=True)
class RegionPreference:
    """Keep work near its users or data: full score in a preferred region."""

    name: str = "RegionPreference"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> int:
        preferred = request.spec.preferred_regions
        if not preferred:
            return 0
        return MAX_SCORE if cluster.region in preferred else 0


FILTERS: Mapping[str, Callable[[], FilterPlugin]] = {
    "ClusterReady": ClusterReady,
    "GpuModel": GpuModelFilter,
    "GangFit": GangFit,
    "CpuMemoryFit": CpuMemoryFit,
}

SCORES: Mapping[str, Callable[[], ScorePlugin]] = {
    "LeastAllocated": LeastAllocated,
    "RegionLoad": RegionLoad,
    "Price": Price,
    "RegionPreference": RegionPreference,
}

DEFAULT_SCORE_WEIGHTS: Mapping[str, int] = {
    "LeastAllocated": 1,
    "RegionLoad": 1,
    "Price": 1,
    "RegionPreference": 3,
}
