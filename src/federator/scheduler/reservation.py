"""Reservations: room gathered on one cluster for a training gang that has waited too long.

Why: a gang needs all its replicas in one cluster at once. While another queue keeps submitting
small jobs, every accelerator that frees is taken by one of them in the next cycle, free room never
adds up, and the gang may wait for ever. Fair-share preemption does not always help: it refuses
to stop the flood when that would leave the gang's queue over the flood's share (`fair_after`).

So once a gang of more than one accelerator (`due`: a one-accelerator job is never starved by its
size) has waited `ReservationPolicy.after_seconds` and fits nowhere now, the cycle picks one cluster for it:
the one where the fewest accelerators must free for it to fit, among those where it could fit at
all (its model, the pool's size, its labels and the other filters a cycle cannot change). From then
on a job of the gang's priority or lower goes to that cluster only if it leaves the gang no further
from fitting there (`worsens`): no more accelerators to wait for in the reserved pool, no fewer of
its replicas fitting now, no less of the CPU and memory it needs. Work of another model (judged by
the cluster's free CPU and memory alone), work on nodes the gang would not use (the histogram says
how many, not which: the what-if binds best fit, as agents do), and work of higher priority still
go there. Kube-batch's starvation design, Volcano's big-job reservation and Slurm's backfill
reservation hold named nodes; the federator sees each pool as a histogram of free accelerators per
node, so what the gang needs is counted, not named.

A reservation keeps its cluster while that cluster could still hold the gang: room gathered on
one cluster is wasted if the next cycle picks another. It ends when the gang is placed (anywhere),
leaves the cycle's requests (cancelled), or its cluster is gone or cannot hold it any more (then
the gang picks again). At most `max_reservations` are kept at once, highest priority then oldest
first, so reservations cannot idle the fleet.

Three bounds keep a reservation from being a way to keep others off a cluster (security finding S3: a
tenant ran one job of its own on a cluster and reserved it for a gang that could never fit there):
- it never waits on its own queue's work (`self_blocked`): a gang takes no room on a pool its own queue's
  running work keeps it from, even were every other queue's work there to end. Such a gang blocks
  itself; only its own queue can free what it waits for, and the reservation would idle the rest for
  nobody. The queue, not the user, is the party: it is what the operator grants (access, weight, quota,
  maxPriority), and in a single-user federator every job has the same user, so a per-user rule would end
  reservations there;
- it ends after `max_hold_seconds` (counted from the gang's first reservation, whatever cluster it moved
  to), and that gang then rests as long before it may reserve room again (`expired`): whatever keeps the gang
  from fitting, the room it kept goes back to everyone at least half the time;
- one per queue first (`choose`): each queue's best-ranked due gang gets a slot before any queue a
  second, so one tenant's gangs, whatever priority they claim, cannot take every slot from another's.

The server keeps the last cycle's reservations in memory and hands them back to the next
(server/reservations.py). They are not stored: after a restart they are chosen again from the jobs'
submission times; their clocks (`since`, `began`, a rest's end) are, by the server, and handed back.

Pure: values in, values out; the same code in the server, the simulator and the benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from federator.model import MILLI, AcceleratorPool, ClusterInfo, JobId, JobKind, JobSpec, Reason, ReasonCode
from federator.scheduler.alternatives import variants
from federator.scheduler.board import fit_key
from federator.scheduler.framework import Allocation, CycleContext, FilterPlugin, PlacementRequest, accepted_pools
from federator.scheduler.plugins import CYCLE_CONSTANT_FILTERS
from federator.scheduler.pod_set_fit import placed_sets, reserve_request
from federator.scheduler.snapshot import Snapshot, reserve
from federator.timestamps import utc_seconds

if TYPE_CHECKING:
    from federator.scheduler.config import SchedulerConfig
    from federator.scheduler.fairshare import QuotaCheck


@dataclass(frozen=True, slots=True)
class ReservationPolicy:
    """When a waiting gang starts to gather room, how many may gather at once (0: never), and how long one
    may keep room before it ends (and its gang rests as long: the bound of what a reservation can idle).

    `max_hold_seconds` defaults to an hour, six times `after_seconds`: room frees as running work ends, and
    a node's work mostly ends within that (bench/starvation.py's gangs, 10-30 minute flood jobs, were placed
    within 59 minutes of their first reservation); a gang still short after it is waiting on work that does not end,
    and the idle room is better given back."""

    after_seconds: float = 600.0
    max_reservations: int = 3
    max_hold_seconds: float = 3600.0

    def __post_init__(self) -> None:
        after = self.after_seconds
        if isinstance(after, bool) or not isinstance(after, int | float) or not 0 <= after < float("inf"):
            raise ValueError(f"reservations.afterSeconds: must be a non-negative number, got {after!r}")
        cap = self.max_reservations
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ValueError(f"reservations.maxReservations: must be a non-negative integer, got {cap!r}")
        hold = self.max_hold_seconds
        if isinstance(hold, bool) or not isinstance(hold, int | float) or not 0 < hold < float("inf"):
            raise ValueError(f"reservations.maxHoldSeconds: must be a positive number of seconds, got {hold!r}")


@dataclass(frozen=True, slots=True)
class Reservation:
    """A gang's reservation of one pool of one cluster, as a cycle began: it needs `needed` accelerators of
    `accelerator_model` there, and `short` of them must still free."""

    job_id: JobId
    cluster: str
    accelerator_model: str
    priority: int
    since: float
    needed: int
    short: int
    began: float | None = None  # its first reservation's start (None: `since`), kept when it moves: maxHoldSeconds

    @property
    def first_reserved(self) -> float:
        return self.since if self.began is None else self.began

    @property
    def held(self) -> int:
        """Free accelerators the gang counts on: what a reservation holds idle (an upper bound, as the
        cycle began: some may be on nodes it would not use)."""
        return self.needed - self.short

    def waiting(self) -> str:
        """What the gang's reason begins with."""
        return (f"waiting for {self.short} of {self.needed} {self.accelerator_model} to free on {self.cluster}, "
                f"held for it since {utc_seconds(self.since)}")

    def kept_off(self, *, same_queue: bool = True) -> str:
        """What a job kept off the reserved room is told, for this cluster: the gang, its wait and its size only to
        a job of the gang's own queue. Another tenant's job is told that a gang of another queue waits, and no more
        (outside QA, M2: the reason named another organisation's job id, its size and how long it had waited)."""
        if not same_queue:
            return f"{self.cluster}: its {self.accelerator_model} are held for a waiting gang of another queue"
        return (f"{self.cluster}: its {self.accelerator_model} are held for gang {self.job_id} "
                f"(waiting since {utc_seconds(self.since)}, {self.short} of {self.needed} still to free)")


