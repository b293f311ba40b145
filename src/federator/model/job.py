"""Jobs, placements and the reasons a job waits.

A *job* is what a user submits. A *placement* is the part of a job bound to one
member cluster: a training gang has exactly one, an inference job has one per
cluster its replicas spread over. The same names are used in the proto, the
CRD, the metrics and the docs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from typing import NewType

from federator.model.accelerator import DEFAULT_VENDOR, AcceleratorAlternative
from federator.model.array import ArrayTask, array_of
from federator.model.cluster import held_milli
from federator.model.cluster_affinity import ClusterAffinity
from federator.model.dependency import DEPENDS_ON_ANNOTATION, JobDependency, parse_dependency
from federator.model.elastic_left import ElasticLeft
from federator.model.failure_policy import FailurePolicy
from federator.model.placement_asks import Preference
from federator.model.pod_sets import PodSetAsk, pod_sets_total
from federator.model.resources import Resources, format_accelerators

JobId = NewType("JobId", str)
PlacementId = NewType("PlacementId", str)


class JobKind(StrEnum):
    TRAINING = "training"
    INFERENCE = "inference"


class JobPhase(StrEnum):
    PENDING = "Pending"
    PLACED = "Placed"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.CANCELLED)

    @property
    def is_active(self) -> bool:
        """Holds capacity in a member cluster."""
        return self in (JobPhase.PLACED, JobPhase.RUNNING)


class ReasonCode(StrEnum):
    """Why a job is pending. A bounded set: it is a metric label."""

    NO_CLUSTERS = "NoClusters"
    CLUSTER_NOT_READY = "ClusterNotReady"
    ACCELERATOR_UNAVAILABLE = "AcceleratorUnavailable"
    INSUFFICIENT_ACCELERATORS = "InsufficientAccelerators"
    GANG_DOES_NOT_FIT = "GangDoesNotFit"
    INSUFFICIENT_CPU = "InsufficientCpu"
    INSUFFICIENT_MEMORY = "InsufficientMemory"
    QUOTA_EXCEEDED = "QuotaExceeded"
    REGION_UNAVAILABLE = "RegionUnavailable"
    REFUSED_BY_CLUSTER = "RefusedByCluster"
    RECENTLY_REFUSED = "RecentlyRefused"  # that cluster refused this job a moment ago; others are tried first
    FAILED_EARLY = "FailedEarly"  # a cluster reported it Failed soon after placing it: placed once more elsewhere
    PREEMPTED = "Preempted"  # was running; preempted by higher-priority or under-share work
    LATENCY_BUDGET = "LatencyBudget"  # no region with capacity is close enough to the users
    WORKLOAD_KIND_UNSUPPORTED = "WorkloadKindUnsupported"  # no cluster runs the job's spec.workload kind
    SHARING_UNAVAILABLE = "SharingUnavailable"  # the model is there, but not shared (fractions) or not whole
    POD_SECURITY = "PodSecurity"  # the member's agent enforces a pod security level the job's templates break
    # a member's API refused the job's object as invalid (Ack.invalid): tried on another provider's cluster to
    # confirm; the code a Failed job keeps when a second provider's did too (server/invalid_specs.py)
    INVALID_SPEC = "InvalidSpec"
    RESERVED = "Reserved"  # it would fit, but the room is reserved for a gang that has waited long (reservation.py)
    # it ran past its spec.max_run_seconds: the federator cancelled every placement; the code a Failed job keeps
    # (server/run_limits.py)
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    # an admin drained the cluster it ran on: requeued as the same job, placed elsewhere (server/drains.py)
    DRAINED = "Drained"
    # its owner or an admin held it (JobService.Hold, `submit --hold`, a FederatedJob's spec.held): it is never placed
    # until released; the message names who held it and when (server/job_holds.py)
    HELD = "Held"
    # it waits on the jobs its spec names (JobSpec.depends_on, a FederatedJob's spec.dependsOn): never placed until
    # they end as its condition asks; the message names each and its phase (server/dependencies.py)
    DEPENDENCY = "Dependency"
    # a task of an array at its throttle (`submit --array 0-99%10`): never placed until one of its array's running
    # tasks ends; the message says how many run of how many may (server/arrays.py)
    ARRAY_THROTTLE = "ArrayThrottle"
    # no Ready cluster is one its spec.clusters allows (by name or by the labels its agent reported): the message
    # names each cluster and what it lacks (scheduler/cluster_affinity.py)
    CLUSTER_AFFINITY = "ClusterAffinity"
    # a member reported it Failed and its spec.failurePolicy.maxRestarts has restarts left: placed again, elsewhere
    # first; the message says where it failed, its words and the count (server/failure_restarts.py)
    FAILED_RESTARTING = "FailedRestarting"
    WAITING = "Waiting"


class NeverRunnable(StrEnum):
    """Why no wait cures a pending job (`Reason.never`), the `reason` label of federator_never_runnable_jobs: what
    to change differs, so an operator routes them apart."""

    QUOTA = "quota"  # more than its queue's whole quota on every way it may run: shrink it, or raise the quota
    # more than any member cluster could hold even empty (a gang over every cluster's devices; spread replicas
    # over the whole fleet's, or its minRegions over the regions with the model): shrink it, or a larger member
    # joins, and then it runs (scheduler/fleet_fit.py; outside SRE QA, F11)
    FLEET = "fleet"


@dataclass(frozen=True, slots=True)
class Reason:
    code: ReasonCode
    message: str
    # No wait cures it (None: one may), and why (`NeverRunnable`): the job as asked needs more than its queue's
    # whole quota on every way it may run (scheduler/fairshare.py), or more than the fleet could hold even empty
    # (scheduler/fleet_fit.py). FederatorJobsPendingTooLong leaves such jobs out and FederatorJobsNeverRunnable
    # names them (server/state_sample.py; outside QA, ops F9; outside SRE QA, F11). Not on the wire nor in the
    # store: each cycle judges it again.
    never: NeverRunnable | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


USER_ANNOTATION = "federator.io/user"
"""The user the federator recorded as a job's owner (`security.authz.stamp_owner`), never what a spec claims."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a user asked for; the spec of a FederatedJob."""

    name: str
    kind: JobKind
    replicas: int
    resources: Resources  # per replica
    accelerator_models: tuple[str, ...] = ()  # any of these; () = any model (or none, if no accelerators)
    queue: str = "default"
    priority: int = 0
    preferred_regions: tuple[str, ...] = ()
    namespace: str = "default"
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    pod_template_json: str = ""
    preemptible: bool = False  # may be stopped and requeued to make room for other work
    min_regions: int = 1  # inference: replicas must span at least this many regions
    user_region: str = ""  # inference: where the users are; with max_latency_ms, a hard bound
    max_latency_ms: int = 0  # 0 = no budget; else only regions this close to user_region
    # The user's own workload object (spec.workload) as JSON; "" = the federator makes a batch/v1 Job
    # (training) or apps/v1 Deployment (inference). replicas, resources and kind are derived from it.
    workload_json: str = ""
    # Replicas that must stay in one cluster together when an inference job spreads (a LeaderWorkerSet
    # group); derived from the workload, 1 otherwise.
    group_size: int = 1
    # Alternatives across vendors, most preferred first; () = resources.accelerator_milli
    # on any of accelerator_models (the one-count form every job file had before vendors).
    accelerators: tuple[AcceleratorAlternative, ...] = ()
    # The most seconds the job may run, over all its attempts (spec.maxRunSeconds); 0 = no limit. The federator
    # enforces it (server/run_limits.py): past it, every placement is cancelled and the job fails.
    max_run_seconds: int = 0
    # The only regions the job's replicas may run in (spec.regions.allowed); () = any. A hard bound, on every path
    # that places (scheduler/residency.py), narrowed further by its queue's allowedRegions.
    allowed_regions: tuple[str, ...] = ()
    # The only member clusters it may run on, by name and by their agents' labels (spec.clusters); the default =
    # any. A hard bound like allowed_regions, ANDed with it (model/cluster_affinity.py, scheduler/cluster_affinity.py).
    clusters: ClusterAffinity = ClusterAffinity()
    # How many times it is placed again after its member reports it Failed (spec.failurePolicy.maxRestarts); the
    # default = none (model/failure_policy.py, server/failure_restarts.py).
    failure_policy: FailurePolicy = FailurePolicy()
    # inference: (region, weight) sorted by region (spec.regions.weights): the replicas split over these regions
    # in proportion, and only there; () = no weights (model/placement_asks.py, scheduler/weights.py).
    region_weights: tuple[tuple[str, int], ...] = ()
    # What decides among the places that fit (spec.prefer): the operator's policy, or the cheapest first
    # (model/placement_asks.py, scheduler/cheapest.py).
    prefer: Preference = Preference.POLICY
    # The roles of a brought workload whose pods ask unequal amounts (model/pod_sets.py), set by the federator at
    # submit from spec.workload, never taken from a client: the gang is fitted, reserved, quota-checked and billed
    # set by set. () = N equal replicas of `resources` (every other job, and every job stored by 0.19.0).
    pod_sets: tuple[PodSetAsk, ...] = ()
    # training: the fewest replicas the gang may start with (spec.minReplicas; a brought PyTorchJob's
    # elasticPolicy.minReplicas plus its other roles' pods, derived by the federator at submit). The scheduler places
    # it in one cluster at the largest count from this to `replicas` that fits now, all or nothing at that count, and
    # it stays at the count placed (model/elastic.py). 0 = not elastic: all `replicas` or nothing.
    min_replicas: int = 0

    @property
    def elastic(self) -> bool:
        """A training gang that may start with fewer than `replicas` (spec.minReplicas below replicas)."""
        return self.kind is JobKind.TRAINING and 0 < self.min_replicas < self.replicas and not self.pod_sets

    @property
    def minimum_named(self) -> str:
        """How a message names an elastic gang's minimum: `spec.minReplicas N` as its user wrote it, or for a brought
        workload `its minimum N, from its PyTorchJob's elasticPolicy.minReplicas` (its Master may count in N), which
        was named as a spec.minReplicas its user never wrote (elasticqa63)."""
        if not self.workload_json:
            return f"spec.minReplicas {self.min_replicas}"
        kind = self.workload_kind.split(".")[0]
        return f"its minimum {self.min_replicas}, from its {kind}'s elasticPolicy.minReplicas"

    @property
    def workload_kind(self) -> str:
        """"Kind.group" of spec.workload ("JobSet.jobset.x-k8s.io"); "" when the federator makes the workload."""
        return workload_kind_of(self.workload_json) if self.workload_json else ""

    def alternatives(self) -> tuple[AcceleratorAlternative, ...]:
        """The ways this job may run, in preference order; () for CPU-only work.

        The legacy form (one count, any of several models) is one alternative per
        model in the order given, or one open alternative, so the scheduler has a
        single path for both forms.
        """
        if self.accelerators:
            return self.accelerators
        milli = self.resources.accelerator_milli
        if not milli:
            return ()
        return _legacy_alternatives(milli, self.accelerator_models)

    @property
    def total(self) -> Resources:
        """What all its replicas ask: each pod set at its own ask when it has them."""
        return pod_sets_total(self.pod_sets) if self.pod_sets else self.resources * self.replicas

    def annotation(self, key: str, default: str = "") -> str:
        return dict(self.annotations).get(key, default)

    @property
    def depends_on(self) -> JobDependency | None:
        """The jobs it waits on (model/dependency.py: kept as an annotation, so stored as the spec is); None when it
        waits on none, or when the annotation does not read (Submit refuses such a spec)."""
        value = self.annotation(DEPENDS_ON_ANNOTATION)
        if not value:
            return None
        dep = parse_dependency(value)
        return dep if isinstance(dep, JobDependency) else None

    @property
    def array(self) -> ArrayTask | None:
        """The array it is a task of (model/array.py: kept as annotations, so stored as the spec is); None for none."""
        return array_of(dict(self.annotations)) if self.annotations else None

    @property
    def recorded_user(self) -> str:
        """The user the federator recorded as the job's owner (USER_ANNOTATION), "" for none (a FederatedJob made
        with kubectl, or an empty annotation): the one reading of it, so `owner`, `security.authz.submitter_of`
        and every filter by owner agree on whose a job is. As `annotation` reads it: the last such key."""
        for key, value in reversed(self.annotations):  # no dict per call: the cycle asks `owner` of every job
            if key == USER_ANNOTATION:
                return value
        return ""

    @property
    def owner(self) -> str:
        """Whom the job belongs to, as one name: "user NAME" for the user the federator recorded
        (`recorded_user`), else "namespace NS" (a FederatedJob made with kubectl: the namespace is the tenant
        there), so that a user and a namespace of one name stay two owners (`security.authz.submitter_of`, built
        from the same `recorded_user`, tells the same two apart). Within a queue the scheduler takes the jobs of
        the owner holding least first (scheduler/owner_share.py)."""
        user = self.recorded_user
        return f"user {user}" if user else f"namespace {self.namespace}"


