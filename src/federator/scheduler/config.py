"""The scheduler's configuration: plugins, score weights, queues, preemption, regions.

One frozen value, validated when built, so a bad policy fails at start-up
with the field named, never in the middle of a cycle. `policy.py` reads the
same value from a YAML file; tests and benchmarks build it directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from federator.model.accelerator import DEFAULT_VENDOR
from federator.scheduler.plugins import DEFAULT_SCORE_WEIGHTS, FILTERS, SCORES
from federator.scheduler.reservation import ReservationPolicy


@dataclass(frozen=True, slots=True)
class Quota:
    """The most a queue may hold at once. None = no limit on that resource.

    `accelerator_milli` maps an accelerator model name as users write it ("H100") to milli-devices;
    it limits every cluster accelerator model that name selects.
    """

    accelerator_milli: Mapping[str, int] = field(default_factory=dict)
    cpu_milli: int | None = None
    memory_bytes: int | None = None

    def __post_init__(self) -> None:
        for model, milli in self.accelerator_milli.items():
            if not isinstance(milli, int) or milli < 0:
                raise ValueError(f"quota.gpus.{model}: must be a non-negative number of accelerators, got {milli!r}")
        for name in ("cpu_milli", "memory_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"quota.{name}: must be non-negative, got {value!r}")


# The range of `spec.priority` (jobfile.py), and so of a queue's maxPriority.
PRIORITY_LIMIT = 1_000_000
# The most `spec.maxRunSeconds` may be (jobfile.MAX_RUN_SECONDS, 90 days), and so a queue's maxRunSeconds.
RUN_SECONDS_LIMIT = 90 * 24 * 3600


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A queue (tenant): its weight in weighted DRF fair share, its quota, and how many of its jobs may wait.

    `max_pending_jobs` is not the scheduler's: Submit reads it (server/intake.py), so that one queue cannot
    fill the federator's backlog. None: the server's `--max-pending-jobs-per-queue`.

    `max_priority` is Submit's too: the highest `spec.priority` a job of the queue may ask (policy
    `maxPriority`). Priority orders a queue's jobs and preempts lower-priority work, so a value the tenant
    chooses alone would let every tenant send the top one (security finding M1); the operator grants it.
    None: `SchedulerConfig.max_priority`'s default.

    `max_run_seconds` is the server's too (server/run_limits.py): the longest a job of the queue may run, the
    limit of its jobs that give no `spec.maxRunSeconds` and the cap of those that give one (Submit refuses a
    longer one). A network billing accelerator hours bounds each tenant's runs so. None: no bound.

    `owner_share` (policy `ownerShare`, default on): within a priority, the jobs of the owner who holds the fewest of
    the queue's accelerators go first, then submission time (scheduler/owner_share.py). Off: submission time alone,
    as before 0.13.0, for a queue whose order its users agreed on (one pipeline's stages, say).

    `allowed_regions` (policy `allowedRegions`; a Queue's spec.allowedRegions): the only regions any job of the queue
    may run in, a fence the operator sets for an organisation (data residency). () = any. A job's own
    spec.regions.allowed may only narrow it (Submit refuses one naming a region outside it); the scheduler's
    AllowedRegions filter (scheduler/residency.py) holds every placement of the queue's jobs inside it."""

    weight: float = 1.0
    quota: Quota = field(default_factory=Quota)
    max_pending_jobs: int | None = None
    max_priority: int | None = None
    max_run_seconds: int | None = None
    owner_share: bool = True
    allowed_regions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.owner_share, bool):
            raise ValueError(f"ownerShare: must be true or false, got {self.owner_share!r}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, int | float) or not self.weight > 0:
            raise ValueError(f"weight: must be a positive number, got {self.weight!r}")
        cap = self.max_pending_jobs
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError(f"maxPendingJobs: must be a positive integer, got {cap!r}")
        top = self.max_priority
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or abs(top) > PRIORITY_LIMIT):
            raise ValueError(f"maxPriority: must be an integer from -{PRIORITY_LIMIT:,} to {PRIORITY_LIMIT:,}, "
                             f"got {top!r}")
        run = self.max_run_seconds
        if run is not None and (isinstance(run, bool) or not isinstance(run, int) or not 1 <= run <= RUN_SECONDS_LIMIT):
            raise ValueError(f"maxRunSeconds: must be an integer from 1 to {RUN_SECONDS_LIMIT}, got {run!r}")