@dataclass(frozen=True, slots=True)
class GangReservation:
    """A gang's reservation with the request it was chosen for (the gang's alternative that reserves the room)."""

    reservation: Reservation
    request: PlacementRequest


def due(request: PlacementRequest, policy: ReservationPolicy, now: float) -> bool:
    """Whether a request may have a reservation: a gang of whole accelerators, more than one in all, that has
    waited long enough. A one-accelerator job is never starved by its size (any accelerator that frees fits
    it): it waits for its queue's turn, which a reservation would not change, and it would take a slot."""
    milli = request.accelerator_milli
    return (request.is_gang and milli > 0 and milli % MILLI == 0 and request.replicas * milli >= 2 * MILLI
            and now - request.submitted_at >= policy.after_seconds)


def may_reserve(spec: JobSpec) -> bool:
    """Whether a job could ever have a reservation (`due` but for its wait): the server's cheap test of
    which pending jobs to bring back to a cycle when their wait passes the threshold."""
    return spec.kind is JobKind.TRAINING and not spec.pod_sets and any(
        a.milli % MILLI == 0 and a.milli * spec.replicas >= 2 * MILLI for a in spec.alternatives())


def shortfall(request: PlacementRequest, pool: AcceleratorPool) -> int | None:
    """Accelerators of `pool` that must free before the gang's replicas fit there; None if they would not
    fit even on an empty pool.

    The pool says how many nodes have each count free, and its size: a node holds
    allocatable / nodes (exact when its nodes are alike, as a pool of one model mostly is). A replica
    goes first where it fits now, then to the nodes that need least to free for one more (the ones
    with most free left over), then to empty room; each step's cost is what must free for it."""
    g = request.accelerators_per_replica
    replicas = request.replicas
    nodes = pool.nodes
    if nodes == 0 or g <= 0:
        return None
    size = pool.allocatable_accelerators // nodes
    per = size // g
    if per == 0 or nodes * per < replicas:
        return None
    fit = 0
    costs: dict[int, int] = {}
    for free, n in enumerate(pool.nodes_by_free):
        if not n:
            continue
        have = min(free, size) // g
        fit += n * have
        if have < per:
            first = g - (min(free, size) - have * g)
            costs[first] = costs.get(first, 0) + n
            if per - have > 1:
                costs[g] = costs.get(g, 0) + n * (per - have - 1)
    if fit >= replicas:
        return 0
    left, total = replicas - fit, 0
    for cost in sorted(costs):
        take = min(left, costs[cost])
        total += take * cost
        left -= take
        if not left:
            return total
    return None