@lru_cache(maxsize=4096)
def workload_kind_of(workload_json: str) -> str:
    """"Kind.group" ("Job.batch", "JobSet.jobset.x-k8s.io") of a workload object in JSON; "" if unreadable."""
    try:
        obj = json.loads(workload_json)
    except ValueError:
        return ""
    if not isinstance(obj, dict):
        return ""
    api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    return f"{kind}.{group}" if group else kind
@lru_cache(maxsize=4096)
def _legacy_alternatives(milli: int, models: tuple[str, ...]) -> tuple[AcceleratorAlternative, ...]:
    # Cached: every cycle asks this of every candidate job, and few shapes repeat across 100,000 jobs.
    # The form's resource (nvidia.com/gpu) is the default vendor's: the scheduler keeps such a job on its pools
    # (SchedulerConfig.legacy_vendor), and `get jobs -o wide` says "8 x nvidia", not "8 x any accelerator".
    if not models:
        return (AcceleratorAlternative(milli, vendor=DEFAULT_VENDOR),)
    return tuple(AcceleratorAlternative(milli, model=m, vendor=DEFAULT_VENDOR) for m in models)


@dataclass(slots=True)
class Placement:
    """The part of a job bound to one cluster. `generation` is the fencing token."""

    placement_id: PlacementId
    job_id: JobId
    cluster: str
    region: str
    replicas: int
    accelerator_model: str
    generation: int
    phase: JobPhase = JobPhase.PLACED
    message: str = ""
    accelerator_vendor: str = ""
    accelerator_resource: str = ""  # the Kubernetes resource name pods request
    accelerator_milli: int = 0  # per replica, under the chosen alternative
    alternative: int = 0  # index into spec.accelerators (0 when the spec lists none)
    # What one partition of its pool is worth in milli-devices (AcceleratorPool.unit_milli), recorded when placed:
    # on a partition pool (MIG, Ascend vNPU) a replica holds whole partitions at this worth (`held_milli`), which
    # the bill, quotas and fair share count. 0: whole or shared devices, or a placement stored by 0.11.0 or older,
    # which is counted at what it asked (`accelerator_milli`), as then.
    unit_milli: int = 0
    # What its agent last said of it (JobUpdate.replicas_running/replicas_ready), None while not said (an older
    # agent): the count an SRE alerts on, where the message is prose (outside QA F2).
    replicas_running: int | None = None
    replicas_ready: int | None = None
    # (node, replicas there) as its agent last said (JobUpdate.nodes); () while not said. Not stored: the
    # agent's re-sync says it again. Preemption reads it to free one node's worth (scheduler/nodevictims.py).
    nodes: tuple[tuple[str, int], ...] = ()
    # When it reached its final phase (unix seconds, federator clock; 0: not ended, or not known): its agent's
    # JobUpdate.ended_at clamped to [start, when the federator learnt of it] (server/end_times.py), else the latter.
    # The job's finished_at and the usage record's end read it, so an end heard of late is not billed to then.
    ended_at: float = 0.0

    @property
    def running(self) -> int:
        """Replicas running here: as the agent said (at most `replicas`), else all once Running, none before."""
        if self.replicas_running is not None:
            return min(self.replicas, self.replicas_running)
        return self.replicas if self.phase is JobPhase.RUNNING else 0

    @property
    def ready(self) -> int:
        """Of `running`, the replicas ready to serve (the running count where the agent did not say)."""
        return self.running if self.replicas_ready is None else min(self.running, self.replicas_ready)


