"""What `federator get clusters` reads of a cluster in the BASIC view: per-pool totals, free and quota held.

The BASIC view (ListClustersRequest.view) leaves out the histograms a
`ClusterCapacity` derives free accelerators from, and says free outright
(AcceleratorPool.free_accelerators); these summaries read it as the tables
do the full capacity, so `cluster_rows` takes either. The totals over pools are computed in one place for both,
from their pools (model.sharing `accelerator_milli_totals`, `vendor_totals`): a summary holds the figures, no sums.
"""

from __future__ import annotations

from dataclasses import dataclass

from federator.api.v1 import agent_pb2
from federator.model.cluster import accelerator_milli_of


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
    left_out: tuple[tuple[str, str, int], ...] = ()  # (resource_name, reason, devices) its agent does not offer


def summary_from_pb(pb: agent_pb2.CapacityReport) -> CapacitySummary:
    return CapacitySummary(
        accelerator_pools=tuple(PoolSummary(p.accelerator_model, p.vendor, p.total_accelerators,
                                            p.allocatable_accelerators, p.free_accelerators,
                                            p.quota_held_accelerators, sharing=p.sharing, unit_milli=p.unit_milli)
                                for p in pb.accelerator_pools),
        cpu_milli_allocatable=pb.cpu_milli_allocatable, cpu_milli_free=pb.cpu_milli_free,
        memory_bytes_allocatable=pb.memory_bytes_allocatable, memory_bytes_free=pb.memory_bytes_free,
        workload_kinds=frozenset(pb.workload_kinds),
        left_out=tuple((d.resource_name, d.reason, d.devices) for d in pb.left_out))


__all__ = ["CapacitySummary", "PoolSummary", "summary_from_pb"]