def progress(request: PlacementRequest, cluster: ClusterInfo, model: str) -> tuple[int, int, int, int]:
    """How far the gang is from fitting `model`'s pool of `cluster`: accelerators to free, replicas that do
    not fit now, CPU and memory (milli, bytes) short of its replicas' in the cluster; each lower is nearer."""
    pool = cluster.capacity.pool(model)
    replicas = request.replicas
    short, fits = replicas * request.accelerators_per_replica, 0
    if pool is not None:
        fits = min(replicas, request.capacity_in(pool))
        got = 0 if fits >= replicas else shortfall(request, pool)
        short = got if got is not None else short
    res, cap = request.spec.resources, cluster.capacity
    return (short, replicas - fits, max(0, res.cpu_milli * replicas - cap.cpu_milli_free),
            max(0, res.memory_bytes * replicas - cap.memory_bytes_free))


def worsens(gang: GangReservation, request: PlacementRequest, cluster: ClusterInfo,
            memo: dict[JobId, tuple[ClusterInfo, tuple[int, int, int, int]]] | None = None) -> bool:
    """Whether placing `request` on `cluster` leaves the reserving gang further from fitting there.

    A job that accepts the reserved model is tried on that pool (the worst case: the cycle may bind
    it there); one that does not takes only its own pool, and the cluster's CPU and memory. A spread
    job is tried with as many of its replicas as the pool and the cluster hold (the filter sees one, the
    spreading then binds up to that many). A job that does not fit is not this filter's to refuse
    (GangFit and CpuMemoryFit say why). `memo` keeps the gang's progress on the cluster object last asked
    about: a cycle asks again for every shape until the cluster changes."""
    r = gang.reservation
    n = request.replicas if request.is_gang else request.spec.replicas
    res, cap = request.spec.resources, cluster.capacity
    if not request.is_gang:
        if res.cpu_milli:
            n = min(n, cap.cpu_milli_free // res.cpu_milli)
        if res.memory_bytes:
            n = min(n, cap.memory_bytes_free // res.memory_bytes)
    model = ""
    if request.accelerator_milli:
        need = n if request.is_gang else 1
        pools = [p for p in accepted_pools(request, cluster) if request.capacity_in(p) >= need]
        if not pools:
            return False
        pool = next((p for p in pools if p.accelerator_model == r.accelerator_model), pools[0])
        model = pool.accelerator_model
        if not request.is_gang:
            n = min(n, request.capacity_in(pool))
    if n < 1:
        return False
    if model != r.accelerator_model:  # another pool, or none: only the cluster's free CPU and memory move
        g = gang.request.spec.resources
        return (_takes(g.cpu_milli * gang.request.replicas, cap.cpu_milli_free, n * res.cpu_milli)
                or _takes(g.memory_bytes * gang.request.replicas, cap.memory_bytes_free, n * res.memory_bytes))
    try:
        after = reserve_request(cluster, request, model) if placed_sets(request) else \
            reserve(cluster, resources=res, replicas=n, accelerator_model=model)
    except ValueError:
        return False
    kept = memo.get(r.job_id) if memo is not None else None
    if kept is not None and kept[0] is cluster:
        before = kept[1]
    else:
        before = progress(gang.request, cluster, r.accelerator_model)
        if memo is not None:
            memo[r.job_id] = (cluster, before)
    now = progress(gang.request, after, r.accelerator_model)
    return now[0] > before[0] or now[1] > before[1] or now[2] > before[2] or now[3] > before[3]


def _takes(need: int, free: int, taken: int) -> bool:
    """Whether taking `taken` of `free` leaves the gang shorter of its `need` than it was."""
    return taken > 0 and free - taken < need


@dataclass(frozen=True, slots=True)
class ReservedRoom:
    """The filter a cycle with reservations adds: a reserved cluster refuses a job that must respect the
    reservation (`PlacementRequest.respects`) if it would take what the gang needs there."""

    gangs: Mapping[str, tuple[GangReservation, ...]]  # cluster -> the gangs reserving room on it
    name: str = "ReservedRoom"
    memo: dict[JobId, tuple[ClusterInfo, tuple[int, int, int, int]]] = field(default_factory=dict)  # see worsens

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        if not request.respects:
            return None
        for gang in self.gangs.get(cluster.name, ()):
            if gang.reservation.job_id in request.respects and worsens(gang, request, cluster, self.memo):
                return Reason(ReasonCode.RESERVED, gang.reservation.kept_off(
                    same_queue=gang.request.spec.queue == request.spec.queue))
        return None


def respected(request: PlacementRequest, reserved: Sequence[GangReservation]) -> tuple[JobId, ...]:
    """The reservations a request must keep clear of: those of gangs of its priority or higher, and for a
    gang that has one itself only those ranked before its own (`reserved` is in rank order), so that two
    gangs reserving room on one cluster never keep each other off it."""
    p = request.spec.priority
    out: list[JobId] = []
    for h in reserved:
        if h.reservation.job_id == request.job_id:
            break
        if p <= h.reservation.priority:
            out.append(h.reservation.job_id)
    return tuple(out)


Admit = Callable[[PlacementRequest], PlacementRequest | None]
Could = Callable[[PlacementRequest, ClusterInfo], bool]
Own = Callable[[str, str, str], int]  # (queue, cluster, model) -> accelerators that queue's running work holds there


def self_blocked(request: PlacementRequest, pool: AcceleratorPool, own: int) -> bool:
    """Whether the gang could not fit `pool` even were all work there but its own queue's (`own`
    accelerators) to end: what it waits for only its own queue can free, so it may not reserve room there
    (module docstring; finding S3: one job of a tenant's kept the other 15 of 16 H100 idle for its gang)."""
    return own > 0 and pool.allocatable_accelerators - own < request.replicas * request.accelerators_per_replica


def expired(last: Mapping[JobId, Reservation], resting: Mapping[JobId, float], policy: ReservationPolicy,
            now: float) -> dict[JobId, float]:
    """The gangs that may not reserve room this cycle, and until when: those still resting, and those whose
    reservation has lasted `max_hold_seconds`, which end now and rest as long (the room goes back to
    everyone at least half the time, whatever keeps the gang from fitting)."""
    out = {j: until for j, until in resting.items() if until > now}
    for r in last.values():
        if now - r.first_reserved >= policy.max_hold_seconds:
            out[r.job_id] = max(out.get(r.job_id, now), now + policy.max_hold_seconds)
    return out


def choose(requests: Sequence[PlacementRequest], clusters: Sequence[ClusterInfo],
           last: Mapping[JobId, Reservation], policy: ReservationPolicy, *, now: float,
           ways: Callable[[PlacementRequest], Sequence[PlacementRequest]], admit: Admit,
           could: Could, own: Own = lambda queue, cluster, model: 0,
           resting: Mapping[JobId, float] | None = None) -> tuple[GangReservation, ...]:
    """This cycle's reservations: at most `policy.max_reservations`, for the due gangs by priority, then
    submission, each queue's first before any queue's second (one tenant cannot take every slot). A gang keeps
    its cluster while it could still hold it there; else (or new) it takes the cluster, and pool, where the
    fewest accelerators must free, ties by name, among those its own queue's work does not block
    (`self_blocked`); a gang that fits somewhere now takes no slot (it places this cycle), but one that has
    a reservation keeps it until it is placed. A gang in `resting` (`expired`) takes none. `ways`: a request's
    alternatives; `admit`: the request as its queue's quota admits it, or None (no room gathered for a job its
    quota refuses); `could`: whether the cycle-constant filters pass it on a cluster; `own`: the accelerators
    a queue's running work holds on a cluster's pool of a model."""
    if policy.max_reservations <= 0:
        return ()
    waited = now - policy.after_seconds  # the one comparison most requests get: a cycle of none due costs this
    due_now = [r for r in requests if r.submitted_at <= waited and due(r, policy, now)
               and not (resting and resting.get(r.job_id, now) > now)]
    if not due_now:
        return ()
    rank = {r.job_id: (-r.spec.priority, r.submitted_at, r.job_id) for r in due_now}
    due_now.sort(key=lambda r: rank[r.job_id])
    found_none: set[tuple[object, ...]] = set()  # keys (`_nowhere_key`) of new gangs a pick found no room for
    rooms = _Rooms(clusters, _Shared(could))
    out: list[GangReservation] = []
    queues: set[str] = set()
    seconds: list[PlacementRequest] = []  # a queue's further gangs: a slot only once every queue had its first
    for request in due_now:
        if len(out) >= policy.max_reservations:
            break
        if request.spec.queue in queues:
            seconds.append(request)
            continue
        gang = _pick(request, last.get(request.job_id), policy, now=now, ways=ways, admit=admit, own=own,
                     found_none=found_none, rooms=rooms)
        if gang is not None:
            out.append(gang)
            queues.add(request.spec.queue)
    for request in seconds:
        if len(out) >= policy.max_reservations:
            break
        gang = _pick(request, last.get(request.job_id), policy, now=now, ways=ways, admit=admit, own=own,
                     found_none=found_none, rooms=rooms)
        if gang is not None:
            out.append(gang)
    out.sort(key=lambda h: rank[h.reservation.job_id])  # rank order: what `respected` reads
    return tuple(out)


class _Shared:
    """`could`, asked once per fit shape and cluster in a `choose` (soak finding S2): the cycle-constant filters
    read only a request's fit shape and what a cycle never changes (plugins.CYCLE_CONSTANT_FILTERS; the board
    shares its verdicts by the same key), and a national backlog's thousands of due gangs come in few shapes."""

    __slots__ = ("could", "said")

    def __init__(self, could: Could) -> None:
        self.could = could
        self.said: dict[tuple[tuple[object, ...], str], bool] = {}

    def __call__(self, request: PlacementRequest, cluster: ClusterInfo) -> bool:
        key = (fit_key(request), cluster.name)
        got = self.said.get(key)
        if got is None:
            got = self.said[key] = self.could(request, cluster)
        return got


def _nowhere_key(request: PlacementRequest, admitted: Sequence[PlacementRequest | None]) -> tuple[object, ...]:
    """What a new gang's pick (`_pick` with no reservation before) reads of it besides the cycle's clusters: its
    queue (`own`, and the quota `admit` applied) and each admitted alternative's fit shape (the filters, the
    pools it accepts, its replicas and their size: `shortfall`, `self_blocked`), in order. Two gangs of one key
    pick alike, so one that found no room says so of every other (soak finding S2: thousands of due gangs of a
    backlog, most of them with no pool anywhere, each tried on every cluster every cycle)."""
    return (request.spec.queue, tuple(None if a is None else fit_key(a) for a in admitted))


Candidates = list[tuple[tuple[int, str, str], AcceleratorPool]]  # ((short, cluster, model), pool), best first


class _Rooms:
    """Per fit shape, the pools of the cycle's clusters its gangs could reserve, best first (`_pick`'s order: fewest
    accelerators to free, then cluster and model by name; a reservation's own pool comes before all, by `_pick`):
    computed once per fit shape, which is all a gang's pick reads of it but for its queue's own work
    (`self_blocked`)."""

    __slots__ = ("clusters", "could", "kept")

    def __init__(self, clusters: Sequence[ClusterInfo], could: Could) -> None:
        self.clusters = clusters
        self.could = could
        self.kept: dict[tuple[object, ...], Candidates] = {}

    def of(self, admitted: PlacementRequest) -> Candidates:
        key = fit_key(admitted)
        got = self.kept.get(key)
        if got is None:
            got = []
            for cluster in self.clusters:
                if self.could(admitted, cluster):
                    for pool in accepted_pools(admitted, cluster):
                        short = shortfall(admitted, pool)
                        if short is not None:
                            got.append(((short, cluster.name, pool.accelerator_model), pool))
            got.sort(key=lambda c: c[0])  # stable: of equal keys the first found
            self.kept[key] = got
        return got


def _pick(request: PlacementRequest, before: Reservation | None, policy: ReservationPolicy, *, now: float,
          ways: Callable[[PlacementRequest], Sequence[PlacementRequest]], admit: Admit, own: Own,
          found_none: set[tuple[object, ...]], rooms: _Rooms) -> GangReservation | None:
    """One gang's reservation (`choose`), or None. Of its alternatives that its quota admits and that are due, in
    order, each reads its fit shape's reservable pools (`_Rooms`, once a cycle, best first) and offers the first
    its queue's own work does not block (`self_blocked`); a gang that has a reservation offers its reserved pool
    first, while it could still hold the gang there (stickiness: room gathered on one cluster is wasted if the next
    cycle picks another). The best offer is kept, an earlier alternative's on a tie. A new gang whose key
    (`_nowhere_key`) already found no room this cycle is not tried again (soak finding S2: the cost does not grow
    with the due gangs x the clusters)."""
    admitted: list[PlacementRequest | None] = []
    for way in ways(request):
        a = admit(way)
        admitted.append(a if a is not None and due(a, policy, now) else None)
    key = _nowhere_key(request, admitted)
    if before is None and key in found_none:
        return None
    kept = None if before is None else (before.cluster, before.accelerator_model)
    best: tuple[tuple[int, int, str, str], PlacementRequest] | None = None
    queue = request.spec.queue
    for alternative in admitted:
        if alternative is None:
            continue
        candidates = rooms.of(alternative)
        for room, pool in candidates if kept is not None else ():
            if (room[1], room[2]) == kept:  # its reserved pool, sticky: ahead of any other
                if not self_blocked(alternative, pool, own(queue, room[1], room[2])) and (
                        best is None or (0, *room) < best[0]):
                    best = ((0, *room), alternative)
                break
        for room, pool in candidates:
            if best is not None and (1, *room) >= best[0]:
                break  # an equal key of a later alternative does not replace the first
            if not self_blocked(alternative, pool, own(queue, room[1], room[2])):
                best = ((1, *room), alternative)
                break
    if best is None or (before is None and best[0][1] == 0):
        if before is None:
            found_none.add(key)
        return None  # nowhere it could fit; or it fits now, and needs no room gathered (one it has keeps it)
    (_, short, name, model), chosen = best
    since = before.since if before is not None and before.cluster == name else now
    began = before.first_reserved if before is not None else now
    needed = chosen.replicas * chosen.accelerators_per_replica
    return GangReservation(Reservation(request.job_id, name, model, request.spec.priority, since, needed, short,
                                       began), chosen)


def by_cluster(reserved: Sequence[GangReservation]) -> dict[str, tuple[GangReservation, ...]]:
    out: dict[str, tuple[GangReservation, ...]] = {}
    for h in reserved:
        out[h.reservation.cluster] = (*out.get(h.reservation.cluster, ()), h)
    return out


def reserve_room(config: SchedulerConfig, filters: Sequence[FilterPlugin], snapshot: Snapshot,
              requests: Sequence[PlacementRequest], reservations: Sequence[Reservation],
              quota_check: Callable[[PlacementRequest], QuotaCheck], *, now: float, ctx: CycleContext,
              running: Sequence[Allocation] = (), resting: Mapping[JobId, float] | None = None,
              ) -> tuple[tuple[GangReservation, ...], dict[JobId, float]]:
    """The cycle's reserve phase: `choose` with the policy's threshold and cap, the queues' quotas as the
    cycle begins (`QueueUsage.quota_check`), the scheduler's filters that a cycle cannot change, and what
    each queue's `running` work holds; and the gangs resting after it (`expired`), to hand to the next."""
    policy = config.reservations
    if policy.max_reservations <= 0:
        return (), {}
    last = {r.job_id: r for r in reservations}
    rests = expired(last, resting or {}, policy, now)
    constant = [f for f in filters if f.name in CYCLE_CONSTANT_FILTERS]
    used: dict[tuple[str, str, str], int] = {}
    for a in running:
        key = (a.queue, a.cluster, a.accelerator_model)
        used[key] = used.get(key, 0) + a.replicas * math.ceil(a.resources.accelerator_milli / MILLI)

    def admit(request: PlacementRequest) -> PlacementRequest | None:
        check = quota_check(request)
        return None if check.refused is not None else check.admitted(request)

    def could(request: PlacementRequest, cluster: ClusterInfo) -> bool:
        return all(f.filter(request, cluster, ctx) is None for f in constant)

    reserved = choose(requests, snapshot.clusters, last, policy, now=now,
                   ways=lambda r: variants(r, config.legacy_vendor), admit=admit, could=could,
                   own=lambda queue, cluster, model: used.get((queue, cluster, model), 0), resting=rests)
    return reserved, rests


def guarded(filters: Sequence[FilterPlugin], reserved: Sequence[GangReservation]) -> Sequence[FilterPlugin]:
    """The cycle's filters, and `ReservedRoom` when it has reservations: a cycle without any runs the
    filters it ran before, at the cost it had before."""
    return [*filters, ReservedRoom(by_cluster(reserved))] if reserved else filters


def still_reserved(reserved: Sequence[GangReservation], pending: dict[JobId, Reason],
               resting: Mapping[JobId, float] | None = None) -> tuple[Reservation, ...]:
    """After the cycle: the reservations of gangs still waiting, whose reasons now begin with what they wait
    for (`pending` is changed); a gang placed this cycle reserves nothing more. A gang `resting` after its
    reservation ended is told so, and until when (else it would not know why no room gathers for it)."""
    for job_id, until in (resting or {}).items():
        said = pending.get(job_id)
        if said is not None:
            pending[job_id] = Reason(said.code, f"its reservation ended after reservations.maxHoldSeconds; it may "
                                                f"reserve room again from {utc_seconds(until)}; {said.message}")
    out: list[Reservation] = []
    for gang in reserved:
        r = gang.reservation
        said = pending.get(r.job_id)
        if said is not None:
            out.append(r)
            pending[r.job_id] = Reason(said.code, f"{r.waiting()}; {said.message}")
    return tuple(out)


__all__ = ["GangReservation", "Reservation", "ReservationPolicy", "ReservedRoom", "by_cluster", "choose", "due",
           "expired", "guarded", "may_reserve", "progress", "reserve_room", "respected", "self_blocked", "shortfall",
           "still_reserved", "worsens"]
