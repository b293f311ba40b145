"""Which GPU pool of a cluster a job binds to, and how a cluster is valued by its best pool.

A cluster is as good for a job as its best pool: the pool plugins
(fragmentation growth, scarcity, fit tightness) score each pool the job
accepts and fits, their weighted sum is the cluster's pool part of the score,
and the job is bound to that same pool's model. One value chooses both, so a
cluster is never preferred for a pool the job then does not get.

A spread job's replicas on a cluster split over its pools the same way
(`split_by_model`, `reserve_spread`), within what its queue's quota leaves on
each model (`QuotaBudget`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from federator.model import MILLI, AcceleratorPool, ClusterInfo
from federator.model.accelerator import accepts_model
from federator.model.node_room import node_room_fits
from federator.scheduler.alternatives import Assignment, assign
from federator.scheduler.fragmentation import fraction_bucket
from federator.scheduler.framework import MAX_SCORE, CycleContext, PlacementRequest, PoolScorePlugin, accepted_pools
from federator.scheduler.plugins import fit_tightness, mig_partition
from federator.scheduler.snapshot import Txn, reserve

PoolScores = Sequence[tuple[PoolScorePlugin, int]]


def best_pool(request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext, scores: PoolScores,
              replicas: int, accepted: Sequence[AcceleratorPool] | None = None) -> tuple[float, str] | None:
    """(weighted pool score, model) of the best pool holding `replicas` replicas; None if none does.

    CPU-only work has no pool: every pool plugin counts half. Ties go to the pool the replica fits
    most tightly, then to the one with the most room. `accepted`: `accepted_pools(request, cluster)` when the
    caller knows it already (the board's kept verdicts, verdicts.py), in its order.
    """
    m = request.accelerator_milli
    if m == 0:
        return sum(w for _, w in scores) * (MAX_SCORE // 2), ""
    best: tuple[float, str] | None = None
    best_pool_: object = None
    for pool in accepted_pools(request, cluster) if accepted is None else accepted:
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
    return fit_tightness(pool.nodes_by_free, pool.shared_devices, milli, mig_partition(pool)), n


def best_model(request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext, scores: PoolScores,
               replicas: int) -> str:
    """The accepted GPU model to bind to ("" for CPU-only); ValueError if no pool fits."""
    got = best_pool(request, cluster, ctx, scores, replicas)
    if got is None:
        raise ValueError(f"no pool of {cluster.name} fits; filters should have said so")
    return got[1]


def reservation_bucket(request: PlacementRequest, cluster: ClusterInfo, model: str, ctx: CycleContext) -> int:
    """Where the cycle reserves a one-replica job on `model` of `cluster`: for a fraction of a shared device,
    the bucket where `Fragmentation` scored it (the least growth of the expected fragment under the cycle's
    demand, `fragmentation.fraction_bucket`), which is where the member's FGD binder puts it; 0, best fit's,
    for anything else or with no demand to weigh (the score then has no bucket either)."""
    demand = ctx.demand
    res = request.spec.resources
    if request.replicas != 1 or not 0 < res.accelerator_milli < MILLI or demand is None or demand.empty:
        return 0
    pool = cluster.capacity.pool(model)
    if pool is None:
        return 0
    return fraction_bucket(pool, res.accelerator_milli, demand.usable_shapes.get(model, ()), 0.0, demand.cache,
                           res.cpu_milli, res.memory_bytes)


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
        return min(limit, node_room_fits(cap.node_room, res.cpu_milli, res.memory_bytes)) if cap.node_room else limit
    return min(limit, sum(request.capacity_in(p) for p in accepted_pools(request, cluster)))


def split_by_model(request: PlacementRequest, cluster: ClusterInfo, replicas: int, ctx: CycleContext,
                   scores: PoolScores) -> list[tuple[str, int]]:
    """`replicas` replicas over the cluster's accepted models, best-scored pool first (in groups); between
    pools of equal score the one a replica fits most tightly first (`tie_key`), as `best_pool` chooses."""
    if not request.accelerator_milli:
        return [("", replicas)]
    g = max(1, request.spec.group_size)  # replicas that go together (a LeaderWorkerSet group) stay together
    ranked = []
    for pool in accepted_pools(request, cluster):
        n = request.capacity_in(pool) // g * g
        if n:
            value = sum(w * plugin.pool_score(request, cluster, pool, ctx) for plugin, w in scores)
            ranked.append((-value, -tie_key(pool, request.accelerator_milli, n)[0], n, pool.accelerator_model))
    out: list[tuple[str, int]] = []
    left = replicas
    for _, _, cap, model in sorted(ranked):
        k = min(cap, left)
        if k:
            out.append((model, k))
            left -= k
    if left:
        raise ValueError(f"{replicas} replicas do not fit {cluster.name}")
    return out


class QuotaBudget:
    """What a spread request's quota caps (`PlacementRequest.model_caps`) leave as the spread planner binds its
    replicas, cluster by cluster, and the split over models it chose (`split`), which the reservation binds as
    is: counted here and split again by `split_by_model`, a cluster's count could land on a model whose cap
    another cluster had spent.

    A cluster's replicas go to its pools best-scored first, as `split_by_model` sends them, each pool taking
    what it holds beside what this request already took of it and what every cap naming its model has left.
    Greedy, in the planner's order: a split that a cluster's CPU or memory makes the only one can be missed
    (the job then waits, with both the shortfall and the quota's room in its reason); never one past a cap."""

    __slots__ = ("ctx", "group", "left", "scores", "split")

    def __init__(self, request: PlacementRequest, ctx: CycleContext, scores: PoolScores) -> None:
        self.ctx, self.scores = ctx, scores
        self.left = dict(request.model_caps)  # quota name -> replicas it still has room for
        self.group = max(1, request.spec.group_size)
        self.split: dict[str, dict[str, int]] = {}  # cluster -> model -> replicas

    def take(self, one: PlacementRequest, cluster: ClusterInfo, groups: int) -> int:
        """Bind up to `groups` more groups of `one` (the request, one group's worth) on `cluster` within the caps;
        how many it bound."""
        g = self.group
        mine = self.split.setdefault(cluster.name, {})
        ranked = []
        for pool in accepted_pools(one, cluster):
            room = one.capacity_in(pool) // g - mine.get(pool.accelerator_model, 0) // g
            if room > 0:
                value = sum(w * plugin.pool_score(one, cluster, pool, self.ctx) for plugin, w in self.scores)
                tight = tie_key(pool, one.accelerator_milli, room)[0]
                ranked.append((-value, -tight, room, pool.accelerator_model, pool.family))
        want = groups
        for _, _, room, model, family in sorted(ranked):
            keys = [k for k in self.left if accepts_model(k, model, family)]
            k = min([room, want, *(self.left[key] // g for key in keys)])
            if k <= 0:
                continue
            for key in keys:
                self.left[key] -= k * g
            mine[model] = mine.get(model, 0) + k * g
            want -= k
            if not want:
                break
        return groups - want

    def models(self, cluster: str, replicas: int) -> list[tuple[str, int]]:
        """The replicas per model bound on `cluster`, as `split_by_model` answers; ValueError if they are not
        the `replicas` counted there."""
        out = [(m, n) for m, n in self.split.get(cluster, {}).items() if n]
        if sum(n for _, n in out) != replicas:
            raise ValueError(f"{replicas} replicas counted on {cluster}, {sum(n for _, n in out)} within the quota")
        return out


def quota_budget(request: PlacementRequest, ctx: CycleContext, scores: PoolScores) -> QuotaBudget | None:
    """A fresh budget for a spread request whose quota caps some models; None (nothing to keep) if none does."""
    return QuotaBudget(request, ctx, scores) if request.model_caps else None


def reserve_spread(request: PlacementRequest, txn: Txn, counts: Mapping[str, int], ctx: CycleContext,
                   scores: PoolScores, budget: QuotaBudget | None = None) -> tuple[Assignment, ...]:
    """Bind `counts` replicas per cluster in the txn's open attempt; ValueError if they do not fit. With the
    `budget` that counted them, each cluster's replicas go to the models it chose within the quota's caps."""
    one = replace(request, replicas=1, kept_regions=(), kept_replicas=(), model_caps=())
    out: list[Assignment] = []
    for name in sorted(counts):
        cluster = txn.get(name)
        split = budget.models(name, counts[name]) if budget is not None else \
            split_by_model(one, cluster, counts[name], ctx, scores)
        for model, replicas in split:
            cluster = reserve(cluster, resources=request.spec.resources, replicas=replicas, accelerator_model=model)
            out.append(assign(cluster, replicas, model, request))
        txn.put(cluster)
    return tuple(out)


class LazyFitCounts(dict[str, int]):
    """Fit counts of clusters for a spread request, computed on first use (most spreads need few)."""

    def __init__(self, request: PlacementRequest, txn: Txn, *, per: int = 1) -> None:
        super().__init__()
        self.request, self.txn, self.per = request, txn, per

    def __missing__(self, name: str) -> int:
        value = self[name] = fit_count(self.request, self.txn.get(name)) // self.per
        return value
