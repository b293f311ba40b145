"""The plugin framework: Filter and Score plugins over a cluster snapshot.

Modelled on the Kubernetes scheduler framework, with a *cluster* where
kube-scheduler has a node. A plugin implements only the extension points it
needs; a rejection is a value (a Reason with a bounded code), never an
exception, so the cycle can report why every pending job waits. Values every
plugin reads are computed once per cycle into a CycleContext (kube's PreScore).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from federator.model import MILLI, AcceleratorPool, ClusterInfo, JobId, JobKind, JobSpec, Reason, Resources
from federator.model.accelerator import accepts_model, model_matches  # noqa: F401  (re-exported)
from federator.model.elastic_left import ElasticLeft
from federator.model.pod_sets import PodSetAsk, short_in
from federator.model.sharing import SHARING_MIG, names_partition
from federator.scheduler.regionload import RegionUse
from federator.security.podsecurity_member import PodSecurityNeed, needed_by_texts

if TYPE_CHECKING:
    from federator.scheduler.demand import Demand

MAX_SCORE = 100
# How AcceleratorModel's rejection goes on when a request bound to one vendor finds only other vendors' devices
# (the cycle adds how to ask for those when the job used the one-count form).
OTHER_VENDORS_ONLY = "only devices of"
# How it goes on when the asked devices are there but none has the memory asked (or their memory is unknown).
ASKED_DEVICES_HAVE = "devices have"


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """A job, or the rest of one, asking for `replicas` replicas somewhere.

    `blocked_models` are accelerator model names (as a queue quota writes them) the
    job may not use this cycle because its queue's quota on them is used up.

    `model_caps` are, for a spread request only, (quota name, replicas) for each quota that has room for some
    of its replicas but not all: the spread planner binds no more replicas to the models that name selects
    (pools.QuotaBudget). A spread job's replicas may split over the models it accepts, so charging all of
    them against each model kept a job of 20 open to H100 and A100 waiting under quotas of 16 and 8 (audit
    F3). A gang takes one model, so it is charged in full and never capped.
    """

    job_id: JobId
    spec: JobSpec
    replicas: int
    submitted_at: float = 0.0
    blocked_models: tuple[str, ...] = ()
    model_caps: tuple[tuple[str, int], ...] = ()
    # Clusters that refused this job a moment ago (its agent would not launch it, or stopped
    # it, e.g. after its gang timeout): try the others first.
    avoid_clusters: tuple[str, ...] = ()
    alternative: int = 0  # which of spec.accelerators this request stands for
    vendor: str = ""  # the alternative's vendor ("" = any)
    resource_name: str = ""  # the alternative's device plugin resource ("" = any of the vendor's)
    min_memory_mib: int = 0  # the alternative's capability ask (0 = none)
    # What the alternative's template (merged over the job's) breaks at each pod security level; None: the
    # spec's own template (a job without alternatives), computed when read.
    pod_security: PodSecurityNeed | None = None
    # The rest of a spread job that lost a part (server/partial.py): the regions its live placements hold, which
    # count toward spec.min_regions. () for a whole job.
    kept_regions: tuple[str, ...] = ()
    # The rest of a job with spec.regions.weights: (region, replicas) its live placements hold, so the rest makes
    # up each region's share of the whole (scheduler/weights.py). () for a whole job, and for any other job.
    kept_replicas: tuple[tuple[str, int], ...] = ()
    # The gangs whose reserved room this request must leave alone this cycle (reservation.py): () in a cycle
    # without reservations, and for a job of higher priority than every reserved gang.
    respects: tuple[JobId, ...] = ()
    # How long the job may run once started, in seconds (its spec.maxRunSeconds, else its queue's bound:
    # `SchedulerConfig.run_limit`); 0: no bound. Read only by MaintenanceWindow (maintenance_window.py), so a
    # caller may leave it 0 while no cluster has a window ahead: the shapes of jobs that differ only in it stay one.
    run_seconds: int = 0
    # Its queue's allowedRegions (scheduler/residency.py `fenced`, at the start of each cycle): () = any region.
    queue_fence: tuple[str, ...] = ()
    # An elastic gang's last placement while its count still holds it (scheduler/elastic_regain.py): the place
    # phase does not place it below that count this cycle. None: its minimum is its floor. Not part of its shape:
    # each count it tries is a request of its own.
    regain: ElasticLeft | None = None

    @property
    def pod_security_need(self) -> PodSecurityNeed:
        """What the job's pod templates, as this request's alternative renders them, ask of a member's level."""
        if self.pod_security is not None:
            return self.pod_security
        s = self.spec
        return needed_by_texts(s.pod_template_json, "", s.workload_json)

    @property
    def accelerators_per_replica(self) -> int:
        """Whole accelerators a replica occupies for fitting (a fractional replica counts as one)."""
        return math.ceil(self.spec.resources.accelerator_milli / MILLI)

    @property
    def accelerator_milli(self) -> int:
        return self.spec.resources.accelerator_milli

    @property
    def is_gang(self) -> bool:
        """All replicas in one cluster (training), rather than spread (inference)."""
        return self.spec.kind is JobKind.TRAINING

    def capacity_in(self, pool: AcceleratorPool) -> int:
        """Replicas of this request the pool holds, on nodes whose host has room for one. A whole gang of pod sets
        (JobSpec.pod_sets) is held whole or not at all: all its replicas if its sets fit together, else none."""
        if self.spec.pod_sets and self.is_gang and self.replicas == self.spec.replicas:
            return 0 if short_in(pool, self.spec.pod_sets) else self.replicas
        res = self.spec.resources
        return pool.replica_capacity(res.accelerator_milli, res.cpu_milli, res.memory_bytes)

    def shape(self) -> tuple[object, ...]:
        """Everything filters and scores read: requests of one shape place alike within a cycle. The clusters a
        job avoids (it was just refused there) are part of it: another job of that shape may still go there."""
        s = self.spec
        return (s.kind, self.replicas, s.resources, s.accelerator_models, self.blocked_models, s.preferred_regions,
                s.user_region, s.max_latency_ms, s.workload_kind, self.vendor, self.resource_name,
                self.min_memory_mib, self.avoid_clusters, self.pod_security_need, self.kept_regions, self.model_caps,
                self.respects, self.run_seconds, s.allowed_regions, self.queue_fence, s.clusters,
                s.region_weights, s.prefer, self.kept_replicas, s.pod_sets)

    def fit_shape(self) -> tuple[object, ...]:
        """`shape` less what only the cycle-constant scores read (`plugins.CYCLE_CONSTANT_SCORES`): the
        preferred regions, and the user's region when no latency budget makes a filter read it (and the kept
        regions, which only a spread's count reads, never a filter or a score). Shapes
        of one fit shape pass the same filters on a cluster and score the same there but for those
        scores, so the cycle evaluates a changed cluster once for all of them (board.py)."""
        s = self.spec
        return (s.kind, self.replicas, s.resources, s.accelerator_models, self.blocked_models,
                s.user_region if s.max_latency_ms else "", s.max_latency_ms, s.workload_kind, self.vendor,
                self.resource_name, self.min_memory_mib, self.avoid_clusters, self.pod_security_need, self.model_caps,
                self.respects, self.run_seconds, s.allowed_regions, self.queue_fence, s.clusters, s.pod_sets)


