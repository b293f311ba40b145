"""What `federator get clusters` reads of a cluster in the BASIC view: per-pool totals, free and quota held.

The BASIC view (ListClustersRequest.view) leaves out the histograms a
`ClusterCapacity` derives free accelerators from, and says free outright
(AcceleratorPool.free_accelerators); these summaries read it as the tables
do the full capacity, so `cluster_rows` takes either.
"""

from __future__ import annotations

from dataclasses import dataclass

from federator.api.v1 import agent_pb2
from federator.model.cluster import accelerator_milli_of, vendor_totals


@dataclass(frozen=True, slots=True)
class PoolSummary:
    accelerator_model: str
    vendor: str
    total_accelerators: int
    allocatable_accelerators: int
    free_accelerators: int
    quota_held_accelerators: int
    nodes_by_free: tuple[int, ...] = ()  # not in the BASIC view
    sharing: str = ""
    unit_milli: int = 0  # MIG: what one partition is worth (accelerator_milli_of)

    def accelerator_milli_of(self, units: int) -> int:
        return accelerator_milli_of(self, units)


@dataclass(frozen=True, slots=True)
class CapacitySummary:
    accelerator_pools: tuple[PoolSummary, ...]
    cpu_milli_allocatable: int
    cpu_milli_free: int
    memory_bytes_allocatable: int
    memory_bytes_free: int
    workload_kinds: frozenset[str]

    @property
    def free_accelerators(self) -> int:
        return sum(p.free_accelerators for p in self.accelerator_pools)

    @property
    def total_accelerators(self) -> int:
        return sum(p.total_accelerators for p in self.accelerator_pools)

    @property
    def quota_held_accelerators(self) -> int:
        return sum(p.quota_held_accelerators for p in self.accelerator_pools)

    # Whole-device equivalents in milli, as ClusterCapacity's (model.cluster.accelerator_milli_of): what the
    # tables show. The sums above add each pool's own units (a MIG partition as one).
    @property
    def free_accelerator_milli(self) -> int:
        return sum(p.accelerator_milli_of(p.free_accelerators) for p in self.accelerator_pools)

    @property
    def total_accelerator_milli(self) -> int:
        return sum(p.accelerator_milli_of(p.total_accelerators) for p in self.accelerator_pools)

    @property
    def quota_held_accelerator_milli(self) -> int:
        return sum(p.accelerator_milli_of(p.quota_held_accelerators) for p in self.accelerator_pools)

    def by_vendor(self) -> dict[str, tuple[int, int]]:
        """vendor -> (free, total) accelerator milli, sorted by vendor (as ClusterCapacity.by_vendor)."""
        return vendor_totals(self.accelerator_pools)


def summary_from_pb(pb: agent_pb2.CapacityReport) -> CapacitySummary:
    return CapacitySummary(
        accelerator_pools=tuple(PoolSummary(p.accelerator_model, p.vendor, p.total_accelerators,
                                            p.allocatable_accelerators, p.free_accelerators,
                                            p.quota_held_accelerators, sharing=p.sharing, unit_milli=p.unit_milli)
                                for p in pb.accelerator_pools),
        cpu_milli_allocatable=pb.cpu_milli_allocatable, cpu_milli_free=pb.cpu_milli_free,
        memory_bytes_allocatable=pb.memory_bytes_allocatable, memory_bytes_free=pb.memory_bytes_free,
        workload_kinds=frozenset(pb.workload_kinds))


__all__ = ["CapacitySummary", "PoolSummary", "summary_from_pb"]
