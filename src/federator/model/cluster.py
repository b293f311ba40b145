"""What the federator knows of a member cluster: identity, state and capacity.

Capacity is a *resource model*, not a node list: per GPU model, how many nodes
have 0, 1, 2, ... GPUs free. That is enough to decide whether a gang of
N replicas x G GPUs fits, and keeps the scheduler's cost independent of the
number of nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class ClusterState(StrEnum):
    READY = "Ready"
    PARTITIONED = "Partitioned"  # stream dropped; jobs keep running; no new work
    LOST = "Lost"  # gone past the grace time; its jobs may be re-placed


PRICE_LABEL = "federator.io/price-per-gpu-hour"


@dataclass(frozen=True, slots=True)
class GpuPool:
    """The nodes of one cluster that carry one GPU model."""

    gpu_model: str
    nodes_by_free_gpus: tuple[int, ...]  # [i] = nodes with exactly i GPUs free
    total_gpus: int
    allocatable_gpus: int

    @property
    def free_gpus(self) -> int:
        return sum(i * n for i, n in enumerate(self.nodes_by_free_gpus))

    @property
    def nodes(self) -> int:
        return sum(self.nodes_by_free_gpus)

    def nodes_with_at_least(self, gpus: int) -> int:
        return sum(self.nodes_by_free_gpus[max(gpus, 0):])

    def gang_capacity(self, gpus_per_replica: int) -> int:
        """How many replicas of `gpus_per_replica` whole GPUs fit (several may share a node)."""
        if gpus_per_replica <= 0:
            return 0
        return sum((i // gpus_per_replica) * n for i, n in enumerate(self.nodes_by_free_gpus))

    def take(self, gpus_per_replica: int, replicas: int) -> GpuPool:
        """The pool after binding `replicas` replicas, best fit: fullest nodes first.

        Best fit keeps nodes with many free GPUs whole for large gangs, and it
        is what the agent does too, so the federator's view stays close to the
        cluster's.
        """
        counts = list(self.nodes_by_free_gpus)
        left = replicas
        for free in range(gpus_per_replica, len(counts)):
            while left and counts[free]:
                per_node = min(free // gpus_per_replica, left)
                counts[free] -= 1
                counts[free - per_node * gpus_per_replica] += 1
                left -= per_node
            if not left:
                break
        if left:
            raise ValueError(f"{replicas} x {gpus_per_replica} GPUs do not fit in pool {self.gpu_model}")
        return replace(self, nodes_by_free_gpus=tuple(counts))


@dataclass(frozen=True, slots=True)
class ClusterCapacity:
    gpu_pools: tuple[GpuPool, ...] = ()
    cpu_milli_allocatable: int = 0
    cpu_milli_free: int = 0
    memory_bytes_allocatable: int = 0
    memory_bytes_free: int = 0
    node_cpu_milli_free_max: int = 0
    node_memory_bytes_free_max: int = 0
    sequence: int = 0
    placement_ids: frozenset[str] = frozenset()

    def pool(self, gpu_model: str) -> GpuPool | None:
        for pool in self.gpu_pools:
            if pool.gpu_model == gpu_model:
                return pool
        return None

    @property
    def total_gpus(self) -> int:
        return sum(p.total_gpus for p in self.gpu_pools)

    @property
    def allocatable_gpus(self) -> int:
        return sum(p.allocatable_gpus for p in self.gpu_pools)

    @property
    def free_gpus(self) -> int:
        return sum(p.free_gpus for p in self.gpu_pools)


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """One member cluster as the scheduler sees it in a snapshot."""

    name: str
    region: str
    state: ClusterState = ClusterState.READY
    labels: tuple[tuple[str, str], ...] = ()
    capacity: ClusterCapacity = field(default_factory=ClusterCapacity)

    @property
    def price_per_gpu_hour(self) -> float | None:
        raw = dict(self.labels).get(PRICE_LABEL)
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None
