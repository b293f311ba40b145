"""Queue accounting for one cycle: weighted DRF fair share and quotas.

Dominant resource fairness (Ghodsi et al.): a queue's share of each resource
is what it holds over what the fleet has; its *dominant* share is the largest
of those; divided by the queue's weight it orders the queues, lowest first,
so a queue under its fair share goes first. Every accelerator model is a resource of
its own (an H100 is not an A10), next to CPU and memory.

Quotas cap what a queue holds: per accelerator model (as users write models, "H100"
limits every model that name selects, "Ascend910B" every model of that catalog family),
and for CPU and memory. A gang is charged in full against the model it takes; a spread
job, whose replicas may split over the models it accepts, is capped per model instead
(`QuotaCheck.caps`, spent by `pools.QuotaBudget`).

Accelerators are counted at what a replica holds (`model.held_milli`): on a partition
pool (MIG, Ascend vNPU) whole partitions at their worth, so a 1g.10gb partition of an
80 GB GPU asked by name counts 125m, not a whole device, and a 300m replica on a 500m
partition counts 500m. A request is checked before its pool is chosen, so it is charged
what it would hold on the dearest pool of the fleet it accepts; when that does not pass,
the dearest pools are left out of its choice (blocked by model) until what is left does
(`QueueUsage.quota_check`): never past a quota, and a job of small partitions is not
refused for the big ones it might have taken.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from federator.model import (
    MILLI,
    AcceleratorPool,
    JobId,
    NeverRunnable,
    Reason,
    ReasonCode,
    Resources,
    format_bytes,
    held_milli,
    partition_worth,
)
from federator.model.accelerator import accepts_model
from federator.scheduler.alternatives import Assignment
from federator.scheduler.config import SchedulerConfig
from federator.scheduler.framework import Allocation, PlacementRequest, accepts_pool, allocation_parts
from federator.scheduler.owner_share import QueueLine, holdings
from federator.scheduler.parked_line import NO_PARKED, ParkedQueue
from federator.scheduler.pod_set_fit import parts, placed_sets
from federator.scheduler.snapshot import Snapshot

CPU = "cpu"
MEMORY = "memory"


def accelerator_dim(model: str) -> str:
    return f"gpu:{model}"


@dataclass(frozen=True, slots=True)
class QuotaCheck:
    """What a queue's quota admits of one request (`QueueUsage.quota_check`)."""

    blocked: tuple[str, ...] = ()  # quota names whose models the request may not use: no room for one replica
    caps: tuple[tuple[str, int], ...] = ()  # a spread request's (quota name, replicas it has room for)
    notes: tuple[str, ...] = ()  # why, for the reason of a request that then does not place
    refused: Reason | None = None  # the quota leaves no room at all
    # Every accelerator model of the fleet the request accepts is under a quota smaller than what it needs at once
    # (a gang's whole need, one group of a spread job's replicas): it can never run in this queue (`Reason.never`)
    never: bool = False

    def admitted(self, request: PlacementRequest) -> PlacementRequest:
        """`request` with the models it may not use blocked and the replicas per quota capped."""
        if not self.blocked and not self.caps:
            return request
        return replace(request, blocked_models=self.blocked, model_caps=self.caps)


NO_LIMIT = QuotaCheck()


PoolKind = tuple[str, str, str, str, int, str, int]  # what the quota check reads of a pool (`pool_kind`)
FLEET_KINDS_KEPT = 4_096  # FleetPoolsMemo's kinds and clusters beyond a snapshot's: past this all is derived anew


def pool_kind(pool: AcceleratorPool) -> PoolKind:
    """Model, family, vendor, resource, memory per device, sharing and partition worth: all `FleetPools` (and the
    quota check's `accepts_pool` of its pools) read of a pool. Not its free room, which every placement moves."""
    return (pool.accelerator_model, pool.family, pool.vendor, pool.resource_name, pool.memory_mib, pool.sharing,
            pool.unit_milli)


