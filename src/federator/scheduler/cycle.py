"""One scheduling cycle: order the pending jobs, place each over a snapshot.

A pure function of (snapshot, pending jobs, config): no clock but the one
handed in, no I/O. The server, the simulator and the benchmarks all run this
same code. The cycle reads as numbered phases, each timed:

1. order: pending jobs by priority, then submission time;
2. prescore: per-cycle values every scorer reads (max price, region load);
3. place: each job in a transaction, committed only if the whole job fits;
   a training gang goes to one cluster, inference replicas spread.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from federator.model import ClusterInfo, JobId, JobKind, Reason, ReasonCode
from federator.scheduler.framework import (
    CycleContext,
    FilterPlugin,
    PlacementRequest,
    ScorePlugin,
    matching_models,
)
from federator.scheduler.plugins import DEFAULT_SCORE_WEIGHTS, FILTERS, SCORES
from federator.scheduler.snapshot import Snapshot, Txn, reserve


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Which plugins run, and how much each score counts. Validated when built."""

    filters: tuple[str, ...] = tuple(FILTERS)
    score_weights: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SCORE_WEIGHTS))
    max_placements_per_cycle: int = 100_000

    def __post_init__(self) -> None:
        for name in self.filters:
            if name not in FILTERS:
                raise ValueError(f"filters: unknown plugin {name!r} (known: {', '.join(FILTERS)})")
        for name, weight in self.score_weights.items():
            if name not in SCORES:
                raise ValueError(f"score_weights: unknown plugin {name!r} (known: {', '.join(SCORES)})")
            if not isinstance(weight, int) or weight < 0:
                raise ValueError(f"score_weights.{name}: must be a non-negative integer, got {weight!r}")
        if self.max_placements_per_cycle < 1:
            raise ValueError("max_placements_per_cycle: must be at least 1")


@dataclass(frozen=True, slots=True)
class Assignment:
    """Replicas of one job bound to one cluster: becomes a Placement."""

    cluster: str
    region: str
    replicas: int
    gpu_model: str


@dataclass(frozen=True, slots=True)
class Decision:
    job_id: JobId
    assignments: tuple[Assignment, ...]


@dataclass(frozen=True, slots=True)
class CycleResult:
    decisions: tuple[Decision, ...]
    pending: Mapping[JobId, Reason]
    phase_seconds: Mapping[str, float]
    snapshot: Snapshot  # after the cycle's reservations


# Most severe first: the reason we report is the one closest to fitting.
_SEVERITY = [
    ReasonCode.GANG_DOES_NOT_FIT,
    ReasonCode.INSUFFICIENT_GPUS,
    ReasonCode.INSUFFICIENT_CPU,
    ReasonCode.INSUFFICIENT_MEMORY,
    ReasonCode.GPU_MODEL_UNAVAILABLE,
    ReasonCode.CLUSTER_NOT_READY,
]


def queue_order(requests: Sequence[PlacementRequest]) -> list[PlacementRequest]:
    return sorted(requests, key=lambda r: (-r.spec.priority, r.submitted_at, r.job_id))


def prescore(snapshot: Snapshot) -> CycleContext:
    prices = [p for c in snapshot.clusters if (p := c.price_per_gpu_hour) is not None]
    alloc: Counter[str] = Counter()
    free: Counter[str] = Counter()
    for c in snapshot.ready():
        alloc[c.region] += c.capacity.allocatable_gpus
        free[c.region] += c.capacity.free_gpus
    util = {r: 1.0 - free[r] / alloc[r] for r in alloc if alloc[r]}
    return CycleContext(max_price=max(prices, default=0.0), region_gpu_utilization=util)