def may_spread(spec: JobSpec) -> bool:
    """Whether a job's replicas may be bound to several clusters (the cycle's spread path), so that the loss of
    one cluster's part leaves the others serving and only that part is placed again (server/partial.py). A
    training gang is all or nothing in one cluster; a single replica has no other part to keep."""
    return spec.kind is not JobKind.TRAINING and (spec.replicas > 1 or spec.min_regions > 1)


@dataclass(frozen=True, slots=True)
class Allocation:
    """A placed or running job's hold on one cluster (one Placement), as the scheduler sees it.

    The server hands these in so the cycle can account queue usage (fair share
    and quotas) and choose preemption victims.
    """

    job_id: JobId
    queue: str
    priority: int
    preemptible: bool
    cluster: str
    accelerator_model: str
    replicas: int
    resources: Resources  # per replica
    placed_at: float = 0.0
    accelerator_models: tuple[str, ...] = ()  # the job's accepted models (() = any): what pinned work wants
    # (node name, replicas on it) where the member said so; () = not known. Preemption reads it to free one
    # node's worth (nodevictims.py): the pools' histograms count free accelerators per node but never name one.
    nodes: tuple[tuple[str, int], ...] = ()
    # What one partition of its pool is worth (Placement.unit_milli); 0: whole or shared devices, or not recorded
    # (a placement of 0.11.0: the fleet's pool of that model says it, else it counts as asked). QueueUsage counts
    # what the replicas hold (`model.held_milli`); `resources` stays the ask, what preemption frees in a pool.
    unit_milli: int = 0
    # Whom the job belongs to (`JobSpec.owner`): within its queue the cycle takes first the jobs of the owner who
    # holds least (scheduler/owner_share.py). "": not known, counted as nobody's.
    owner: str = ""
    # A whole gang of unequal pod sets (JobSpec.pod_sets): queue usage counts each set at its own ask, not
    # `replicas` x `resources` (the largest). () for every other hold.
    pod_sets: tuple[PodSetAsk, ...] = ()


