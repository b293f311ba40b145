"""The cycle's per-shape cache of filter and score results (kube's PreFilter, cached).

Requests of one *shape* (`PlacementRequest.shape`) place alike, so a cycle evaluates a cluster for a
shape once and again only after the cluster changed. Every change is logged; a shape re-evaluates
just the clusters logged since it last looked and keeps the feasible ones in a max-heap of
(score, name). Two facts make re-evaluation cheaper still, without changing any answer: a cluster
that a cycle-constant filter rejects for a shape (wrong vendor or model, no sharing, not ready, or a
cluster the shape's jobs avoid)
stays rejected all cycle, so it is never looked at again for that shape; and one those filters
passed passes them again, so its re-evaluations run only the capacity filters and the scores,
of which those that read nothing a cycle changes (price, locality) are summed once.

Shapes that differ only in where their jobs would rather run (preferred regions, a user's region
without a latency budget) pass the same filters and get the same other scores, so they share one
*fit shape* (`PlacementRequest.fit_shape`): a changed cluster is evaluated once for all of them, and
each shape adds its own constant scores when it re-ranks. A national backlog has a preference per
job; without this every preferred region multiplied the evaluations (twice the work in bench/).

A fit shape's first look at a cluster in a cycle asks the scheduler's kept verdicts (`verdicts.py`) first: what
the filters said of that cluster, as it is now, in an earlier cycle. Only the scores are computed again then.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from federator.model import AcceleratorPool, ClusterInfo, Reason
from federator.scheduler.framework import CycleContext, FilterPlugin, PlacementRequest, ScorePlugin, accepted_pools
from federator.scheduler.plugins import CYCLE_CONSTANT_FILTERS, CYCLE_CONSTANT_SCORES, POOL_FILTERS, PREFERENCE_SCORES
from federator.scheduler.pools import PoolScores, best_pool, tie_key
from federator.scheduler.snapshot import Txn
from federator.scheduler.verdicts import Verdict, Verdicts

FIXED, ADMITTED = 1, 2  # what a cluster's evaluation for a shape says of the rest of the cycle (Board.check)


def shape_key(request: PlacementRequest) -> tuple[object, ...]:
    """The board's key for a request's shape. Quota-blocked models and caps are the queue's: they key by it too."""
    shape = request.shape()
    return (*shape, request.spec.queue) if request.blocked_models or request.model_caps else shape


def fit_key(request: PlacementRequest) -> tuple[object, ...]:
    """The key of its fit shape (`PlacementRequest.fit_shape`), likewise."""
    fit = request.fit_shape()
    return (*fit, request.spec.queue) if request.blocked_models or request.model_caps else fit


class Fit:
    """What the board knows of one fit shape (`PlacementRequest.fit_shape`): per cluster, the filters'
    verdict and the scores that move in a cycle (a Reason, or their weighted sum with the pool scores)."""

    __slots__ = ("admitted", "cursor", "epoch", "fixed", "kept", "pools", "rejected", "rev", "used", "value", "ver")

    def __init__(self, kept: dict[str, Verdict] | None = None) -> None:
        self.kept = kept  # the filters' verdicts kept across cycles for this fit shape (verdicts.py), if any
        # Per admitted cluster: how many pools it has and which of them the fit shape accepts (which never
        # changes in a cycle), and per accepted pool the last (pool, replicas it holds, weighted pool score).
        self.used: dict[str, tuple[int, tuple[int, ...]]] = {}
        self.pools: dict[str, list[tuple[AcceleratorPool, int, float] | None]] = {}
        self.epoch = 0  # the board's pool-score epoch `pools` holds scores of
        self.cursor = -1  # how much of the board's log it has seen (-1: nothing yet)
        self.ver: dict[str, int] = {}  # per cluster, the board version it was last evaluated at
        self.value: dict[str, float] = {}  # per feasible cluster, its moving score
        self.rev: dict[str, int] = {}  # per cluster, bumped when its verdict (rejected or the score) changes
        self.rejected: dict[str, Reason] = {}
        self.fixed: set[str] = set()  # clusters a cycle-constant filter rejected: never looked at again
        self.admitted: set[str] = set()  # clusters the cycle-constant filters passed: not checked again