@dataclass(frozen=True, slots=True)
class JobHold:
    """Who held a Pending job, and when (unix seconds): while a job carries one it is never placed and asks for no
    room (server/job_holds.py). `admin`: an admin held another user's job, and only an admin releases it (as
    Slurm's administrator hold); an owner's hold its owner, a group member with jobs: manage, or an admin releases."""

    by: str
    at: float
    admin: bool = False


@dataclass(slots=True)
class Job:
    """A job as the federator tracks it (mutable server state, persisted by the store)."""

    job_id: JobId
    spec: JobSpec
    submitted_at: float
    phase: JobPhase = JobPhase.PENDING
    pending_reason: Reason | None = None
    placements: list[Placement] = field(default_factory=list)
    placed_at: float = 0.0
    finished_at: float = 0.0
    message: str = ""
    generation: int = 0
    # The early failure this job was placed again after ("acme-east after 4s: <the member's words>"), "" if none:
    # a job is placed again after one early failure only (server/early_failures.py). Stored with the job.
    early_failure: str = ""
    # The run-time clock (server/run_limits.py), both stored so a restart keeps it: when the current attempt was
    # first reported Running (0 while it is not), and the seconds earlier attempts ran before they were stopped and
    # the job queued again (a member lost, a preemption, an early failure): a limit counts all of it.
    started_at: float = 0.0
    ran_seconds: float = 0.0
    # When its current wait for placement began, or its latest one's (0: at submission): a placed job left owing
    # replicas (a scale-up, a part lost or preempted, requeued whole) waits from then, and WAIT counts from it
    # (`waited`), not from submission (outside QA). Stored with the job; placed_at keeps its meaning.
    waiting_since: float = 0.0
    # Held from placement until released (None: not held); only a Pending job is ever held. Stored with the job.
    hold: JobHold | None = None
    # The jobs it still waits on (spec.depends_on, server/dependencies.py): while any, never placed. Not stored: a
    # restart judges it again from the spec and the stored phases of those jobs.
    waiting_on: tuple[JobId, ...] = ()
    # A task of an array past its throttle (server/arrays.py): never placed until let go. Not stored: a restart
    # judges the array again from its tasks' stored phases.
    throttled: bool = False
    # How many times a placement of it ended for a cause not its own success (its cluster Lost, refused or stopped
    # it, its node went silent, preempted, drained, failed early, not started in time) and it was queued to be
    # placed again; the last such end's reason and when (server/restarts.py): `get jobs` RESTARTS, as kubectl's
    # and Slurm's requeue count. Stored with the job (its document; the schema stays 4).
    restarts: int = 0
    last_restart_reason: Reason | None = None
    last_restart_at: float = 0.0
    # The cluster whose member reported the placement ended that the last restart queued the job again for (its
    # failure, early or not), "" when no one member's report was the cause (a Lost cluster, a preemption, a drain)
    # or the restart was stored before 0.20.0: the cluster a restarted federator keeps the job off for what is left
    # of its cool-down (server/restored_cooldowns.py). Stored with the job (its document; the schema stays 4).
    last_restart_cluster: str = ""
    # Of those restarts, the ones after its member reported it Failed: counted toward spec.failurePolicy.maxRestarts
    # (server/failure_restarts.py; JobSet's restartsCountTowardsMax). Stored with the job (the schema stays 4).
    failure_restarts: int = 0
    # An elastic gang's last placement, when it ended under it and above its minimum: the count it waits a while to
    # regain rather than settle for less (model/elastic_left.py, scheduler/elastic_regain.py). Not stored.
    elastic_left: ElasticLeft | None = None

    @property
    def clusters(self) -> list[str]:
        return [p.cluster for p in self.placements]

    @property
    def replicas_waiting(self) -> int:
        """Replicas a Placed or Running job is owed: spec.replicas less its placements' (0 for a job in any other
        phase). More than 0 only after one part of a spread job ended while others run (server/partial.py):
        derived from the placements, so a stored job says it with no field of its own."""
        if not self.phase.is_active:
            return 0
        placed = sum(p.replicas for p in self.placements)
        if self.spec.elastic and placed:  # an elastic gang stays at the count placed (model/elastic.py)
            return 0
        return max(0, self.spec.replicas - placed)

    @property
    def replicas_running(self) -> int:
        """Replicas of a Placed or Running job that run now, over its live placements (0 in any other phase):
        `get jobs -o wide` RUNNING "2/4", FederatedJob status.runningReplicas, federator_replicas_short."""
        if not self.phase.is_active:
            return 0
        return sum(p.running for p in self.placements if p.phase.is_active)

    @property
    def replicas_ready(self) -> int:
        """Of `replicas_running`, those ready to serve (status.readyReplicas)."""
        if not self.phase.is_active:
            return 0
        return sum(p.ready for p in self.placements if p.phase.is_active)


