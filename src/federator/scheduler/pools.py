"""Which GPU pool of a cluster a job binds to, and how a cluster is valued by its best pool.

A cluster is as good for a job as its best pool: the pool plugins
(fragmentation growth, scarcity, fit tightness) score each pool the job
accepts and fits, their weighted sum is the cluster's pool part of the score,
and the job is bound to that same pool's model. One value chooses both, so a
cluster is never preferred for a pool the job then does not get.
"""

from __future__ import annotations

from collections.abc import Sequence

from federator.model import AcceleratorPool, ClusterInfo
from federator.scheduler.framework import MAX_SCORE, CycleContext, PlacementRequest, PoolScorePlugin, accepted_pools
from federator.scheduler.plugins import fit_tightness

PoolScores = Sequence[tuple[PoolScorePlugin, int]]


def best_pool(request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext, scores: PoolScores,
              replicas: int) -> tuple[float, str] | None:
    """(weighted pool score, model) of the best pool holding `replicas` replicas; None if none does.

    CPU-only work has no pool: every pool plugin counts half. Ties go to the pool the replica fits
    most tightly, then to the one with the most room.
    """
    m = request.accelerator_milli
    if m == 0:
        return sum(w for _, w in scores) * (MAX_SCORE // 2), ""
    best: tuple[float, str] | None = None
    best_pool_: object = None
    for pool in accepted_pools(request, cluster):
        n = request.capacity_in(pool)
        if n < replicas:
            continue
        value: float = 0.0
        for plugin, w in scores:
            value += w * plugin.pool_score(request, cluster, pool, ctx)
        if best is None or value > best[0]:
            best, best_pool_ = (value, pool.accelerator_model), pool
        elif value == best[0] and tie_key(pool, m, n) > tie_key(best_pool_, m, request.capacity_in(best_pool_)):  # type: ignore[arg-type]
            best, best_pool_ = (value, pool.accelerator_model), pool
    return best


def tie_key(pool: AcceleratorPool, milli: int, n: int) -> tuple[float, int]:
    """Between pools of equal score: the one the replica fits most tightly, then the one with most room (`n`)."""
    return fit_tightness(pool.nodes_by_free, pool.shared_devices, milli), n


def best_model(request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext, scores: PoolScores,
               replicas: int) -> str:
    """The accepted GPU model to bind to ("" for CPU-only); ValueError if no pool fits."""
    got = best_pool(request, cluster, ctx, scores, replicas)
    if got is None:
        raise ValueError(f"no pool of {cluster.name} fits; filters should have said so")
    return got[1]


def fit_count(request: PlacementRequest, cluster: ClusterInfo) -> int:
    """How many replicas of `request` the cluster's free capacity holds (any accepted model)."""
    cap = cluster.capacity
    res = request.spec.resources
    limit = 1 << 30
    if res.cpu_milli:
        limit = min(limit, cap.cpu_milli_free // res.cpu_milli)
    if res.memory_bytes:
        limit = min(limit, cap.memory_bytes_free // res.memory_bytes)
    if not res.accelerator_milli:
        return limit
    return min(limit, sum(request.capacity_in(p) for p in accepted_pools(request, cluster)))


def split_by_model(request: PlacementRequest, cluster: ClusterInfo, replicas: int, ctx: CycleContext,
                   scores: PoolScores) -> list[tuple[str, int]]:
    """`replicas` replicas over the cluster's accepted models, best-scored pool first (in groups)."""
    if not request.accelerator_milli:
        return [("", replicas)]
    g = max(1, request.spec.group_size)  # replicas that go together (a LeaderWorkerSet group) stay together
    ranked = []
    for pool in accepted_pools(request, cluster):
        n = request.capacity_in(pool) // g * g
        if n:
            value = sum(w * plugin.pool_score(request, cluster, pool, ctx) for plugin, w in scores)
            ranked.append((-value, n, pool.accelerator_model))
    out: list[tuple[str, int]] = []
    left = replicas
    for _, cap, model in sorted(ranked):
        k = min(cap, left)
        if k:
            out.append((model, k))
            left -= k
    if left:
        raise ValueError(f"{replicas} replicas do not fit {cluster.name}")
    return out