class Scheduler:
    """Runs cycles with a fixed set of plugins."""

    def __init__(self, config: SchedulerConfig | None = None) -> None:
        self.config = config or SchedulerConfig()
        self.filters: list[FilterPlugin] = [FILTERS[n]() for n in self.config.filters]
        self.scores: list[tuple[ScorePlugin, int]] = [
            (SCORES[n](), w) for n, w in self.config.score_weights.items() if w
        ]

    def schedule(
        self,
        snapshot: Snapshot,
        requests: Sequence[PlacementRequest],
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> CycleResult:
        phases: dict[str, float] = {}
        t0 = clock()
        ordered = queue_order(requests)
        t1 = clock()
        phases["order"] = t1 - t0
        ctx = prescore(snapshot)
        t2 = clock()
        phases["prescore"] = t2 - t1

        txn = Txn(snapshot)
        decisions: list[Decision] = []
        pending: dict[JobId, Reason] = {}
        for request in ordered:
            if len(decisions) >= self.config.max_placements_per_cycle:
                pending[request.job_id] = Reason(ReasonCode.WAITING, "placement limit of this cycle reached")
                continue
            if request.spec.kind is JobKind.TRAINING:
                outcome = self._place_gang(request, txn, ctx)
            else:
                outcome = self._place_spread(request, txn, ctx)
            if isinstance(outcome, Reason):
                pending[request.job_id] = outcome
            else:
                decisions.append(Decision(request.job_id, outcome))
        phases["place"] = clock() - t2
        return CycleResult(tuple(decisions), pending, phases, txn.snapshot())

    # -- placement --------------------------------------------------------

    def feasible(self, request: PlacementRequest, clusters: Sequence[ClusterInfo]) -> tuple[
            list[ClusterInfo], list[Reason]]:
        ok: list[ClusterInfo] = []
        rejected: list[Reason] = []
        for cluster in clusters:
            for plugin in self.filters:
                reason = plugin.filter(request, cluster)
                if reason is not None:
                    rejected.append(reason)
                    break
            else:
                ok.append(cluster)
        return ok, rejected

    def ranked(self, request: PlacementRequest, clusters: Sequence[ClusterInfo], ctx: CycleContext) -> list[
            ClusterInfo]:
        def total(c: ClusterInfo) -> int:
            return sum(w * plugin.score(request, c, ctx) for plugin, w in self.scores)

        return sorted(clusters, key=lambda c: (-total(c), c.name))

    def _place_gang(self, request: PlacementRequest, txn: Txn, ctx: CycleContext) -> tuple[Assignment, ...] | Reason:
        clusters = txn.clusters()
        ok, rejected = self.feasible(request, clusters)
        if not ok:
            return summarize(rejected, len(clusters), request)
        best = self.ranked(request, ok, ctx)[0]
        model = _best_fit_model(request, best, request.replicas)
        txn.begin()
        txn.put(_reserve(best, request, request.replicas, model))
        txn.commit()
        return (Assignment(best.name, best.region, request.replicas, model),)

    def _place_spread(self, request: PlacementRequest, txn: Txn, ctx: CycleContext) -> tuple[
            Assignment, ...] | Reason:
        one = PlacementRequest(request.job_id, request.spec, 1, request.submitted_at)
        clusters = txn.clusters()
        ok, rejected = self.feasible(one, clusters)
        if not ok:
            return summarize(rejected, len(clusters), request)
        preferred = set(request.spec.preferred_regions)
        near = [c for c in ok if c.region in preferred]
        tiers = [near, [c for c in ok if c.region not in preferred]] if near else [ok]
        counts: Counter[tuple[str, str]] = Counter()
        left = request.replicas
        txn.begin()
        for tier in tiers:
            order = [c.name for c in self.ranked(request, tier, ctx)]
            progress = True
            while left and progress:
                progress = False
                for name in order:
                    if not left:
                        break
                    cluster = txn.get(name)
                    if any(f.filter(one, cluster) for f in self.filters):
                        continue
                    model = _best_fit_model(one, cluster, 1)
                    txn.put(_reserve(cluster, one, 1, model))
                    counts[(name, model)] += 1
                    left -= 1
                    progress = True
        if left:
            txn.abort()
            return Reason(
                ReasonCode.INSUFFICIENT_GPUS if request.gpus_per_replica else ReasonCode.INSUFFICIENT_CPU,
                f"only {request.replicas - left} of {request.replicas} replicas fit across "
                f"{len(ok)} clusters",
            )
        txn.commit()
        return tuple(
            Assignment(name, txn.get(name).region, n, model) for (name, model), n in sorted(counts.items())
        )


def _best_fit_model(request: PlacementRequest, cluster: ClusterInfo, replicas: int) -> str:
    """The accepted GPU model whose pool fits `replicas` most tightly ("" for CPU-only)."""
    g = request.gpus_per_replica
    if g == 0:
        return ""
    fitting = []
    for model in matching_models(request.spec, cluster):
        pool = cluster.capacity.pool(model)
        if pool is not None and pool.gang_capacity(g) >= replicas:
            fitting.append((pool.gang_capacity(g), model))
    if not fitting:
        raise ValueError(f"no pool of {cluster.name} fits; filters should have said so")
    return min(fitting)[1]


def _reserve(cluster: ClusterInfo, request: PlacementRequest, replicas: int, model: str) -> ClusterInfo:
    return reserve(cluster, resources=request.spec.resources, replicas=replicas,
                   gpus_per_replica=request.gpus_per_replica, gpu_model=model)


def summarize(rejected: Sequence[Reason], clusters: int, request: PlacementRequest) -> Reason:
    """One reason for a job no cluster takes: the most severe code, with every cluster's story."""
    if clusters == 0:
        return Reason(ReasonCode.NO_CLUSTERS, "no member cluster is connected")
    codes = {r.code for r in rejected}
    code = next((c for c in _SEVERITY if c in codes), rejected[0].code if rejected else ReasonCode.WAITING)
    parts: list[str] = []
    by_code: dict[ReasonCode, list[Reason]] = {}
    for r in rejected:
        by_code.setdefault(r.code, []).append(r)
    for c in sorted(by_code, key=lambda c: _SEVERITY.index(c) if c in _SEVERITY else len(_SEVERITY)):
        group = by_code[c]
        parts.extend(r.message for r in group[:3])
        if len(group) > 3:
            parts.append(f"{len(group) - 3} more clusters: {c}")
    return Reason(code, f"0/{clusters} clusters fit: " + "; ".join(parts))