def allocation_parts(a: Allocation) -> tuple[tuple[Resources, int], ...]:
    """(per-pod resources, pods) of a hold: each pod set at its own ask for a gang of pod sets, else `replicas` x
    `resources`. What queue usage counts and what preemption frees of it."""
    return tuple((p.resources, p.count) for p in a.pod_sets) or ((a.resources, a.replicas),)


@dataclass(frozen=True, slots=True)
class CycleContext:
    """Values computed once per cycle over the whole snapshot (kube's PreScore)."""

    max_price: float = 0.0
    regions: RegionUse = field(default_factory=lambda: RegionUse((), MAX_SCORE))  # accelerator use per region, moving
    region_latency_ms: Mapping[tuple[str, str], int] = field(default_factory=dict)
    max_latency_ms: int = 0
    demand: Demand | None = None  # what waiting and recent work asks for (demand.py)
    # Per cluster, the instant (Unix seconds) its maintenance window begins, for a window still ahead: no job
    # whose run bound ends after it goes there (maintenance_window.py). `now` is the cycle's, which it is read at.
    maintenance: Mapping[str, float] = field(default_factory=dict)
    now: float = 0.0
    # The clusters each job named by some request's spec.clusters.sameAs holds a placement on (same_as.py)
    placed: Mapping[JobId, frozenset[str]] = field(default_factory=dict)

    def latency_ms(self, a: str, b: str) -> int | None:
        if a == b:
            return 0
        got = self.region_latency_ms.get((a, b))
        return got if got is not None else self.region_latency_ms.get((b, a))


class FilterPlugin(Protocol):
    @property
    def name(self) -> str: ...

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        """None if `request` could run on `cluster` now; otherwise why not."""