@dataclass(frozen=True, slots=True)
class FleetPools:
    """What fair share and the quota check read of the fleet's pools, whatever any queue holds: derived from the
    fleet alone, so kept from one cycle to the next (`FleetPoolsMemo`), not derived by every cycle's QueueUsage from
    every pool of every cluster (about 1 ms a cycle at 1,000 clusters; 0.07 ms kept). Read-only: cycles share it."""

    families: Mapping[str, str]  # the catalog family of each model a pool reports: a quota on "Ascend910B" counts B3
    fleet_models: Mapping[str, str]  # every model, its family
    # What one partition of each partition pool's model is worth (the most, should two members differ), and one
    # pool of each kind the fleet reports, which the quota check weighs a request against (() when no pool is
    # partitioned: charged as asked).
    units: Mapping[str, int]
    kinds: tuple[AcceleratorPool, ...]

    @classmethod
    def of(cls, pools: Iterable[AcceleratorPool]) -> FleetPools:
        """From every pool of every cluster, in the snapshot's order."""
        families: dict[str, str] = {}
        fleet_models: dict[str, str] = {}
        units: dict[str, int] = {}
        kinds: dict[PoolKind, AcceleratorPool] = {}
        for p in pools:
            if p.family:
                families[p.accelerator_model] = p.family
            fleet_models[p.accelerator_model] = p.family
            if worth := partition_worth(p):
                units[p.accelerator_model] = max(worth, units.get(p.accelerator_model, 0))
            kinds.setdefault(pool_kind(p), p)
        return cls(families, fleet_models, units, tuple(kinds.values()) if units else ())


