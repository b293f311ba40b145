"""Builders for the domain types tests need, with readable defaults."""

from __future__ import annotations

from federator.model import (
    PRICE_LABEL,
    AcceleratorPool,
    ClusterCapacity,
    ClusterInfo,
    ClusterState,
    JobId,
    JobKind,
    JobSpec,
    Resources,
)
from federator.scheduler import PlacementRequest

GiB = 2**30


def pool(model: str, *, nodes: int = 0, free: int = 8, gpus_per_node: int = 8,
         extra: dict[int, int] | None = None) -> AcceleratorPool:
    """`nodes` nodes with `free` accelerators free each, plus {free: count} extras."""
    hist = [0] * (gpus_per_node + 1)
    hist[free] += nodes
    for f, n in (extra or {}).items():
        hist[f] += n
    total = sum(hist) * gpus_per_node
    return AcceleratorPool(model, tuple(hist), total, total)


def cluster(name: str, region: str, *pools: AcceleratorPool, cpu: int = 1000, memory_gib: int = 8192,
            price: float | None = None, state: ClusterState = ClusterState.READY) -> ClusterInfo:
    labels = ((PRICE_LABEL, str(price)),) if price is not None else ()
    cap = ClusterCapacity(
        accelerator_pools=tuple(pools), cpu_milli_allocatable=cpu * 1000, cpu_milli_free=cpu * 1000,
        memory_bytes_allocatable=memory_gib * GiB, memory_bytes_free=memory_gib * GiB,
        node_cpu_milli_free_max=min(cpu, 128) * 1000, node_memory_bytes_free_max=min(memory_gib, 2048) * GiB,
    )
    return ClusterInfo(name, region, state, labels, cap)


def job(name: str, *, kind: JobKind = JobKind.TRAINING, replicas: int = 1, gpus: float = 0, cpu: float = 1,
        memory_gib: int = 1, models: tuple[str, ...] = (), queue: str = "default", priority: int = 0,
        regions: tuple[str, ...] = ()) -> JobSpec:
    return JobSpec(name=name, kind=kind, replicas=replicas,
                   resources=Resources(int(cpu * 1000), memory_gib * GiB, int(gpus * 1000)),
                   accelerator_models=models, queue=queue, priority=priority, preferred_regions=regions)


def request(spec: JobSpec, *, at: float = 0.0) -> PlacementRequest:
    return PlacementRequest(JobId(spec.name), spec, spec.replicas, at)
