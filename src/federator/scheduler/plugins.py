"""The built-in Filter and Score plugins, and the registry that names them.

Each plugin is a small frozen dataclass. To add one: write a class with a
`name` and a `filter` or `score` method, and add it to FILTERS or SCORES.
Filters say whether a cluster could take the request now (and why not);
scores rank the clusters that pass, 0..MAX_SCORE each, weighted by the policy.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from federator.model import MILLI, AcceleratorPool, ClusterInfo, ClusterState, Reason, ReasonCode, format_bytes
from federator.model.cluster import SHARING_MIG
from federator.model.node_room import node_room_fits
from federator.scheduler import pod_set_fit
from federator.scheduler.cluster_affinity import ClusterAffinity
from federator.scheduler.cpu_excess import CpuExcess
from federator.scheduler.fragmentation import fragment_growth
from federator.scheduler.framework import (
    ASKED_DEVICES_HAVE,
    MAX_SCORE,
    OTHER_VENDORS_ONLY,
    CycleContext,
    FilterPlugin,
    PlacementRequest,
    ScorePlugin,
    accepted_pools,
    matching_models,
    model_accepted,
)
from federator.scheduler.maintenance_window import MaintenanceWindow
from federator.scheduler.node_size import node_size_note
from federator.scheduler.residency import AllowedRegions, RegionLatency
from federator.scheduler.same_as import SameAs
from federator.security.podsecurity import PodSecurity, describe
from federator.security.podsecurity_member import policy_of_labels

# -- filters ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterReady:
    """No new work goes to a cluster whose agent is partitioned or lost."""

    name: str = "ClusterReady"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        if cluster.state is not ClusterState.READY:
            return Reason(ReasonCode.CLUSTER_NOT_READY, f"{cluster.name} is {cluster.state}")
        return None


@dataclass(frozen=True, slots=True)
class WorkloadKind:
    """A job that brings its own workload (a JobSet, a LeaderWorkerSet, ...) goes only to clusters that
    serve that kind: their agent lists it (the controller's CRDs are installed there)."""

    name: str = "WorkloadKind"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        kind = request.spec.workload_kind
        if cluster.capacity.runs(kind):
            return None
        return Reason(ReasonCode.WORKLOAD_KIND_UNSUPPORTED, f"{cluster.name} does not run {kind}")


def recently_refused(cluster: str) -> str:
    """How a rejection names a cluster that refused the job a moment ago; the server adds the cluster's why
    after it (server/refusals.py), which this pure filter does not know."""
    return f"{cluster} refused this job a moment ago"


@dataclass(frozen=True, slots=True)
class NotRecentlyRefused:
    """A cluster that just refused a job (e.g. its gang timed out there) is not offered the same job again at once."""

    name: str = "NotRecentlyRefused"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        if cluster.name in request.avoid_clusters:
            return Reason(ReasonCode.RECENTLY_REFUSED, f"{recently_refused(cluster.name)}; other clusters first, and "
                                                      "it again after a wait that doubles with each refusal")
        return None


@lru_cache(maxsize=1 << 10)
def member_pod_security(labels: tuple[tuple[str, str], ...]) -> PodSecurity | None:
    """The pod security level a cluster's agent reports it enforces (`federator agent --pod-security`), None when
    it reports none (an older agent) or an unreadable one (the federator refuses such a Hello: only a label
    written by hand in a MemberCluster gets here)."""
    try:
        return policy_of_labels(dict(labels))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class PodSecurityFilter:
    """A job goes only where the member's agent would launch it: its templates, as the alternative renders them,
    pass the level and allowances the agent reports (labels federator.io/pod-security*), which it enforces
    itself at launch whatever the federator's own level. Sending it elsewhere would only earn a refusal."""

    name: str = "PodSecurity"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        policy = member_pod_security(cluster.labels)
        if policy is None:
            return None
        need = request.pod_security_need
        refused = need.refused(policy)
        if not refused:
            return None
        fields = ", ".join(v.field for v in refused[:3]) + (f" and {len(refused) - 3} more" if len(refused) > 3
                                                             else "")
        return Reason(ReasonCode.POD_SECURITY, f"{cluster.name} enforces {describe(policy)}; the job needs "
                                               f"{describe(need.admitting(policy))} ({fields})")


@dataclass(frozen=True, slots=True)
class AcceleratorModelFilter:
    """The cluster must have nodes of an accepted accelerator model that the queue's quota still allows."""

    name: str = "AcceleratorModel"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        if request.accelerator_milli == 0 or matching_models(request, cluster):
            return None
        if request.blocked_models and matching_models(request.spec, cluster):
            blocked = "|".join(request.blocked_models)
            return Reason(ReasonCode.QUOTA_EXCEEDED,
                          f"{cluster.name}: quota of queue {request.spec.queue} on {blocked} is used up")
        models = request.spec.accelerator_models
        pools = cluster.capacity.accelerator_pools
        wanted = "|".join(models) or request.resource_name or \
            " ".join(p for p in (request.vendor, "accelerator") if p)  # models say enough
        own = [p for p in pools if (not request.vendor or p.vendor == request.vendor)
               and model_accepted(models, p.accelerator_model)]
        if request.resource_name and own and not any(p.of_resource(request.resource_name) for p in own):
            # the vendor's devices are there, but of its other product lines (huawei.com/Ascend910 for Ascend310P)
            return Reason(ReasonCode.ACCELERATOR_UNAVAILABLE,
                          f"{cluster.name} has no {request.resource_name} devices, only "
                          f"{', '.join(sorted({p.resource_name or 'unnamed' for p in own}))}")
        own = [p for p in own if not request.resource_name or p.of_resource(request.resource_name)]
        if request.min_memory_mib and own:  # the devices are there, but too small
            # (or of unknown memory: a model form said "too small" of A100s that may be 80 GB: outside QA, vendors2 R6)
            most = max(p.memory_mib for p in own)
            asked = f"{request.vendor} {'|'.join(models) or 'accelerator'}" if request.vendor else wanted
            return Reason(ReasonCode.ACCELERATOR_UNAVAILABLE,
                          f"{cluster.name} has no {asked} nodes with at least "
                          f"{format_bytes(request.min_memory_mib * 2**20)} per device (its "
                          f"{request.vendor or wanted} {ASKED_DEVICES_HAVE} "
                          f"{format_bytes(most * 2**20) if most else 'unknown memory'})")
        if request.vendor:  # say so when only another vendor's devices would have served
            others = sorted({p.vendor for p in pools
                             if p.vendor != request.vendor and model_accepted(models, p.accelerator_model)})
            if others:
                return Reason(ReasonCode.ACCELERATOR_UNAVAILABLE,
                              f"{cluster.name} has no {request.vendor} {'|'.join(models) or 'accelerator'} nodes, "
                              f"{OTHER_VENDORS_ONLY} {', '.join(others)}")
        memory = f" with at least {format_bytes(request.min_memory_mib * 2**20)} per device" \
            if request.min_memory_mib else ""
        return Reason(ReasonCode.ACCELERATOR_UNAVAILABLE, f"{cluster.name} has no {wanted} nodes{memory}")


@dataclass(frozen=True, slots=True)
class AcceleratorSharing:
    """A pool of the model must serve the replica's shape: a fraction needs shared devices (time-slicing,
    HAMi, a MIG partition big enough), and whole devices need a pool that is not only time-sliced."""

    name: str = "AcceleratorSharing"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        m = request.accelerator_milli
        if m == 0 or accepted_pools(request, cluster):
            return None
        pools = [
            p
            for p in cluster.capacity.accelerator_pools
            if p.accelerator_model in set(matching_models(request, cluster))
        ]
        if not pools:
            return None  # GpuModel says what is missing
        shown = ", ".join(sorted({f"{p.accelerator_model} ({p.sharing or 'shared'})" for p in pools}))
        if m % MILLI:
            return Reason(ReasonCode.SHARING_UNAVAILABLE,
                          f"{cluster.name} offers no shared or MIG device for a {m}m replica: {shown}")
        return Reason(ReasonCode.SHARING_UNAVAILABLE,
                      f"{cluster.name} offers only shares, not whole devices, for {m // MILLI}: {shown}")


def _count_text(milli: int) -> str:
    return f"{milli // MILLI}" if milli % MILLI == 0 else f"{milli}m"


def quota_held_text(held: int, *, members: bool = False) -> str:
    """What a doesn't-fit reason adds when the member's own quota (Kueue's ClusterQueue) holds free accelerators
    back (AcceleratorPool.quota_held_accelerators): the user sees them free on the member's nodes, and this says
    why the federator does not count them. "" when none are held. `members`: summed over several clusters."""
    if held <= 0:
        return ""
    whose = "the members' own queue quotas" if members else "the member's own queue quota"
    return f" ({held} more free held back by {whose})"


@dataclass(frozen=True, slots=True)
class GangFit:
    """Whole replicas must fit on nodes' free accelerators (or shared accelerators' free milli-devices).

    For a training gang all replicas must fit in this one cluster; for
    inference one replica is enough to make the cluster a candidate (the
    spreading step decides how many go where).
    """

    name: str = "GangFit"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        m = request.accelerator_milli
        if m == 0:
            return None
        if pod_set_fit.placed_sets(request):  # a gang of unequal pod sets: each set at its own ask (pod_set_fit.py)
            return pod_set_fit.gang_fit(request, cluster, accepted_pools(request, cluster))
        need = request.replicas if request.is_gang else 1
        best, best_held, best_model, any_node = 0, 0, "", False
        pools = accepted_pools(request, cluster)
        for pool in pools:
            fits = request.capacity_in(pool)
            if fits >= need:
                return None
            any_node = any_node or fits > 0
            if (fits, pool.quota_held_accelerators) >= (best, best_held):
                best, best_held, best_model = fits, pool.quota_held_accelerators, pool.accelerator_model
        if not any_node:
            bare = [p for p in pools if p.replica_capacity(m) > 0]
            if bare:  # the accelerators are free; no node holds the replica's CPU or memory beside them: the code
                res = request.spec.resources  # says which, as CpuMemoryFit's (outside HPC QA, H2)
                return Reason(_host_short_code(request, bare),
                              f"{cluster.name} has free {bare[0].accelerator_model} accelerators but no node "
                              f"with room beside them for one replica's {res.cpu_milli / MILLI:g} CPUs and "
                              f"{format_bytes(res.memory_bytes)} memory")
            where = f"{request.accelerators_per_replica} free" if m % MILLI == 0 else f"{m}m free on one"
            return Reason(ReasonCode.INSUFFICIENT_ACCELERATORS,
                          f"{cluster.name} has no node with {where} {best_model or 'matching'} accelerator"
                          f"{'s' if m > MILLI else ''}{node_size_note(request, pools)}{quota_held_text(best_held)}")
        return Reason(ReasonCode.GANG_DOES_NOT_FIT,
                      f"{cluster.name} fits {best} of {need} replicas x {_count_text(m)} {best_model} accelerators"
                      f"{quota_held_text(best_held)}")


def _host_short_code(request: PlacementRequest, pools: list[AcceleratorPool]) -> ReasonCode:
    """What a replica whose accelerators are free lacks beside them on every node: `InsufficientMemory` when one
    of `pools` has a node with its CPU (the memory alone is short), else `InsufficientCpu`."""
    res = request.spec.resources
    cpu_alone = any(p.replica_capacity(res.accelerator_milli, res.cpu_milli, 0) > 0 for p in pools)
    return ReasonCode.INSUFFICIENT_MEMORY if cpu_alone and res.memory_bytes else ReasonCode.INSUFFICIENT_CPU


@dataclass(frozen=True, slots=True)
class CpuMemoryFit:
    """CPU and memory for the replicas must be free, in the cluster and on one node."""

    name: str = "CpuMemoryFit"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        if pod_set_fit.placed_sets(request):  # a gang of unequal pod sets: each set at its own ask (pod_set_fit.py)
            return pod_set_fit.cpu_memory_fit(request, cluster)
        cap = cluster.capacity
        res = request.spec.resources
        n = request.replicas if request.is_gang else 1
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
        if cap.node_room and not request.accelerator_milli and node_room_fits(
                cap.node_room, res.cpu_milli, res.memory_bytes, n) < n:  # each replica's CPU and memory on one node
            cpu_alone = node_room_fits(cap.node_room, res.cpu_milli, 0, n) >= n
            return Reason(
                ReasonCode.INSUFFICIENT_MEMORY if cpu_alone else ReasonCode.INSUFFICIENT_CPU,
                f"{cluster.name} has {cap.cpu_milli_free / 1000:g} CPUs and {format_bytes(cap.memory_bytes_free)} "
                f"memory free, but no room for {n} x ({res.cpu_milli / 1000:g} CPUs and "
                f"{format_bytes(res.memory_bytes)} memory on one node): no node has both free",
            )
        return None


# -- scores -------------------------------------------------------------------


def _free_fraction(request: PlacementRequest, cluster: ClusterInfo) -> float:
    cap = cluster.capacity
    if request.accelerator_milli:
        pools = accepted_pools(request, cluster)
        alloc = sum(p.accelerator_milli_of(p.allocatable_accelerators) for p in pools)  # device equivalents:
        return sum(p.free_device_milli for p in pools) / alloc if alloc else 0.0  # a MIG partition is its share
    return cap.cpu_milli_free / cap.cpu_milli_allocatable if cap.cpu_milli_allocatable else 0.0


@dataclass(frozen=True, slots=True)
class LeastAllocated:
    """Spread: prefer the cluster with the largest free share of the resource the job needs."""

    name: str = "LeastAllocated"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> int:
        return round(MAX_SCORE * _free_fraction(request, cluster))


@lru_cache(maxsize=1 << 16)
def fit_tightness(hist: tuple[int, ...], shared: tuple[tuple[int, int], ...], milli: int, partition: int = 0) -> float:
    """1.0 when a replica fills a node (or shared accelerator) exactly; lower the more it leaves over.

    `partition`: a MIG pool's `unit_milli`. A fraction takes one partition whole, so it fits as tightly as it
    fills the partition (100m fills a 1g.10gb's 125m better than a 3g.40gb's 500m); packing by free partitions
    per node, as for whole devices, sent small fractions to the pool with fewer, bigger partitions (outside
    QA, V11)."""
    if partition and milli % MILLI:
        return max(0.0, 1.0 - (partition - milli) / MILLI) if milli <= partition else 0.0
    top = max(len(hist) - 1, 1)
    if milli % MILLI == 0:
        g = milli // MILLI
        k = next((k for k in range(g, len(hist)) if hist[k]), None)
        return 0.0 if k is None else 1.0 - (k - g) / top
    f = next((f for f, n in shared if f >= milli and n), None)
    if f is not None:  # an accelerator already shared: the best place for a fraction
        return 0.5 + 0.5 * (1.0 - (f - milli) / MILLI)
    k = next((k for k in range(1, len(hist)) if hist[k]), None)
    return 0.0 if k is None else 0.5 * (1.0 - (k - 1) / top)


def mig_partition(pool: AcceleratorPool) -> int:
    """A MIG pool's partition size in milli-devices (`unit_milli`), 0 for any other pool."""
    return pool.unit_milli if pool.sharing == SHARING_MIG else 0


class PoolScore(Protocol):
    """A score defined per accelerator pool."""

    def pool_score(
        self, request: PlacementRequest, cluster: ClusterInfo, pool: AcceleratorPool, ctx: CycleContext
    ) -> float: ...


def best_pool_score(plugin: PoolScore, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> float:
    """A cluster scores as its best pool for the request (the job binds to one pool); CPU-only work is neutral."""
    if not request.accelerator_milli:
        return MAX_SCORE // 2
    return max((plugin.pool_score(request, cluster, p, ctx) for p in accepted_pools(request, cluster)), default=0)


@dataclass(frozen=True, slots=True)
class LeastFragmentation:
    """Pack: keep whole nodes (and whole accelerators) free for big gangs.

    Scores the tightest best-fit spot in the cluster for one replica: a node
    whose free accelerators the replica uses exactly scores full, a fresh 8-accelerator node
    for a 1-accelerator replica scores low; a fractional replica prefers an accelerator that
    is already shared. CPU-only work scores in the middle everywhere.
    """

    name: str = "LeastFragmentation"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> float:
        return best_pool_score(self, request, cluster, ctx)

    def pool_score(
        self, request: PlacementRequest, cluster: ClusterInfo, pool: AcceleratorPool, ctx: CycleContext
    ) -> int:
        return round(MAX_SCORE * fit_tightness(pool.nodes_by_free, pool.shared_devices, request.accelerator_milli,
                                               mig_partition(pool)))


@dataclass(frozen=True, slots=True)
class Fragmentation:
    """FGD: the pool where binding the request grows the expected unusable accelerator least.

    The expectation is over the cycle's demand (pending and running work,
    `demand.py`) *that can use the pool's model*, computed from the pool's
    resource model (`fragmentation.py`): how much a bind strands inside the
    pool, node by node, counting accelerators whose node has no CPU or memory
    left for the work that wants them. Full score when the job takes only
    capacity that was unusable anyway, half when it strands nothing new, less
    the more it strands. On an exact tie a fraction goes to an accelerator
    already shared (FGD sees no difference when nothing else is in demand).
    On a MIG pool a fraction takes a partition whole and strands the rest of it
    (`fragmentation.partition_waste`), so it goes to the smallest partition that
    holds it, keeping the big ones for the asks only they serve.

    The paper also counts a model's whole capacity as fragment for the share of
    requests that cannot use it, which pulls flexible work onto models few jobs
    can use; that fights `Scarcity`, which keeps models pinned work needs (the
    Alibaba `pinned` mix fell from 0.9922 to 0.9646 with it), so which model to
    take is left to `Scarcity` and this term only packs.

    The default packer since it beat `LeastFragmentation` over the two fleets,
    five mixes and two seeds of bench/fgd.py (docs/benchmarks.md).

    The score is not rounded to a whole number: one point is a growth of 1/50
    of a milli-GPU per milli-GPU bound, and pools that differ by less than that
    are not alike. Rounded, such pools tied and the tie went to fit tightness
    (synthetic `fractional`, one cluster, 10-pod cycles: 0.9933 rounded, 0.9936
    not; docs/benchmarks.md, round 11).
    """

    name: str = "Fragmentation"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> float:
        return best_pool_score(self, request, cluster, ctx)

    def pool_score(
        self, request: PlacementRequest, cluster: ClusterInfo, pool: AcceleratorPool, ctx: CycleContext
    ) -> float:
        demand = ctx.demand
        res = request.spec.resources
        milli = res.accelerator_milli
        joins = 0 < milli < MILLI and any(f >= milli and n for f, n in pool.shared_devices)
        if demand is None or demand.empty:
            return MAX_SCORE // 2 + joins
        replicas = request.replicas if request.is_gang else 1
        growth = fragment_growth(pool, milli, replicas, demand.usable_shapes.get(pool.accelerator_model, ()), 0.0,
                                 demand.cache, res.cpu_milli, res.memory_bytes)
        return (MAX_SCORE - 1) * min(1.0, max(0.0, (1.0 - growth) / 2)) + joins


@dataclass(frozen=True, slots=True)
class Scarcity:
    """A job open to several accelerator models takes the one pinned work wants least.

    Pressure on a model is the accelerator demand of pinned work (pending and running
    jobs that accept only some models) over the model's free devices in the fleet,
    kept current through the cycle (`demand.Pressure`, so a burst of flexible jobs does
    not drain a small model before the cycle notices): full for a model no pinned work
    presses, half at the median pressure, 0 at twice the median or more.

    A replica of two or more accelerators reads the pressure of pinned work of that kind
    on the free accelerators of nodes with two or more free, the only supply it can use:
    a model of mostly one-accelerator nodes looks unpressed over all its devices while its
    few big nodes are what its pinned gangs wait for.
    """

    name: str = "Scarcity"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> float:
        return best_pool_score(self, request, cluster, ctx)

    def pool_score(
        self, request: PlacementRequest, cluster: ClusterInfo, pool: AcceleratorPool, ctx: CycleContext
    ) -> int:
        demand = ctx.demand
        if demand is None:
            return MAX_SCORE
        return MAX_SCORE * demand.live.score(pool.accelerator_model, request.accelerator_milli >= 2 * MILLI) // 100


@dataclass(frozen=True, slots=True)
class RegionLoad:
    """Send work to underused regions: score falls with the region's accelerator use, counting what the
    cycle has placed so far (regionload.py)."""

    name: str = "RegionLoad"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> int:
        return ctx.regions.score(cluster.region)


@dataclass(frozen=True, slots=True)
class Price:
    """Prefer cheaper accelerator-hours (cluster label federator.io/price-per-accelerator-hour); unpriced scores 50."""

    name: str = "Price"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> int:
        price = cluster.price_per_accelerator_hour
        if price is None or ctx.max_price <= 0:
            return MAX_SCORE // 2
        return round(MAX_SCORE * (1.0 - min(price, ctx.max_price) / ctx.max_price))


@dataclass(frozen=True, slots=True)
class Locality:
    """Keep work near its data or users.

    Full score in a preferred region (`spec.regions.preferred`, e.g. where the
    data is); otherwise, with a users' region (`spec.regions.user`), the score
    falls with the region latency matrix of the policy.
    """

    name: str = "Locality"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> int:
        spec = request.spec
        if cluster.region in spec.preferred_regions:
            return MAX_SCORE
        if spec.user_region:
            ms = ctx.latency_ms(spec.user_region, cluster.region)
            if ms is None or ctx.max_latency_ms <= 0:
                return MAX_SCORE if ms == 0 else 0
            return round(MAX_SCORE * (1.0 - min(ms, ctx.max_latency_ms) / ctx.max_latency_ms))
        return 0


@dataclass(frozen=True, slots=True)
class RandomFit:
    """A baseline for benchmarks: a deterministic pseudo-random score that changes with the cluster."""

    name: str = "RandomFit"

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> int:
        cap = cluster.capacity
        key = f"{cluster.name}/{cap.cpu_milli_free}/{cap.memory_bytes_free}/{cap.free_accelerators}"
        return zlib.crc32(key.encode()) % (MAX_SCORE + 1)


FILTERS: Mapping[str, Callable[[], FilterPlugin]] = {
    "AllowedRegions": AllowedRegions,  # always on (Scheduler): a hard bound, data residency
    "ClusterAffinity": ClusterAffinity,  # always on too: spec.clusters, a hard bound (cluster_affinity.py)
    "SameAs": SameAs,  # always on too: spec.clusters.sameAs, where named jobs are placed (same_as.py)
    "ClusterReady": ClusterReady,
    "WorkloadKind": WorkloadKind,
    "NotRecentlyRefused": NotRecentlyRefused,
    "MaintenanceWindow": MaintenanceWindow,
    "PodSecurity": PodSecurityFilter,
    "AcceleratorModel": AcceleratorModelFilter,
    "AcceleratorSharing": AcceleratorSharing,
    "RegionLatency": RegionLatency,
    "GangFit": GangFit,
    "CpuMemoryFit": CpuMemoryFit,
}

CYCLE_CONSTANT_FILTERS = frozenset({"AllowedRegions", "ClusterReady", "WorkloadKind", "NotRecentlyRefused",
                                    "MaintenanceWindow", "PodSecurity", "AcceleratorModel", "AcceleratorSharing",
                                    "RegionLatency", "ClusterAffinity", "SameAs"})
"""Filters whose verdict depends only on the request's shape and on what a cycle never changes (a cluster's
state, the workload kinds it runs, its labels, the clusters the job avoids, its maintenance window against the
job's run bound, the kinds of its pools: vendor, model, memory, sharing; the latency matrix), not on free capacity:
a cluster they reject for a shape stays rejected for the whole cycle, so the cycle need not look at it again for
that shape however often its capacity changes."""
CYCLE_CONSTANT_SCORES = frozenset({"Price", "Locality"})
"""Scores that read only the request's shape, a cluster's labels and region, and per-cycle values of the
context: a cycle computes them once per shape and cluster. Not RegionLoad: a region's use grows as the
cycle places (regionload.py)."""
POOL_FILTERS = frozenset({"GangFit"})
"""Filters whose verdict reads only the request and the accelerator pools it accepts, and which pass exactly
when one of those pools holds the replicas `pools.best_pool` scores over: a cycle re-checks such a filter
only for the pools that changed (board.py)."""
POOL_SCORES = frozenset({"LeastFragmentation", "Fragmentation", "Scarcity", "CpuExcess"})
"""The scores that are `PoolScorePlugin`s: the cycle sums them per accelerator pool and binds the job to the
best pool's model (pools.py). Named here, not found by isinstance, so that the compiled build
(setup.py) can compile the framework's Protocols, which it cannot make runtime-checkable."""
PREFERENCE_SCORES = frozenset({"Locality"})
"""Scores that read where a job would rather run (its preferred regions; its user's region, which no filter
reads without a latency budget): what `PlacementRequest.fit_shape` leaves out. While every one of them is
summed per shape (`CYCLE_CONSTANT_SCORES`), shapes that differ only in those share their evaluations."""

SCORES: Mapping[str, Callable[[], ScorePlugin]] = {
    "LeastFragmentation": LeastFragmentation,
    "Fragmentation": Fragmentation,
    "CpuExcess": CpuExcess,
    "Scarcity": Scarcity,
    "LeastAllocated": LeastAllocated,
    "RegionLoad": RegionLoad,
    "Price": Price,
    "Locality": Locality,
    "RandomFit": RandomFit,
}

DEFAULT_SCORE_WEIGHTS: Mapping[str, int] = {
    "Fragmentation": 3,
    "CpuExcess": 3,
    "Scarcity": 4,
    "RegionLoad": 1,
    "Price": 1,
    "Locality": 3,
}