def shortfall(job: Job) -> str:
    """"3 of 4 replicas placed; 1 waiting: CODE: why" for a Placed or Running job short of replicas ("CODE: why"
    for one short of regions only), "" for any other: what its message, `get jobs` and a FederatedJob's status
    say, so a job that serves with fewer replicas (or regions) than asked never looks whole."""
    waiting = job.replicas_waiting
    placed = sum(p.replicas for p in job.placements) if job.phase.is_active else 0
    if job.spec.elastic and 0 < placed < job.spec.replicas:  # model/elastic.py: it stays at the count placed
        held = job.pending_reason  # its queue's quota, not room, chose the count (scheduler/elastic.py quota_held)
        why = f"; {held.message}" if held is not None and held.code is ReasonCode.QUOTA_EXCEEDED else ""
        return (f"elastic: {placed}/{job.spec.replicas} replicas placed ({job.spec.minimum_named}); "
                f"it runs at {placed} until it ends{why}")
    if not waiting:  # placed whole, but in fewer regions than its minRegions asks (scheduler/spread.py): why
        return str(job.pending_reason) if job.pending_reason is not None and job.phase in (
            JobPhase.PLACED, JobPhase.RUNNING) else ""
    why = f": {job.pending_reason}" if job.pending_reason is not None else ""
    return f"{job.spec.replicas - waiting} of {job.spec.replicas} replicas placed; {waiting} waiting{why}"


