"""The cycle's per-shape cache of filter and score results (kube's PreFilter, cached).

Requests of one *shape* (`PlacementRequest.shape`) place alike, so a cycle evaluates a cluster for a
shape once and again only after the cluster changed. Every change is logged; a shape re-evaluates
just the clusters logged since it last looked and keeps the feasible ones in a max-heap of
(score, name). Two facts make re-evaluation cheaper still, without changing any answer: a cluster
that a cycle-constant filter rejects for a shape (wrong vendor or model, no sharing, not ready, or a
cluster the shape's jobs avoid)
stays rejected all cycle, so it is never looked at again for that shape; and one those filters
passed passes them again, so its re-evaluations run only the capacity filters and the scores,
of which those that read nothing a cycle changes (price, region load, locality) are summed once.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from federator.model import ClusterInfo, Reason
from federator.scheduler.framework import CycleContext, FilterPlugin, PlacementRequest, ScorePlugin
from federator.scheduler.plugins import CYCLE_CONSTANT_FILTERS, CYCLE_CONSTANT_SCORES
from federator.scheduler.pools import PoolScores, best_pool
from federator.scheduler.snapshot import Txn

FIXED, ADMITTED = 1, 2  # what a cluster's evaluation for a shape says of the rest of the cycle (Board.check)


class Shape:
    """What the board knows of one shape: the clusters it may use (a heap), why the others refuse it."""

    __slots__ = ("admitted", "cursor", "fixed", "heap", "rejected", "steady", "ver")

    def __init__(self) -> None:
        self.cursor = 0
        self.heap: list[tuple[int, str, int]] = []  # (-score, cluster, its version then); stale ones dropped lazily
        self.ver: dict[str, int] = {}  # per cluster, the board version it was last evaluated at
        self.rejected: dict[str, Reason] = {}
        self.fixed: set[str] = set()  # clusters a cycle-constant filter rejected: never looked at again
        self.admitted: set[str] = set()  # clusters the cycle-constant filters passed: not checked again
        self.steady: dict[str, int] = {}  # per cluster, the weighted sum of the cycle-constant scores


class Board:
    """Per-cycle filter and score results by request shape (kube's PreFilter, cached).

    Every change to a cluster is appended to a log; a shape re-evaluates only
    the clusters logged since it last looked, and keeps the feasible ones in a
    max-heap of (score, name) whose stale entries are dropped lazily.
    """

    def __init__(self, filters: Sequence[FilterPlugin], scores: Sequence[tuple[ScorePlugin, int]],
                 ctx: CycleContext, pool_scores: PoolScores = ()) -> None:
        self.filters = filters
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
        self.pool_scores = pool_scores
        self.ctx = ctx
        self.version: dict[str, int] = {}
        self.pool_values: dict[tuple[object, ...], int] = {}
        self.log: list[str] = []
        self.shapes: dict[tuple[object, ...], Shape] = {}
        self.txn: Txn | None = None

    def changed(self, name: str) -> None:
        self.log.append(name)
        self.version[name] = self.version.get(name, 0) + 1

    def evaluate(self, request: PlacementRequest, cluster: ClusterInfo, *, current: bool = False) -> Reason | int:
        """Filters, then the weighted scores. `current`: `cluster` is the txn's present view of it, so
        its pool part may be shared with other shapes asking for the same resources."""
        return self.check(request, cluster, current=current)[0]

    def check(self, request: PlacementRequest, cluster: ClusterInfo, *, current: bool = False,
              admitted: bool = False, steady: dict[str, int] | None = None) -> tuple[Reason | int, int]:
        """`evaluate`, and what holds for the rest of the cycle: FIXED (the rejection does), ADMITTED (the
        cycle-constant filters passed, so they will again) or 0. `admitted`: skip those filters. `steady`:
        the shape's sums of cycle-constant scores by cluster, read and filled."""
        ctx = self.ctx
        for i, (f, fixed) in enumerate(self.rest if admitted else self.fixed):
            reason = f.filter(request, cluster, ctx)
            if reason is not None:
                if fixed:
                    return reason, FIXED
                return reason, ADMITTED if admitted or i > self.last_fixed else 0
        if steady is None:
            total = 0
            for s, w in self.scores:
                total += w * s.score(request, cluster, ctx)
        else:
            got = steady.get(cluster.name)
            if got is None:
                got = steady[cluster.name] = sum(w * s.score(request, cluster, ctx) for s, w in self.steady_scores)
            total = got
            for s, w in self.moving_scores:
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
                    request.vendor,  # an alternative's vendor and capability ask choose pools too
                    request.min_memory_mib,
                )
                got = self.pool_values.get(key)
                if got is not None:
                    return total + got, ADMITTED
            pool = best_pool(request, cluster, ctx, self.pool_scores, replicas)
            value = pool[0] if pool is not None else 0
            if key is not None:
                self.pool_values[key] = value
            total += value
        return total, ADMITTED

    def _sync(self, request: PlacementRequest, key: tuple[object, ...]) -> Shape:
        assert self.txn is not None
        shape = self.shapes.get(key)
        names: Sequence[str] | set[str]
        if shape is None:
            shape = self.shapes[key] = Shape()
            names = self.txn.names
        elif shape.cursor == len(self.log):
            return shape
        elif len(self.log) - shape.cursor > len(self.txn.names):  # a long way behind: compare versions instead
            version, seen, fixed = self.version, shape.ver, shape.fixed
            names = [n for n in self.txn.names if n not in fixed and version.get(n, 0) != seen.get(n)]
        else:
            names = set(self.log[shape.cursor:])
        shape.cursor = len(self.log)
        ver, heap, rejected, fixed, admitted = shape.ver, shape.heap, shape.rejected, shape.fixed, shape.admitted
        steady, version = shape.steady, self.version
        for name in names:
            if name in fixed:
                continue
            out, holds = self.check(request, self.txn.get(name), current=True, admitted=name in admitted,
                                    steady=steady)
            if holds == FIXED:
                fixed.add(name)
            elif holds == ADMITTED:
                admitted.add(name)
            v = ver[name] = version.get(name, 0)  # the cluster's version this result is for
            if isinstance(out, Reason):
                rejected[name] = out
            else:
                rejected.pop(name, None)
                heapq.heappush(heap, (-out, name, v))
        if len(heap) > 4 * len(ver) + 16:
            shape.heap = [e for e in heap if ver[e[1]] == e[2]]
            heapq.heapify(shape.heap)
        return shape

    def best(self, request: PlacementRequest, key: tuple[object, ...]) -> str | None:
        shape = self._sync(request, key)
        heap, ver = shape.heap, shape.ver
        while heap and heap[0][2] != ver[heap[0][1]]:
            heapq.heappop(heap)
        return heap[0][1] if heap else None

    def ranked(self, request: PlacementRequest, key: tuple[object, ...]) -> list[str]:
        shape = self._sync(request, key)
        return [name for _, name, v in sorted(shape.heap) if shape.ver[name] == v]

    def rejections(self, key: tuple[object, ...]) -> list[Reason]:
        return list(self.shapes[key].rejected.values())
