"""The filters' verdicts kept from one cycle to the next (`Verdicts`), beside the per-cycle board (board.py).

Why: the board caches a fit shape's evaluation of a cluster only within one cycle, so a replay that offers a
dozen new jobs every cycle (a national replay: 1,000 clusters, ~12 jobs of ~11 shapes a cycle) filtered every
cluster afresh for every new shape of every cycle, though only the few clusters that a placement or a departure
touched had changed (docs/benchmarks.md, "Replay at national scale").

What is kept, per fit shape and cluster, is what the *filters* said: the Reason (and whether it holds for the
rest of the cycle) or that they passed, and which of the cluster's pools the shape accepts. Not the scores:
Fragmentation and Scarcity read the cycle's demand and pressure, which move with every arrival and departure,
so a cluster that passes is scored afresh each cycle, by the same code and in the same order as before.

A filter's verdict is a function of the request's fit shape, the cluster and what the filter reads of the
cycle's context. A kept verdict is used only when all three are the same:

- the fit shape: the key (`board.fit_key`, or the shape's when fits are not shared), as within a cycle;
- the cluster: the `ClusterInfo` the verdict was made for (kept), the same object or an equal one. It is frozen
  and compares every field (state, labels, capacity: every pool's histogram and room), so a report that says
  anything new, a cordon, a quarantine or a placement between cycles is a cluster judged anew, and no version
  number has to be kept right by anyone. The simulator keeps a cluster's object while its nodes do not change;
  the server makes a new one each cycle around the last report's capacity, which compares equal at once while
  no report came;
- the context: what `FILTER_READS` says each filter reads of it, for that cluster (a maintenance window, with
  the clock it is judged at), and the cycle's setup (the filters, the latency matrix), whose change drops
  everything kept.

A filter not named in `FILTER_READS` (`ReservedRoom`, which a cycle with reservations adds; a new plugin) turns
the keeping off for that cycle: verdicts are neither used nor kept. A new filter that reads nothing but the
request and the cluster is named with no reads; one that reads the context declares what, and `inputs` must
compare it. The scheduler keeps one `Verdicts` (`cycle.Scheduler`), so a policy reload, which makes a new
scheduler, starts with none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from federator.model import ClusterInfo, JobId, Reason
from federator.scheduler.framework import CycleContext, FilterPlugin

MAINTENANCE, LATENCY, PLACED = "maintenance", "latency", "placed"
FILTER_READS: Mapping[str, frozenset[str]] = {
    "AllowedRegions": frozenset(),
    "ClusterAffinity": frozenset(),  # spec.clusters against the cluster's name and labels (cluster_affinity.py)
    "ClusterReady": frozenset(),
    "WorkloadKind": frozenset(),
    "NotRecentlyRefused": frozenset(),
    "PodSecurity": frozenset(),
    "AcceleratorModel": frozenset(),
    "AcceleratorSharing": frozenset(),
    "GangFit": frozenset(),
    "CpuMemoryFit": frozenset(),
    "MaintenanceWindow": frozenset({MAINTENANCE}),  # ctx.maintenance[cluster], judged at ctx.now
    "RegionLatency": frozenset({LATENCY}),  # ctx.latency_ms, ctx.max_latency_ms: the setup
    "SameAs": frozenset({PLACED}),  # ctx.placed: the clusters of the jobs sameAs names (`inputs`)
}
"""Per filter, what it reads of the cycle's context besides the request and the cluster. Only the filters
named here may have their verdicts kept across cycles."""

KEEP_CYCLES = 32  # a fit shape no cycle asked about for this many cycles is forgotten

# (the cluster it was made for, what its filters read of the context, the Reason or None, the board's
# FIXED/ADMITTED/0 for it, the accepted pools' (count, indices) or None)
Verdict = tuple[ClusterInfo, object, Reason | None, int, tuple[int, tuple[int, ...]] | None]


class Verdicts:
    """Filter verdicts per fit shape and cluster, kept across the cycles of one scheduler."""

    __slots__ = ("by_fit", "cycle", "hits", "maintenance", "misses", "now", "placed", "seen", "setup")

    def __init__(self) -> None:
        self.by_fit: dict[tuple[object, ...], dict[str, Verdict]] = {}
        self.seen: dict[tuple[object, ...], int] = {}  # per fit shape, the last cycle that asked about it
        self.setup: object = None
        self.cycle = 0
        self.maintenance: Mapping[str, float] = {}
        self.now = 0.0
        self.placed: Mapping[JobId, frozenset[str]] = {}
        self.hits = self.misses = 0  # for tests and benchmarks: how often a kept verdict served

    def begin(self, filters: Sequence[FilterPlugin], ctx: CycleContext) -> bool:
        """A new cycle with these filters over this context: whether verdicts are kept in it. A change of
        setup drops every kept verdict; a filter that is not declared turns keeping off for the cycle."""
        self.cycle += 1
        if not all(f.name in FILTER_READS for f in filters):
            return False
        setup = (tuple(f.name for f in filters), tuple(sorted(ctx.region_latency_ms.items())), ctx.max_latency_ms)
        if setup != self.setup:
            self.by_fit.clear()
            self.seen.clear()
            self.setup = setup
        self.maintenance, self.now, self.placed = ctx.maintenance, ctx.now, ctx.placed
        stale = [k for k, last in self.seen.items() if self.cycle - last > KEEP_CYCLES]
        for k in stale:
            del self.by_fit[k], self.seen[k]
        return True

    def of(self, key: tuple[object, ...]) -> dict[str, Verdict]:
        """The verdicts kept for a fit shape (marked as asked about this cycle)."""
        self.seen[key] = self.cycle
        got = self.by_fit.get(key)
        if got is None:
            got = self.by_fit[key] = {}
        return got

    def inputs(self, name: str) -> object:
        """What the declared filters read of this cycle's context for cluster `name` (the setup aside)."""
        at = self.maintenance.get(name)
        if self.placed:  # (sameAs, same_as.py) which named jobs hold a placement here: a move changes the verdict
            here = frozenset(j for j, clusters in self.placed.items() if name in clusters)
            return (None if at is None else (at, self.now), here)
        return None if at is None else (at, self.now)


__all__ = ["FILTER_READS", "KEEP_CYCLES", "Verdict", "Verdicts"]