@dataclass(frozen=True, slots=True)
class RebalancePolicy:
    """How often serving replicas spilled far from their users are moved back near them (server/rebalance.py).

    Why a bound: a move launches replicas before it stops others (make before break), so for a while the job
    runs more than it asked; bounded fleet-wide, a region coming back does not start every spilled job's surge
    in one turn. `max_moves_per_minute` 0 turns the rebalancer off. `quiet_seconds`: a job is not moved again
    this long after its last move (each move must bring it strictly nearer, so there is no ping-pong; this only
    spaces the steps of a job that comes back region by region)."""

    max_moves_per_minute: int = 6
    quiet_seconds: float = 600.0

    def __post_init__(self) -> None:
        cap = self.max_moves_per_minute
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ValueError(f"rebalance.maxMovesPerMinute: must be a non-negative integer, got {cap!r}")
        quiet = self.quiet_seconds
        if isinstance(quiet, bool) or not isinstance(quiet, int | float) or not 0 <= quiet < float("inf"):
            raise ValueError(f"rebalance.quietSeconds: must be a non-negative number of seconds, got {quiet!r}")


# `scarcityScale: auto`: the median scale, or the absolute one at K = 4, whichever a rollout over the fleet
# packs best (docs/benchmarks.md, round 23).
SCARCITY_SCALES = (0.0, 4.0)


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Which plugins run, how much each score counts, the queues, preemption and regions."""

    filters: tuple[str, ...] = tuple(FILTERS)
    score_weights: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SCORE_WEIGHTS))
    max_placements_per_cycle: int = 100_000
    queues: Mapping[str, QueueConfig] = field(default_factory=dict)
    default_queue: QueueConfig = field(default_factory=QueueConfig)  # any queue not listed
    preemption: bool = True
    max_preemptions_per_cycle: int = 10  # victim jobs per cycle
    region_latency_ms: Mapping[tuple[str, str], int] = field(default_factory=dict)  # symmetric
    # The vendor that owns the one-count form's resource (nvidia.com/gpu) in the catalog: a job asking
    # for it without spec.accelerators runs on that vendor's pools only. "" = any vendor's pools.
    legacy_vendor: str = DEFAULT_VENDOR
    # How hard `Scarcity` presses small work off the models pinned work needs (scheduler/demand.py), each
    # 0 for the median scale or `K` of the absolute one (a model scores 0 where pinned work's projected need
    # is `K` times its free accelerators). One value is fixed; with more, the first holds until a rollout
    # (scheduler/tuning.py) finds which of them packs the fleet best.
    scarcity_scales: tuple[float, ...] = SCARCITY_SCALES
    # When a training gang that has waited starts to gather room on one cluster, and how many may at once
    # (scheduler/reservation.py; `max_reservations` 0: never).
    reservations: ReservationPolicy = field(default_factory=ReservationPolicy)
    # Whether the policy says who may use what (a `tenancy` section, or an `access` list on a queue): then a
    # queue without a maxPriority of its own grants 0 (`max_priority`).
    multi_tenant: bool = False
    # Moving serving replicas back near their users when room returns (server/rebalance.py).
    rebalance: RebalancePolicy = field(default_factory=RebalancePolicy)

    def __post_init__(self) -> None:
        for name in self.filters:
            if name not in FILTERS:
                raise ValueError(f"filters: unknown plugin {name!r} (known: {', '.join(FILTERS)})")
        for name, weight in self.score_weights.items():
            if name not in SCORES:
                raise ValueError(f"score_weights: unknown plugin {name!r} (known: {', '.join(SCORES)})")
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                raise ValueError(f"score_weights.{name}: must be a non-negative integer, got {weight!r}")
        if not self.scarcity_scales or any(isinstance(k, bool) or not isinstance(k, int | float)
                                           or not 0 <= k < float("inf") for k in self.scarcity_scales):
            raise ValueError("scarcityScale: must be 'median', 'auto' or a positive number, "
                             f"got {self.scarcity_scales!r}")
        if self.max_placements_per_cycle < 1:
            raise ValueError("max_placements_per_cycle: must be at least 1")
        if self.max_preemptions_per_cycle < 0:
            raise ValueError("max_preemptions_per_cycle: must not be negative")
        for (a, b), ms in self.region_latency_ms.items():
            if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
                raise ValueError(f"regions.latencyMs.{a}.{b}: must be a non-negative integer, got {ms!r}")

    def queue(self, name: str) -> QueueConfig:
        return self.queues.get(name, self.default_queue)

    def max_priority(self, name: str) -> tuple[int, str]:
        """The highest `spec.priority` a job of queue `name` may ask, and where the bound comes from (for the
        refusal): the queue's maxPriority, else defaultQueue's, else 0 when the policy is multi-tenant (other
        tenants' work is at stake: a tenant may still order its own jobs below 0) and the whole range when it
        is not (one tenant's priorities are its own business: nothing changes for it)."""
        own = self.queues[name].max_priority if name in self.queues else None
        if own is not None:
            return own, f"queue {name!r} maxPriority"
        if self.default_queue.max_priority is not None:
            return self.default_queue.max_priority, "defaultQueue.maxPriority"
        if self.multi_tenant:
            return 0, "the default maxPriority of a policy with tenancy or access lists"
        return PRIORITY_LIMIT, "the default maxPriority of a policy without tenancy"

    def priority_problem(self, queue: str, priority: int) -> str | None:
        """Submit's refusal of a priority above the queue's maxPriority (policy file, Queue object), or None.

        Why: priority orders a queue's jobs and preempts lower-priority work, also another organisation's;
        chosen by the tenant alone every tenant would send the top one (security finding M1). Here, not in the
        server, so that `federator sim --policy` refuses what Submit refuses with the same words (outside QA F6)."""
        bound, source = self.max_priority(queue)
        if priority <= bound:
            return None
        return (f"spec.priority: {priority} is above the highest queue {queue!r} allows, {bound} ({source}); "
                f"submit at {bound} or lower, or ask the operator for a higher maxPriority")

    def max_run_seconds(self, name: str) -> tuple[int, str]:
        """The longest a job of queue `name` may run, and where the bound comes from: the queue's maxRunSeconds,
        else defaultQueue's; (0, "") when neither sets one."""
        own = self.queues[name].max_run_seconds if name in self.queues else None
        if own is not None:
            return own, f"queue {name!r} maxRunSeconds"
        if self.default_queue.max_run_seconds is not None:
            return self.default_queue.max_run_seconds, "defaultQueue.maxRunSeconds"
        return 0, ""

    def run_limit(self, queue: str, asked: int) -> tuple[int, str]:
        """The run-time limit of a job of `queue` that asked `asked` seconds (0: none), and its source: the
        shorter of its own and its queue's (server/run_limits.py); (0, "") for none. Its own is never longer
        than its queue's on Submit (`run_limit_problem`), but a queue's bound may have shrunk since."""
        bound, source = self.max_run_seconds(queue)
        if asked and (not bound or asked <= bound):
            return asked, "spec.maxRunSeconds"
        return bound, source

    def run_limit_problem(self, queue: str, asked: int) -> str | None:
        """Submit's refusal of a spec.maxRunSeconds above the queue's maxRunSeconds (policy file, Queue object)."""
        bound, source = self.max_run_seconds(queue)
        if not bound or asked <= bound:
            return None
        return (f"spec.maxRunSeconds: {asked} is above the longest queue {queue!r} allows, {bound} ({source}); "
                f"ask {bound} or less, or leave it out to run up to it")

    def region_problem(self, queue: str, allowed: tuple[str, ...]) -> str | None:
        """Submit's refusal of a spec.regions.allowed naming a region outside its queue's allowedRegions (policy
        file, Queue object), or None: a job may narrow its organisation's fence, never widen it
        (scheduler/residency.py). A job that names none runs within the fence."""
        fence = self.queue(queue).allowed_regions
        outside = [r for r in allowed if fence and r not in fence]
        if not outside:
            return None
        return (f"spec.regions.allowed: {', '.join(outside)} {'is' if len(outside) == 1 else 'are'} outside the "
                f"regions queue {queue!r} may run in ({', '.join(fence)}, its allowedRegions); name only those, or "
                f"leave spec.regions.allowed out to run anywhere among them")

    def outranks(self, priority: int, queue: str) -> bool:
        """Whether a job of `priority` (of another queue) ranks above the work of queue `queue` by priority
        alone, and so may preempt its lower-priority preemptible work without the fair-share rule.

        Priorities are one scale only where nobody bounds them (a single-tenant policy that sets no
        maxPriority: as before), or where the operator granted the preemptor more than `queue` may ever ask
        (its maxPriority). Else each tenant picks its priorities within its own bound, to order its own
        jobs; comparing them across queues would let a tenant preempt another's work because that one
        ordered its own below 0 (security finding M1), so across queues the fair-share rule decides."""
        bound, _ = self.max_priority(queue)
        unbounded = not self.multi_tenant and self.default_queue.max_priority is None and (
            queue not in self.queues or self.queues[queue].max_priority is None)
        return unbounded or priority > bound

    def latency_ms(self, a: str, b: str) -> int | None:
        """Round-trip latency between two regions; 0 within a region; None if not configured."""
        if a == b:
            return 0
        got = self.region_latency_ms.get((a, b))
        return got if got is not None else self.region_latency_ms.get((b, a))