def run_seconds(job: Job, now: float) -> float:
    """Seconds `job` has run, over all its attempts, as of `now` (its end, once finished): what a
    spec.max_run_seconds is checked against (server/run_limits.py) and `describe` shows."""
    if not job.started_at:
        return job.ran_seconds
    end = job.finished_at if job.finished_at else now
    return job.ran_seconds + max(0.0, end - job.started_at)


def format_job_accelerators(job: Job) -> str:
    """Devices the whole job holds (placed: under the chosen alternative, partitions at their worth,
    `placement_held_milli`) or asks for (pending: each alternative's total, '64|128'); '0' for CPU-only work."""
    if job.placements:
        return format_accelerators(sum(placement_held_milli(p, job.spec) for p in job.placements
                                       if p.accelerator_model))
    if job.spec.pod_sets:  # one model for all its sets: what they ask together
        return format_accelerators(job.spec.total.accelerator_milli) if job.spec.alternatives() else "0"
    totals = dict.fromkeys(format_accelerators(a.milli * job.spec.replicas) for a in job.spec.alternatives())
    return "|".join(totals) or "0"


def waited(job: Job, now: float) -> float:
    """Seconds the job has waited for what it waits for now (Pending, or a placed job owing replicas), counting;
    else the seconds its latest wait took: `federator get jobs`' WAIT (types.proto, Job.waiting_since).

    From its submission, or from when it was last left owing replicas (Job.waiting_since): a service scaled up
    after 16 minutes of running showed WAIT 16m for the replicas it had just asked for (outside QA)."""
    began = job.waiting_since or job.submitted_at
    if job.phase is JobPhase.PENDING or job.replicas_waiting:
        end = now
    elif job.placed_at >= began:
        end = job.placed_at
    elif job.phase.is_terminal:
        end = job.finished_at or now  # it ended while it waited (cancelled, say)
    else:
        end = began  # a wait that ended without a placement: scaled back down before its replicas were placed
    return max(0.0, end - began)