class ScorePlugin(Protocol):
    @property
    def name(self) -> str: ...

    def score(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> float:
        """0..MAX_SCORE; higher is better. Only called for clusters that passed every filter. Most plugins
        round to a whole number; a score whose fine differences matter (Fragmentation's) need not."""


class PoolScorePlugin(ScorePlugin, Protocol):
    """A score of one GPU pool of a cluster for the request (fragmentation, scarcity, tightness).

    The cycle scores a cluster by its best pool, summing every pool plugin's weighted score for
    that pool, and binds the job to that same pool's model: the cluster and the model are chosen
    by one value. A pool score reads the request, the pool and the cycle's context, not the rest
    of the cluster: the cycle keeps it while the pool object is unchanged (board.py).
    """

    def pool_score(self, request: PlacementRequest, cluster: ClusterInfo, pool: AcceleratorPool,
                   ctx: CycleContext) -> float:
        """0..MAX_SCORE for binding the request to `pool` (only pools it accepts and fits)."""


@lru_cache(maxsize=65536)
def _accepts(requested: tuple[str, ...], blocked: tuple[str, ...], actual: str, family: str = "") -> bool:
    """A pool of model `actual` (in catalog family `family`) is selected by a requested name and not
    blocked by a used-up quota's name: either may name the model or its family."""
    if requested and not any(accepts_model(r, actual, family) for r in requested):
        return False
    return not any(accepts_model(b, actual, family) for b in blocked)


def model_accepted(requested: tuple[str, ...], actual: str) -> bool:
    """Whether a pool of model `actual` is one of the `requested` models (() = any)."""
    return not requested or _accepts(requested, (), actual)


_last_accepted: list[tuple[PlacementRequest, ClusterInfo, list[AcceleratorPool]]] = []


def accepted_pools(request: PlacementRequest, cluster: ClusterInfo) -> list[AcceleratorPool]:
    """The GPU pools of `cluster` the request accepts and its quota allows (the hot path's matching_models).

    One evaluation asks this of the same (request, cluster) in several plugins (AcceleratorSharing, GangFit,
    the pool scores), so the last answer is kept: both are immutable, and held, so identity is equality.
    Do not mutate the list."""
    last = _last_accepted[0] if _last_accepted else None
    if last is not None and last[0] is request and last[1] is cluster:
        return last[2]
    got = _accepted_pools(request, cluster)
    _last_accepted[:] = [(request, cluster, got)]
    return got


def _accepted_pools(request: PlacementRequest, cluster: ClusterInfo) -> list[AcceleratorPool]:
    requested, blocked = request.spec.accelerator_models, request.blocked_models
    pools = cluster.capacity.accelerator_pools
    m = request.accelerator_milli
    if request.vendor or request.resource_name or request.min_memory_mib:
        pools = tuple(p for p in pools if _kind_ok(request, p))
    if not requested and not blocked:
        return [p for p in pools if not p.sharing or _shape_ok(p, m, requested)]
    return [p for p in pools if _accepts(requested, blocked, p.accelerator_model, p.family)
            and (not p.sharing or _shape_ok(p, m, requested))]


def accepts_pool(request: PlacementRequest, pool: AcceleratorPool) -> bool:
    """Whether the request could ever bind to `pool` (its models, vendor, resource, memory and shape), its quota
    aside: `accepted_pools` for one pool of the fleet, which the quota check weighs (fairshare.QueueUsage)."""
    return ((not (request.vendor or request.resource_name or request.min_memory_mib) or _kind_ok(request, pool))
            and _accepts(request.spec.accelerator_models, (), pool.accelerator_model, pool.family)
            and (not pool.sharing or _shape_ok(pool, request.accelerator_milli, request.spec.accelerator_models)))


def serves_shape(pool: AcceleratorPool, milli: int, requested: tuple[str, ...]) -> bool:
    """Whether `pool` could ever run a replica of `milli` asked by work naming `requested` (() = any model), by
    its sharing alone (models aside): what the filters hold every placement to, and so what the cycle's demand
    counts as work a pool can use (demand.py)."""
    return not pool.sharing or _shape_ok(pool, milli, requested)


def _shape_ok(pool: AcceleratorPool, milli: int, requested: tuple[str, ...]) -> bool:
    """The pool serves the replica's shape; whole devices of a partition pool (MIG, Ascend vNPU) only for a job
    naming a partition (asking "H100" or "Ascend310P" means whole chips, not 1g.10gb or 2-core partitions of one)."""
    if not pool.serves(milli):
        return False
    if pool.sharing == SHARING_MIG and milli % MILLI == 0:
        return any(names_partition(r) for r in requested)
    return True


def _kind_ok(request: PlacementRequest, pool: AcceleratorPool) -> bool:
    """An alternative's vendor, resource (its partitions too) and capability (memory per device) against a pool."""
    return ((not request.vendor or pool.vendor == request.vendor)
            and (not request.resource_name or pool.of_resource(request.resource_name))
            and pool.memory_mib >= request.min_memory_mib)


def matching_models(request: PlacementRequest | JobSpec, cluster: ClusterInfo) -> list[str]:
    """The accelerator models of `cluster` the request accepts (and its quota allows), in the cluster's order."""
    requested: tuple[str, ...]
    blocked: tuple[str, ...]
    if isinstance(request, JobSpec):
        requested, blocked = request.accelerator_models, ()
    else:
        requested, blocked = request.spec.accelerator_models, request.blocked_models
    pools = cluster.capacity.accelerator_pools
    if isinstance(request, PlacementRequest) and (request.vendor or request.resource_name or request.min_memory_mib):
        pools = tuple(p for p in pools if _kind_ok(request, p))
    if not requested and not blocked:
        return [p.accelerator_model for p in pools]
    return [p.accelerator_model for p in pools if _accepts(requested, blocked, p.accelerator_model, p.family)]