class Shape:
    """What the board knows of one shape: the clusters it may use (a heap), its fit shape's verdicts."""

    __slots__ = ("cursor", "fit", "heap", "steady", "ver")

    def __init__(self, fit: Fit) -> None:
        self.fit = fit
        self.cursor = -1
        self.heap: list[tuple[float, str, int]] = []  # (-score, cluster, its revision then); stale ones dropped lazily
        self.ver: dict[str, int] = {}  # per cluster, the revision of the fit's verdict last looked at (Fit.rev)
        self.steady: dict[str, float] = {}  # per cluster, the weighted sum of the cycle-constant scores


class Board:
    """Per-cycle filter and score results by request shape (kube's PreFilter, cached).

    Every change to a cluster is appended to a log; a shape re-evaluates only
    the clusters logged since it last looked, and keeps the feasible ones in a
    max-heap of (score, name) whose stale entries are dropped lazily.
    """

    def __init__(self, filters: Sequence[FilterPlugin], scores: Sequence[tuple[ScorePlugin, int]],
                 ctx: CycleContext, pool_scores: PoolScores = (), verdicts: Verdicts | None = None) -> None:
        self.filters = filters
        # The filters' verdicts of earlier cycles (verdicts.py), when this cycle's filters allow keeping them.
        self.verdicts = verdicts if verdicts is not None and verdicts.begin(filters, ctx) else None
        # Per filter: whether its rejection holds for the whole cycle (it is cycle-constant, and so is
        # every filter before it), so a shape can skip that cluster after.
        # A cluster that passed them once for a shape passes them again: re-evaluations run only the `rest`.
        self.fixed: list[tuple[FilterPlugin, bool]] = []
        self.last_fixed = -1
        prefix = True
        for i, f in enumerate(filters):
            constant = f.name in CYCLE_CONSTANT_FILTERS
            self.fixed.append((f, prefix and constant))
            if prefix and constant:
                self.last_fixed = i
            prefix = prefix and constant
        self.rest = [(f, False) for f, fixed in self.fixed if not fixed]
        self.scores = scores
        # Scores that read nothing a cycle changes (price, region, locality) are summed once per shape and cluster.
        self.steady_scores = [(s, w) for s, w in scores if s.name in CYCLE_CONSTANT_SCORES]
        self.moving_scores = [(s, w) for s, w in scores if s.name not in CYCLE_CONSTANT_SCORES]
        # A re-evaluation re-checks the pool filter (GangFit) and the pool scores only for pools that changed.
        self.pool_filter = next((f for f, _ in self.rest if f.name in POOL_FILTERS), None)
        self.epoch = 0  # bumped when the pool scores moved without any pool changing (`rescored`)
        # Shapes that differ only in where their jobs would rather run share one evaluation per changed cluster.
        self.share_fits = not any(s.name in PREFERENCE_SCORES for s, _ in self.moving_scores)
        self.pool_scores = pool_scores
        self.ctx = ctx
        self.version: dict[str, int] = {}
        self.pool_values: dict[tuple[object, ...], float] = {}
        self.log: list[str] = []
        self.shapes: dict[tuple[object, ...], Shape] = {}
        self.fits: dict[tuple[object, ...], Fit] = {}
        self.txn: Txn | None = None

    def changed(self, name: str) -> None:
        self.log.append(name)
        self.version[name] = self.version.get(name, 0) + 1

    def rescored(self, names: Sequence[str]) -> None:
        """The pool scores moved (Scarcity's pressure did): every cluster is to be scored again."""
        self.epoch += 1
        for name in names:
            self.changed(name)

    def evaluate(self, request: PlacementRequest, cluster: ClusterInfo, *, current: bool = False) -> Reason | float:
        """Filters, then the weighted scores. `current`: `cluster` is the txn's present view of it, so
        its pool part may be shared with other shapes asking for the same resources."""
        return self.check(request, cluster, current=current)[0]

    def check(self, request: PlacementRequest, cluster: ClusterInfo, *, current: bool = False,
              admitted: bool = False, steady: bool = True) -> tuple[Reason | float, int]:
        """`evaluate`, and what holds for the rest of the cycle: FIXED (the rejection does), ADMITTED (the
        cycle-constant filters passed, so they will again) or 0. `admitted`: skip those filters. `steady`:
        False leaves out the cycle-constant scores (each shape of a fit shape adds its own)."""
        ctx = self.ctx
        for i, (f, fixed) in enumerate(self.rest if admitted else self.fixed):
            reason = f.filter(request, cluster, ctx)
            if reason is not None:
                if fixed:
                    return reason, FIXED
                return reason, ADMITTED if admitted or i > self.last_fixed else 0
        return self._scored(request, cluster, current, steady), ADMITTED

    def _scored(self, request: PlacementRequest, cluster: ClusterInfo, current: bool, steady: bool,
                accepted: Sequence[AcceleratorPool] | None = None) -> float:
        """The weighted scores of a cluster the filters passed (`check`'s second half); `accepted`: the pools the
        request accepts there, when known (`pools.best_pool`)."""
        ctx = self.ctx
        total: float = 0.0
        for s, w in self.scores if steady else self.moving_scores:
            total += w * s.score(request, cluster, ctx)
        if self.pool_scores:
            replicas = request.replicas if request.is_gang else 1
            key = None
            if current:
                spec = request.spec
                key = (
                    cluster.name,
                    self.version.get(cluster.name, 0),
                    spec.resources,
                    replicas,
                    spec.accelerator_models,
                    request.blocked_models,
                    request.vendor,  # an alternative's vendor, resource and capability ask choose pools too
                    request.resource_name,
                    request.min_memory_mib,
                )
                got = self.pool_values.get(key)
                if got is not None:
                    return total + got
            pool = best_pool(request, cluster, ctx, self.pool_scores, replicas, accepted)
            value: float = pool[0] if pool is not None else 0.0
            if key is not None:
                self.pool_values[key] = value
            total += value
        return total

    def _sync(self, request: PlacementRequest, key: tuple[object, ...]) -> Shape:
        assert self.txn is not None
        shape = self.shapes.get(key)
        if shape is None:
            fk = fit_key(request) if self.share_fits else key
            fit = self.fits.get(fk)
            if fit is None:
                fit = self.fits[fk] = Fit(self.verdicts.of(fk) if self.verdicts is not None else None)
            shape = self.shapes[key] = Shape(fit)
        elif shape.cursor == len(self.log):
            return shape
        fit = shape.fit
        if fit.cursor < len(self.log):
            self._sync_fit(request, fit)
        names = self.txn.names if shape.cursor < 0 else self._changed(shape.cursor)
        shape.cursor = len(self.log)
        ver, heap, steady = shape.ver, shape.heap, shape.steady
        fixed, rejected, value, rev = fit.fixed, fit.rejected, fit.value, fit.rev
        for name in names:
            if name in fixed:
                continue
            v = rev[name]
            if ver.get(name) == v:  # the fit shape's verdict did not change: the entry pushed for it stands
                continue
            ver[name] = v  # an entry pushed before this is stale from now on
            if name in rejected:
                continue
            total = steady.get(name)
            if total is None:
                cluster = self.txn.get(name)
                total = steady[name] = sum(w * s.score(request, cluster, self.ctx) for s, w in self.steady_scores)
            heapq.heappush(heap, (-(value[name] + total), name, v))
        if len(heap) > 4 * len(ver) + 16:
            shape.heap = [e for e in heap if ver[e[1]] == e[2]]
            heapq.heapify(shape.heap)
        return shape

    def _changed(self, cursor: int, seen: dict[str, int] | None = None,
                 fixed: set[str] | None = None) -> Sequence[str] | set[str]:
        """The clusters logged since `cursor`; a long way behind, every cluster, or with `seen` (the board
        version each was last looked at) those whose version differs."""
        assert self.txn is not None
        if len(self.log) - cursor > len(self.txn.names):
            if seen is None:
                return self.txn.names
            version = self.version
            return [n for n in self.txn.names if n not in (fixed or ()) and version.get(n, 0) != seen.get(n)]
        return set(self.log[cursor:])

    def _sync_fit(self, request: PlacementRequest, fit: Fit) -> None:
        """Re-evaluate, for the fit shape, the clusters changed since it last looked."""
        assert self.txn is not None
        names = self.txn.names if fit.cursor < 0 else self._changed(fit.cursor, fit.ver, fit.fixed)
        fit.cursor = len(self.log)
        ver, value, rejected, fixed, admitted, rev = fit.ver, fit.value, fit.rejected, fit.fixed, fit.admitted, fit.rev
        version = self.version
        if fit.epoch != self.epoch:
            fit.pools.clear()
            fit.epoch = self.epoch
        for name in names:
            if name in fixed:
                continue
            cluster = self.txn.get(name)
            if name in fit.used and self.pool_filter is not None:
                out, holds = self._recheck(request, cluster, fit), ADMITTED
            elif fit.kept is not None and name not in admitted:
                out, holds = self._kept_check(request, cluster, fit, fit.kept)
            else:
                out, holds = self.check(request, cluster, current=True, admitted=name in admitted, steady=False)
                if holds == ADMITTED and self.pool_filter is not None and request.accelerator_milli:
                    fit.used[name] = self._used(request, cluster)
            if holds == FIXED:
                fixed.add(name)
            elif holds == ADMITTED:
                admitted.add(name)
            ver[name] = version.get(name, 0)  # the cluster's version this result is for
            if isinstance(out, Reason):
                if name not in rejected:
                    rev[name] = rev.get(name, 0) + 1
                rejected[name] = out
                value.pop(name, None)
            else:
                if value.get(name) != out:
                    rev[name] = rev.get(name, 0) + 1
                rejected.pop(name, None)
                value[name] = out

    def _used(self, request: PlacementRequest, cluster: ClusterInfo) -> tuple[int, tuple[int, ...]]:
        """How many pools the cluster has, and the indices of those the request accepts (`Fit.used`)."""
        pools = cluster.capacity.accelerator_pools
        mine = accepted_pools(request, cluster)
        return len(pools), tuple(i for i, p in enumerate(pools) if any(p is q for q in mine))

    def _kept_check(self, request: PlacementRequest, cluster: ClusterInfo, fit: Fit,
                    kept: dict[str, Verdict]) -> tuple[Reason | float, int]:
        """`check` of a cluster the fit shape has not looked at this cycle, with the filters' verdict kept from
        an earlier cycle when it was made for this cluster as it is now, over the same context (verdicts.py),
        else made and kept; the scores are computed afresh either way, as `check` computes them."""
        assert self.verdicts is not None
        name, inputs = cluster.name, self.verdicts.inputs(cluster.name)
        got = kept.get(name)
        if got is not None and (got[0] is cluster or got[0] == cluster) and got[1] == inputs:
            self.verdicts.hits += 1
            _, _, reason, holds, used = got
            if used is not None:
                fit.used[name] = used
            if reason is not None:
                return reason, holds
            # the pools it accepts, from the kept indices: the filters that would have found them did not run
            pools = cluster.capacity.accelerator_pools
            accepted = None if used is None else [pools[i] for i in used[1]]
            return self._scored(request, cluster, True, False, accepted), holds
        self.verdicts.misses += 1
        ctx = self.ctx
        reason, holds = None, ADMITTED
        for i, (f, fixed) in enumerate(self.fixed):
            reason = f.filter(request, cluster, ctx)
            if reason is not None:
                holds = FIXED if fixed else ADMITTED if i > self.last_fixed else 0
                break
        used = None
        if holds == ADMITTED and self.pool_filter is not None and request.accelerator_milli:
            used = fit.used[name] = self._used(request, cluster)
        kept[name] = (cluster, inputs, reason, holds, used)
        if reason is not None:
            return reason, holds
        return self._scored(request, cluster, True, False), holds

    def _recheck(self, request: PlacementRequest, cluster: ClusterInfo, fit: Fit) -> Reason | float:
        """`check` of a cluster the fit shape's cycle-constant filters passed before, without the constant
        scores: the pool filter's verdict and the pool part from each accepted pool's last (replicas it holds,
        score) where that pool object is unchanged, so a placement that took from one pool costs one pool's
        arithmetic, not every accepted pool's twice (in GangFit and in `best_pool`)."""
        ctx = self.ctx
        if len(cluster.capacity.accelerator_pools) != fit.used[cluster.name][0]:
            del fit.used[cluster.name]  # not within a cycle, but then the indices mean nothing
            return self.check(request, cluster, current=True, admitted=True, steady=False)[0]
        best = self._kept_best(request, cluster, fit)
        for f, _ in self.rest:
            if f is self.pool_filter:
                if best is None:  # no pool holds the replicas: the filter says why
                    reason = f.filter(request, cluster, ctx)
                    assert reason is not None, f"{f.name} passed a cluster no accepted pool fits"
                    return reason
            else:
                reason = f.filter(request, cluster, ctx)
                if reason is not None:
                    return reason
        total: float = best[2] if best is not None else 0.0
        for s, w in self.moving_scores:
            total += w * s.score(request, cluster, ctx)
        return total

    def _kept_best(self, request: PlacementRequest, cluster: ClusterInfo,
                   fit: Fit) -> tuple[AcceleratorPool, int, float] | None:
        """`best_pool` from the fit shape's kept (pool, replicas it holds, weighted score) of the accepted pools,
        recomputing those of pools that changed: the best entry by score, then `pools.tie_key`; None if no pool
        holds the replicas."""
        ctx, name = self.ctx, cluster.name
        pools = cluster.capacity.accelerator_pools
        used = fit.used[name][1]
        memo = fit.pools.get(name)
        if memo is None:
            memo = fit.pools[name] = [None] * len(used)
        need = request.replicas if request.is_gang else 1
        m = request.accelerator_milli
        best: tuple[AcceleratorPool, int, float] | None = None
        for k, i in enumerate(used):
            pool = pools[i]
            seen = memo[k]
            if seen is None or seen[0] is not pool:
                holds = request.capacity_in(pool)
                value = sum(w * s.pool_score(request, cluster, pool, ctx) for s, w in self.pool_scores) \
                    if holds >= need else 0
                seen = memo[k] = (pool, holds, value)
            if seen[1] < need:
                continue
            if best is None or seen[2] > best[2] or (
                    seen[2] == best[2] and tie_key(seen[0], m, seen[1]) > tie_key(best[0], m, best[1])):
                best = seen
        return best

    def model(self, request: PlacementRequest, key: tuple[object, ...], cluster: ClusterInfo) -> str | None:
        """The model `pools.best_model` would bind the request to on `cluster`, from the pool scores its fit
        shape keeps (None when it keeps none for the cluster: ask `best_model`)."""
        fit = self.shapes[key].fit
        used = fit.used.get(cluster.name)
        if (used is None or cluster.name not in fit.pools or fit.epoch != self.epoch
                or len(cluster.capacity.accelerator_pools) != used[0]):
            return None
        best = self._kept_best(request, cluster, fit)
        return best[0].accelerator_model if best is not None else None

    def best(self, request: PlacementRequest, key: tuple[object, ...]) -> str | None:
        shape = self._sync(request, key)
        heap, ver = shape.heap, shape.ver
        while heap and heap[0][2] != ver[heap[0][1]]:
            heapq.heappop(heap)
        return heap[0][1] if heap else None

    def ranked(self, request: PlacementRequest, key: tuple[object, ...]) -> list[str]:
        shape = self._sync(request, key)
        ver = shape.ver
        live = [e for e in shape.heap if ver[e[1]] == e[2]]
        live.sort()
        shape.heap = live  # a sorted list is a heap: the stale entries go for free
        return [name for _, name, _ in live]

    def rejections(self, key: tuple[object, ...]) -> list[Reason]:
        return list(self.shapes[key].fit.rejected.values())

    def rejected(self, key: tuple[object, ...]) -> Mapping[str, Reason]:
        """Each cluster the filters rejected for this shape, and why."""
        return self.shapes[key].fit.rejected
