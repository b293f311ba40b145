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
"""

from __future__ import annotations

from collections.abc import Iterable

from federator.model import MILLI, ClusterInfo


class RegionUse:
    """Per region: allocatable and free milli-accelerators of its ready clusters, as the cycle reserves them,
    and the RegionLoad score each gives (`score`)."""

    __slots__ = ("allocatable", "clusters", "free", "points", "scores")

    def __init__(self, clusters: Iterable[ClusterInfo], points: int) -> None:
        self.points = points  # the score of a region with nothing used (framework.MAX_SCORE)
        self.allocatable: dict[str, int] = {}
        self.free: dict[str, int] = {}
        self.clusters: dict[str, list[str]] = {}
        for c in clusters:
            self.allocatable[c.region] = self.allocatable.get(c.region, 0) \
                + c.capacity.allocatable_accelerators * MILLI
            self.free[c.region] = self.free.get(c.region, 0) + sum(p.free_milli for p in c.capacity.accelerator_pools)
            self.clusters.setdefault(c.region, []).append(c.name)
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

    def take(self, region: str, milli: int) -> tuple[str, ...]:
        """Count a reservation of `milli` milli-accelerators in `region`; the names of the region's clusters
        when its score moved (their RegionLoad scores are stale), else ()."""
        if not milli or region not in self.scores:
            return ()
        self.free[region] -= milli
        score = self._score(region)
        if score == self.scores[region]:
            return ()
        self.scores[region] = score
        return tuple(self.clusters[region])