def format_placements(job: Job) -> str:
    """Each placement of a job as `cluster x replicas`, comma-separated ("member-ax2,member-bx2"; "" for none): the
    PLACEMENTS of `federator get jobs -o wide` and of `kubectl get fj -o wide` (status.placementSummary), every part
    of a spread job, where kubectl showed the first placement's id only (outside QA)."""
    return ",".join(f"{p.cluster}x{p.replicas}" for p in job.placements)


def placement_resources(placement: Placement, spec: JobSpec) -> Resources:
    """Per-replica resources of a placement: the job's cpu and memory, and the accelerators of
    the alternative the scheduler chose (a placement from before alternatives carries no
    count: the spec's then)."""
    if placement.accelerator_milli and placement.accelerator_milli != spec.resources.accelerator_milli:
        return replace(spec.resources, accelerator_milli=placement.accelerator_milli)
    return spec.resources


def placement_total(placement: Placement, spec: JobSpec) -> Resources:
    """What all of a placement's replicas ask: each pod set at its own ask for a whole gang of pod sets
    (`JobSpec.pod_sets`), else `placement_resources` times its replicas."""
    if spec.pod_sets and placement.replicas == spec.replicas:
        return spec.total
    return placement_resources(placement, spec) * placement.replicas


def placement_held_milli(placement: Placement, spec: JobSpec) -> int:
    """Milli-devices a placement holds, all its replicas: what the usage bill, the queues' quotas and fair share,
    and a job's ACCELERATORS count. On a partition pool each replica holds whole partitions at their worth
    (`Placement.unit_milli`, `cluster.held_milli`): eight 1g.10gb partitions of an 80 GB GPU asked by name hold 1,
    not 8. Elsewhere, and for a placement stored by 0.11.0 (no worth recorded), what the replicas asked. A gang of
    pod sets (`JobSpec.pod_sets`, placed whole) holds each set's pods at that set's ask."""
    if spec.pod_sets and placement.replicas == spec.replicas:
        return sum(held_milli(p.resources.accelerator_milli, placement.unit_milli) * p.count for p in spec.pod_sets)
    return held_milli(placement_resources(placement, spec).accelerator_milli, placement.unit_milli) * placement.replicas
