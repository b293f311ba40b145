"""Accelerator use per region through a cycle: what the RegionLoad score reads.

RegionLoad sends work to the regions whose accelerators are least used. It used to read a region's
use once, at the start of the cycle, and hold it for the whole cycle: a cycle of a thousand jobs saw
the region that was emptiest at its start as emptiest to its end, and sent it every job the other
scores left near a tie, long after the cycle had filled it. In `federator sim --mode fill` (1,000 jobs
a cycle; bench/fgd.py's synthetic `fractional` mix, seed 3, no CPU or memory asks) that allocated
0.9941 of the GPUs against 0.9955 in 10-job cycles; with RegionLoad at weight 0, 0.9955 both
(docs/benchmarks.md, round 14).

`RegionUse.take` counts each of the cycle's reservations against its region, and names the region's
clusters when the score moved, so the board re-scores just those (it caches scores per cluster until
the cluster changes). The score is whole points, so it moves once per hundredth of the region's
accelerators: a cycle re-scores a region's clusters a hundred times at most, however many jobs it places.

Use is counted in whole-device equivalents (model.sharing.accelerator_milli_of): a MIG partition is its share of
a device, at the start of the cycle and as the cycle places (`placed`). Counted as whole devices, a region whose
GPUs are cut into 1g.10gb partitions had eight times the accelerators it has, and a replica placed on a partition
took a whole device from it: its share of use was neither what `get clusters` shows nor what it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from federator.model import AcceleratorPool, ClusterInfo
from federator.model.cluster import SHARING_MIG

if TYPE_CHECKING:
    from federator.scheduler.alternatives import Assignment  # which imports framework, which imports this


class RegionUse:
    """Per region: allocatable and free milli-accelerators of its ready clusters, as the cycle reserves them,
    and the RegionLoad score each gives (`score`)."""

    __slots__ = ("allocatable", "clusters", "free", "mig", "points", "scores")

    def __init__(self, clusters: Iterable[ClusterInfo], points: int) -> None:
        self.points = points  # the score of a region with nothing used (framework.MAX_SCORE)
        self.allocatable: dict[str, int] = {}
        self.free: dict[str, int] = {}
        self.clusters: dict[str, list[str]] = {}
        self.mig: dict[tuple[str, str], AcceleratorPool] = {}  # (cluster, model) -> its pool, MIG pools only
        for c in clusters:
            pools = c.capacity.accelerator_pools
            self.allocatable[c.region] = self.allocatable.get(c.region, 0) \
                + sum(p.accelerator_milli_of(p.allocatable_accelerators) for p in pools)
            self.free[c.region] = self.free.get(c.region, 0) + sum(p.free_device_milli for p in pools)
            self.clusters.setdefault(c.region, []).append(c.name)
            self.mig.update(((c.name, p.accelerator_model), p) for p in pools if p.sharing == SHARING_MIG)
        self.scores = {r: self._score(r) for r in self.allocatable}

    def utilization(self, region: str) -> float:
        """The used share of the region's allocatable accelerators (0.0 for a region with none, or unknown)."""
        alloc = self.allocatable.get(region, 0)
        return 1.0 - self.free[region] / alloc if alloc else 0.0

    def _score(self, region: str) -> int:
        return round(self.points * (1.0 - self.utilization(region)))

    def score(self, region: str) -> int:
        """RegionLoad's score of a cluster in `region`: 0..points, falling as the region's use grows."""
        return self.scores.get(region, self.points)

    def placed(self, a: Assignment) -> tuple[str, ...]:
        """`take` what an assignment binds, in device equivalents (a MIG partition at its share)."""
        pool = self.mig.get((a.cluster, a.accelerator_model))
        taken = pool.device_milli_taken(a.accelerator_milli, a.replicas) if pool is not None \
            else a.accelerator_milli * a.replicas
        return self.take(a.region, taken)

    def take(self, region: str, milli: int) -> tuple[str, ...]:
        """Count a reservation of `milli` milli-accelerators (device equivalents) in `region`; the names of the
        region's clusters when its score moved (their RegionLoad scores are stale), else ()."""
        if not milli or region not in self.scores:
            return ()
        self.free[region] -= milli
        score = self._score(region)
        if score == self.scores[region]:
            return ()
        self.scores[region] = score
        return tuple(self.clusters[region])