class FleetPoolsMemo:
    """`FleetPools` of each snapshot, kept from one cycle to the next (the scheduler holds one): a cluster's pools
    are read again only when they are not the very ones (the same tuple) it had, and the maps built again only when
    some cluster's kinds (`pool_kind`) are not the ones they were, or the clusters are not. Between two cycles most
    members' pools are the ones they reported before; a report or a placement of this federator's makes new ones,
    whose kinds are mostly as they were. Safe when two threads share it: at worst both derive the same maps."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[AcceleratorPool, ...], tuple[PoolKind, ...]]] = {}
        self._pool_of: dict[PoolKind, AcceleratorPool] = {}  # one pool of each kind seen (all `FleetPools` reads)
        self._last: tuple[tuple[tuple[PoolKind, ...], ...], FleetPools] | None = None

    def __call__(self, snapshot: Snapshot) -> FleetPools:
        clusters = snapshot.clusters
        if len(self._seen) + len(self._pool_of) > len(clusters) + FLEET_KINDS_KEPT:  # members gone, kinds changed
            self._seen, self._pool_of, self._last = {}, {}, None
        seen, pool_of, last = self._seen, self._pool_of, self._last
        sigs: list[tuple[PoolKind, ...]] = []
        for c in clusters:
            pools = c.capacity.accelerator_pools
            got = seen.get(c.name)
            if got is None or got[0] is not pools:
                sig = tuple([pool_kind(p) for p in pools])
                if got is not None and got[1] == sig:
                    sig = got[1]  # the same kinds: the same object, which the comparison below passes at once
                else:
                    for i, kind in enumerate(sig):
                        pool_of.setdefault(kind, pools[i])
                got = seen[c.name] = (pools, sig)
            sigs.append(got[1])
        key = tuple(sigs)
        if last is not None and last[0] == key:
            return last[1]
        fleet = FleetPools.of(pool_of[kind] for sig in key for kind in sig)  # a pool of each: all `of` reads
        self._last = (key, fleet)
        return fleet


class QueueUsage:
    """What each queue holds (milli-devices per model, CPU, memory) and its weighted dominant share."""

    def __init__(self, config: SchedulerConfig, snapshot: Snapshot, allocations: Iterable[Allocation], *,
                 fleet: FleetPools | None = None) -> None:
        """`fleet`: the snapshot's `FleetPools` (the scheduler's memo keeps them across cycles); None: derived here."""
        self.config = config
        self.totals: dict[str, int] = defaultdict(int)
        if fleet is None:
            fleet = FleetPools.of(p for c in snapshot.clusters for p in c.capacity.accelerator_pools)
        self.families, self.fleet_models, self.units, self.kinds = (fleet.families, fleet.fleet_models, fleet.units,
                                                                    fleet.kinds)
        self._worths: dict[tuple[object, ...], dict[str, int]] = {}
        for c in snapshot.ready():
            cap = c.capacity
            self.totals[CPU] += cap.cpu_milli_allocatable
            self.totals[MEMORY] += cap.memory_bytes_allocatable
            for p in cap.accelerator_pools:  # whole-device equivalents, as `add` counts what is held
                self.totals[accelerator_dim(p.accelerator_model)] += p.accelerator_milli_of(p.allocatable_accelerators)
        self.used: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for a in allocations:
            self.add_allocation(a)

    def add_allocation(self, a: Allocation, sign: int = 1) -> None:
        """Count a hold (sign -1: uncount it): each pod set at its own ask for a gang of pod sets."""
        for resources, pods in allocation_parts(a):
            self.add(a.queue, resources, pods, a.accelerator_model, sign, unit_milli=a.unit_milli)

    def add(self, queue: str, resources: Resources, replicas: int, accelerator_model: str, sign: int = 1, *,
            unit_milli: int = 0) -> None:
        """Count `replicas` replicas of `resources` bound to `accelerator_model` (sign -1: uncount them). Their
        accelerators at what they hold (`model.held_milli`): on a partition pool whole partitions of `unit_milli`
        (0: the fleet's pool of that model says, a placement of 0.11.0 having none recorded)."""
        used = self.used[queue]
        used[CPU] += sign * resources.cpu_milli * replicas
        used[MEMORY] += sign * resources.memory_bytes * replicas
        if resources.accelerator_milli and accelerator_model:
            worth = held_milli(resources.accelerator_milli, unit_milli or self.units.get(accelerator_model, 0))
            used[accelerator_dim(accelerator_model)] += sign * worth * replicas

    def dominant_share(self, queue: str) -> float:
        used = self.used.get(queue)
        if not used:
            return 0.0
        return max((v / self.totals[d] for d, v in used.items() if self.totals.get(d)), default=0.0)

    def weighted_share(self, queue: str) -> float:
        return self.dominant_share(queue) / self.config.queue(queue).weight

    def fair_share(self, queue: str, active: Iterable[str]) -> float:
        """The dominant share `queue` is entitled to among the queues that want resources."""
        total = sum(self.config.queue(q).weight for q in set(active) | {queue})
        return self.config.queue(queue).weight / total if total else 1.0

    def quota_check(self, request: PlacementRequest) -> QuotaCheck:
        """What the queue's quota admits of `request`: the accelerator model names it may not use (their quota is
        used up), for a spread request the replicas each other quota still has room for, notes saying why, and a
        Reason if the quota leaves no room at all (CPU or memory; or, for a spread request, no split of its
        replicas over the models it accepts that fits every per-model quota).

        A gang takes one model, so its whole need is charged against each quota it may use. A spread request's
        replicas may split over models: a quota short of its whole need caps the replicas on its models
        (`PlacementRequest.model_caps`) instead of blocking them (audit F3).

        A replica is charged what it would hold (`model.held_milli`) on the dearest pool of the fleet it accepts
        (a 1g.10gb partition asked by name: 125m). If that does not pass (something blocked, capped or refused),
        the pools dearer than the next worth down are blocked and it is charged that, and so on: the first worth
        that passes whole is the check; if none does, the cheapest's. Whatever pool it then takes, it holds no
        more than it was charged."""
        queue = request.spec.queue
        quota = self.config.queue(queue).quota
        used = self.used.get(queue, {})
        need = _need(request)
        if quota.cpu_milli is not None and used.get(CPU, 0) + need.cpu_milli > quota.cpu_milli:
            return QuotaCheck(refused=Reason(
                ReasonCode.QUOTA_EXCEEDED, f"quota of queue {queue} on cpu: {quota.cpu_milli / MILLI:g}, "
                f"{TOO_FEW_LEFT}: the job needs {need.cpu_milli / MILLI:g}"
                f"{_never(need.cpu_milli > quota.cpu_milli)}", never=_over_all(need.cpu_milli > quota.cpu_milli)))
        if quota.memory_bytes is not None and used.get(MEMORY, 0) + need.memory_bytes > quota.memory_bytes:
            return QuotaCheck(refused=Reason(
                ReasonCode.QUOTA_EXCEEDED, f"quota of queue {queue} on memory: {format_bytes(quota.memory_bytes)}, "
                f"{TOO_FEW_LEFT}: the job needs {format_bytes(need.memory_bytes)}"
                f"{_never(need.memory_bytes > quota.memory_bytes)}",
                never=_over_all(need.memory_bytes > quota.memory_bytes)))
        if not (need.accelerator_milli and quota.accelerator_milli):
            return NO_LIMIT
        worths = self.worths(request)
        if not worths:  # no partition pool it may take: charged what it asks
            return self._accelerator_check(request, quota.accelerator_milli, used, request.accelerator_milli, ())
        check = NO_LIMIT
        for charge in sorted(set(worths.values()), reverse=True):
            dearer = tuple(sorted(m for m, w in worths.items() if w > charge))
            check = self._accelerator_check(request, quota.accelerator_milli, used, charge, dearer)
            if check.refused is None and not check.caps and set(check.blocked) == set(dearer):
                break  # passes whole on the pools left
        return check

    def worths(self, request: PlacementRequest) -> dict[str, int]:
        """What one replica of `request` would hold (`model.held_milli`) on each model of the fleet it accepts,
        when the fleet has partition pools ({} when it has none: charged as asked). Every pool of one model name
        is taken to be worth the same; should members differ, the most."""
        if not self.kinds or not request.accelerator_milli:
            return {}
        key = (request.spec.accelerator_models, request.accelerator_milli, request.vendor, request.resource_name,
               request.min_memory_mib)
        got = self._worths.get(key)
        if got is None:
            got = {}
            for pool in self.kinds:
                if accepts_pool(request, pool):
                    w = held_milli(request.accelerator_milli, partition_worth(pool))
                    got[pool.accelerator_model] = max(w, got.get(pool.accelerator_model, 0))
            self._worths[key] = got
        return got

    def _accelerator_check(self, request: PlacementRequest, limits: Mapping[str, int], used: Mapping[str, int],
                           charge: int, dearer: tuple[str, ...]) -> QuotaCheck:
        """The accelerator part of `quota_check` against the queue's `limits` (quota name -> milli-devices) and what
        it holds (`used`), each replica charged `charge` milli-devices, the models `dearer` (worth more) blocked."""
        queue = request.spec.queue
        need = charge * request.replicas
        if placed_sets(request):  # each pod set's whole devices at the worth `charge` gives the largest's
            need = charge * _need(request).accelerator_milli // request.accelerator_milli
        blocked: list[str] = list(dearer)
        too_small: list[str] = []  # quotas smaller than what the request needs at once: never enough
        caps: list[tuple[str, int]] = []
        left: dict[str, int] = {}  # milli-devices each quota short of the whole need has left
        notes: list[str] = []
        if dearer:
            notes.append(f"quota of queue {queue}: partitions worth more than {charge / MILLI:g} a replica left out "
                         f"({', '.join(dearer)})")
        g = max(1, request.spec.group_size)
        per_group = 0 if request.is_gang else charge * g
        for key, limit in limits.items():
            held = sum(v for d, v in used.items()
                       if d.startswith("gpu:") and accepts_model(key, d[4:], self.families.get(d[4:], "")))
            if held + need <= limit:
                continue
            left[key] = max(0, limit - held)
            if (per_group or need) > limit:
                too_small.append(key)
            room = left[key] // per_group * g if per_group else 0  # replicas, in whole groups
            if not room:
                blocked.append(key)
            if not self._may_use(request, key):
                continue  # neither capped nor said: the job could not use that quota's models anyway
            if room:
                caps.append((key, room))
            notes.append(f"quota of queue {queue} on {key}: " + (
                f"{held / MILLI:g} of {limit / MILLI:g} accelerators in use, room for {room} of its "
                f"{request.replicas} replicas" if room else
                f"{limit / MILLI:g} accelerators, {TOO_FEW_LEFT}: the job needs {need / MILLI:g}"
                f"{_never(need > limit)}"))
        if caps:
            most = self._most_replicas(request, caps, blocked)
            if most is not None and most < request.replicas:
                named = ", ".join(f"{k} {v / MILLI:g} left" for k, v in left.items() if self._may_use(request, k))
                return QuotaCheck(refused=Reason(
                    ReasonCode.QUOTA_EXCEEDED, f"queue {queue}'s quota leaves room for {most} of {request.replicas} "
                    f"replicas: {named}"))
        return QuotaCheck(tuple(blocked), tuple(caps), tuple(notes), never=self._never_fits(request, too_small))

    def _never_fits(self, request: PlacementRequest, too_small: Sequence[str]) -> bool:
        """Whether every model of the fleet the request accepts is under one of the quotas `too_small`. A fleet
        that reports no such model gives False: the filters say what is missing, and a member may bring it."""
        if not too_small:
            return False
        wanted = request.spec.accelerator_models
        accepted = [(m, f) for m, f in self.fleet_models.items()
                    if not wanted or any(accepts_model(w, m, f) for w in wanted)]
        return bool(accepted) and all(any(accepts_model(k, m, f) for k in too_small) for m, f in accepted)

    def _most_replicas(self, request: PlacementRequest, caps: Sequence[tuple[str, int]],
                       blocked: Sequence[str]) -> int | None:
        """The most replicas of a spread request the caps let it bind over the fleet's models it accepts (None:
        some such model no cap limits). A replica on a model spends every cap naming it (a family's and its
        model's); quota names nest (a family holds its models), so filling each model in turn finds the most.
        None too when the fleet reports no model the job accepts: the filters say what is missing."""
        wanted = request.spec.accelerator_models
        left = dict(caps)
        total, seen = 0, False
        for model, family in self.fleet_models.items():
            if wanted and not any(accepts_model(w, model, family) for w in wanted):
                continue
            if any(accepts_model(b, model, family) for b in blocked):
                continue
            seen = True
            keys = [k for k in left if accepts_model(k, model, family)]
            if not keys:
                return None
            take = min(left[k] for k in keys)
            for k in keys:
                left[k] -= take
            total += take
        return total if seen else None

    def _may_use(self, request: PlacementRequest, key: str) -> bool:
        """Whether a quota `key` covers a model of the fleet the request accepts. An A100-only job's reason led
        with the full H100 quota, and the REASON column showed only that (fairness audit F4). A fleet that
        reports no such model leaves the note in: it may be what is missing."""
        wanted = request.spec.accelerator_models
        if not wanted:
            return True
        covered = [(m, f) for m, f in self.fleet_models.items() if accepts_model(key, m, f)]
        return not covered or any(accepts_model(w, m, f) for m, f in covered for w in wanted)


class FairOrder:
    """Hands out pending requests: the queue with the lowest weighted dominant share first, and within a queue by
    priority, then the owner's share (scheduler/owner_share.py), then submission time.

    After each attempt the caller says whether it placed (`placed`; usage changed) or waits in line (`waits`);
    the queue goes back with its new share. O(log queues + log owners) per request.
    """

    def __init__(self, usage: QueueUsage, requests: Sequence[PlacementRequest],
                 running: Iterable[Allocation] = (), parked: Mapping[str, ParkedQueue] | None = None) -> None:
        self.usage = usage
        by_queue: dict[str, list[PlacementRequest]] = defaultdict(list)
        for r in requests:
            by_queue[r.spec.queue].append(r)
        held = holdings(running)
        parked = parked or {}  # each queue's parked jobs in line (parked_line.py): a reason counts them too
        self._queues = {q: QueueLine(q, rs, held[q], by_share=usage.config.queue(q).owner_share,
                                     parked=parked.get(q, NO_PARKED))
                        for q, rs in by_queue.items()}
        self._heap = [(usage.weighted_share(q), q) for q in self._queues]
        heapq.heapify(self._heap)
        self._notes: dict[JobId, str] = {}  # what a waiting job's reason adds: the jobs that go before its owner's

    @property
    def queues(self) -> list[str]:
        return list(self._queues)

    def __iter__(self) -> Iterator[PlacementRequest]:
        while self._heap:
            _, queue = heapq.heappop(self._heap)
            line = self._queues[queue]
            yield line.take()
            if line:
                heapq.heappush(self._heap, (self.usage.weighted_share(queue), queue))

    def placed(self, request: PlacementRequest, assignments: Sequence[Assignment]) -> None:
        """The request just handed out was placed: its owner holds more."""
        self._queues[request.spec.queue].placed(request, assignments)

    def waits(self, request: PlacementRequest) -> None:
        """The request just handed out waits for room or quota: it counts as in line before those after it."""
        if note := self._queues[request.spec.queue].waits(request):
            self._notes[request.job_id] = note

    def explain(self, pending: dict[JobId, Reason]) -> None:
        """Add to each waiting job's reason the jobs of its queue that go before its owner's (outside QA, HPC H1:
        a job behind 9,991 others read as if only capacity were short). A job the preempt phase placed is no longer
        pending, and told nothing; the counts of those after it still include it (a few a cycle at most)."""
        for job_id, note in self._notes.items():
            said = pending.get(job_id)
            if said is not None:
                pending[job_id] = replace(said, message=f"{said.message}; {note}")


def _need(request: PlacementRequest) -> Resources:
    """What all of `request` asks: each pod set at its own ask for a gang of pod sets (pod_set_fit.py)."""
    total = Resources()
    for resources, pods in parts(request, request.replicas):
        total = total + resources * pods
    return total


TOO_FEW_LEFT = "too few left"
"""What a quota reason says of the quota's room: not what the queue holds of it, which moves with each job of the
queue that starts or ends and would reword (and in Kubernetes mode PATCH) every waiting job of the queue each time
(kubescaleqa62 H1, M2); `federator get queues` shows what it holds, on demand."""


def _never(more_than_the_quota: bool) -> str:
    """What a quota reason adds when the job alone needs more than the whole quota: it waits for ever otherwise,
    read as a busy queue ("64 accelerators, too few left: the job needs 128"; outside QA, new user F3)."""
    return (", more than the whole quota: it can never run in this queue (cancel it and "
            "submit a smaller one, or ask for a larger quota)"
            if more_than_the_quota else "")


def _over_all(more_than_the_quota: bool) -> NeverRunnable | None:
    """`Reason.never` of a quota refusal."""
    return NeverRunnable.QUOTA if more_than_the_quota else None
