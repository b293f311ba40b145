"""CpuExcess: a fraction of a GPU that asks many cores goes where cores per free GPU are plentiful.

A fractional replica takes a part of one device but its CPU from the node. On a pool whose nodes have
few cores per free whole device (the synthetic fleet's L40S, A100 and L4: 16 a GPU; H100 28, A10 32), a
100m fraction asking 16 cores takes a node's worth of CPU per device, and the node's other devices are
stranded: free, with no CPU for anything that wants them. `Fragmentation`'s expected fragment counts a
strand only where the cycle's demand cannot use what is left, and between pools it nearly ties it does
not see that the same fraction would have cost a roomier pool nothing. This term tips those near-ties.

A replica's CPU excess on a pool is max(0, min(1, c / C) - m / 1000): c its CPU, C the pool's most free
CPU per free whole device (a node with i whole devices and k cores free: k / i, the best of its room
classes, else of its host room), m its milli-GPU; what it takes of a device's share of a node's CPU
beyond the share of the device it takes. Whole-device replicas and CPU-only work score alike everywhere.

The score is `POINTS` x (1 - excess), 0..3 of MAX_SCORE: a tie-break's range, so that at weight 3, as
`Fragmentation`'s, a full excess costs what 3 of `Fragmentation`'s points do (a growth of 3/50 milli-GPU
per milli-GPU). It only tips: at 10 of `Fragmentation`'s points it outweighed the growth and lost
synthetic `fractional` (docs/benchmarks.md, issue 12, rounds 32-33). Not MAX_SCORE less the excess: a
constant that large in every pool's weighted sum costs the sum the last bits that tell near-ties apart
(synthetic `multi` seed 3 gave 0.9980 with it, 0.9977 without, as the round-32 what-if).
"""

from __future__ import annotations

from dataclasses import dataclass

from federator.model import MILLI, AcceleratorPool, ClusterInfo
from federator.scheduler.framework import MAX_SCORE, CycleContext, PlacementRequest, accepted_pools

POINTS = 3.0
"""The score with no excess; a full excess (1.0) scores 0."""


def cores_per_free_device(pool: AcceleratorPool) -> float:
    """The pool's most free CPU milli per free whole device on one node; 0 when it has no free whole device
    (or reports no room, so the term has nothing to read)."""
    best = 0.0
    if pool.room_classes:
        for bucket, cpu, _memory, count in pool.room_classes:
            if bucket > 0 and count:
                best = max(best, cpu / bucket)
        return best
    for i, (cpu, _memory) in enumerate(pool.host_room):
        if i and i < len(pool.nodes_by_free) and pool.nodes_by_free[i]:
            best = max(best, cpu / i)
    return best


def cpu_excess(pool: AcceleratorPool, cpu_milli: int, accelerator_milli: int) -> float:
    """max(0, min(1, CPU / the pool's CPU per free device) - the GPU share): 0 for whole devices and when the
    pool says nothing of its room."""
    if not 0 < accelerator_milli < MILLI:
        return 0.0
    per = cores_per_free_device(pool)
    if per <= 0:
        return 0.0
    return max(0.0, min(1.0, cpu_milli / per) - accelerator_milli / MILLI)


@dataclass(frozen=True, slots=True)
class CpuExcess:
    """The pool where a fractional replica's CPU strands least of the devices beside it (module docstring)."""

    name: str = "CpuExcess"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> float:
        if not request.accelerator_milli:
            return MAX_SCORE // 2
        return max((self.pool_score(request, cluster, p, ctx) for p in accepted_pools(request, cluster)), default=0)

    def pool_score(
        self, request: PlacementRequest, cluster: ClusterInfo, pool: AcceleratorPool, ctx: CycleContext
    ) -> float:
        res = request.spec.resources
        return POINTS * (1.0 - cpu_excess(pool, res.cpu_milli, res.accelerator_milli))
