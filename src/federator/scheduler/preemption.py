"""Preemption: which running work to stop so a more deserving pending job fits.

A pending job may preempt a running job that is marked preemptible and
either has a lower priority (in another queue: only if its priority outranks
what that queue may ask, `SchedulerConfig.outranks`), or has no higher priority
and belongs to a queue over its fair share while the pending job's queue is
under its own (security finding M1: a tenant-chosen priority does not skip the
fair-share rule against another organisation's work). A fair-share
preemption must also leave the shares in order (`fair_after`, as Kueue's
LessThanOrEqualToFinalShare): afterwards the preemptor's queue, with the job
added, holds a weighted dominant share no larger than each victim queue's, with
its victims removed, and each victim queue's share falls. Without that rule two
queues of equal weight preempted each other's preemptible work four times a
second: a gang bigger than its fair share took its queue over, left the other
under, and was taken back. With it the largest weighted share among the queues
touched strictly falls with every fair-share preemption, so none can be undone
by another: no cycle.
Per cluster, victims are taken cheapest first (least lost accelerator-seconds: accelerators
held times time since placed) until the job fits the what-if capacity, then
any victim not needed after all is given back; the cluster with the least
lost accelerator-seconds wins. The cycle caps victims per cycle; the server puts the
victims back to Pending, not lost.

An inference job whose replicas spread (several replicas, or minRegions > 1)
is not squeezed into one cluster: `plan_spread` picks victims anywhere, cheapest
first, until the cycle's own spread planner (minRegions, preferred and user
regions, latency budget) places every replica over the free room plus the
victims' room, then gives back victims not needed. When no such set exists
the job does not preempt, and says why.

A victim is a job on one cluster, or one cluster's part of a job spread over
several (`victim_units`): a training gang needing one cluster's room stopped
every part of a preemptible inference job in every region, when only the part
on that cluster was in its way. The part stopped is re-placed alone (server/
partial.py), and the other parts serve on; a part costs its own accelerator-
seconds, so it is also the cheaper victim.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from federator.model import MILLI, ClusterInfo, JobId, Reason
from federator.scheduler.fairshare import QueueUsage
from federator.scheduler.framework import Allocation, PlacementRequest, allocation_parts
from federator.scheduler.nodevictims import NodeKey, blocked_everywhere, by_pool, node_sets, released_on_nodes
from federator.scheduler.snapshot import Txn, release


@dataclass(frozen=True, slots=True)
class Preemption:
    """A running job to stop and requeue, and who it makes room for."""

    job_id: JobId
    queue: str
    preemptor: JobId
    cluster: str
    message: str
    part: bool = False  # only the job's placements on `cluster` stop: the other parts of a spread job run on


@dataclass(frozen=True, slots=True)
class VictimPlan:
    cluster: str
    victims: tuple[JobId, ...]
    lost_accelerator_seconds: float
    after: ClusterInfo  # the cluster with the victims' resources released (before the preemptor)


def lost_accelerator_seconds(allocs: Sequence[Allocation], now: float) -> float:
    return sum(r.accelerator_milli * n / MILLI * max(0.0, now - a.placed_at) for a in allocs
               for r, n in allocation_parts(a))


def eligible(victim: Allocation, request: PlacementRequest, usage: QueueUsage, active: Sequence[str]) -> bool:
    if not victim.preemptible or victim.job_id == request.job_id:
        return False
    q, vq = request.spec.queue, victim.queue
    if vq == q:
        return victim.priority < request.spec.priority
    if victim.priority > request.spec.priority:
        return False
    if not by_fair_share(victim, request, usage):
        return True
    return (usage.dominant_share(vq) > usage.fair_share(vq, active)
            and usage.dominant_share(q) < usage.fair_share(q, active))


def by_fair_share(victim: Allocation, request: PlacementRequest, usage: QueueUsage) -> bool:
    """Whether `request` may take `victim` (eligible) only under the fair-share rule: another queue's work
    that its priority does not outrank (`SchedulerConfig.outranks`)."""
    p = request.spec.priority
    return victim.queue != request.spec.queue and not (
        victim.priority < p and usage.config.outranks(p, victim.queue))


def fair_after(request: PlacementRequest, placed: Sequence[tuple[int, str]],
               victims: Sequence[Sequence[Allocation]], usage: QueueUsage) -> bool:
    """Whether stopping `victims` for `request` (its replicas `placed` as (replicas, model)) leaves the queues'
    shares in order: for each queue losing work to fair share (a victim in another queue its priority does
    not outrank, `by_fair_share`), the preemptor's queue with the request added and every victim removed
    holds a weighted dominant share at most that queue's with its victims removed, and that queue's share
    falls.

    `eligible` cannot say this: it depends on the request's size and on the set of victims, not only on the
    request's priority and queue (cycle.py keeps `eligible`'s answer per those two). Priority victims (lower
    priority, outranked) are not asked about: they are removed, as they will be, and nothing more."""
    q = request.spec.queue
    losing = {a.queue for allocs in victims for a in allocs if by_fair_share(a, request, usage)}
    if not losing:
        return True
    before = {vq: usage.weighted_share(vq) for vq in losing}
    gone = [a for allocs in victims for a in allocs]
    for a in gone:
        usage.add_allocation(a, sign=-1)
    for replicas, model in placed:
        usage.add(q, request.spec.resources, replicas, model)
    try:
        mine = usage.weighted_share(q)
        return all(mine <= usage.weighted_share(vq) < before[vq] for vq in losing)
    finally:
        for replicas, model in placed:
            usage.add(q, request.spec.resources, replicas, model, sign=-1)
        for a in gone:
            usage.add_allocation(a)


class PlanMemo:
    """What victim plans of one cycle share while the running work and the clusters stay as they are: each
    victim's cost, and each cluster with a set of victims released. The caller empties it when a preemption
    is committed. A backlog asks for a plan for every kind of waiting job, over every cluster."""

    def __init__(self, by_job: Mapping[JobId, Sequence[Allocation]], now: float,
                 used: dict[NodeKey, int] | None = None) -> None:
        self.by_job = by_job
        self.now = now
        self.used = used or {}  # accelerator milli held per node by all running work (nodevictims.node_used)
        self._pools: dict[tuple[str, str], dict[str, int]] | None = None
        self._costs: dict[JobId, float] = {}
        self._freed: dict[tuple[str, tuple[JobId, ...]], ClusterInfo] = {}
        self._on: dict[int, tuple[Sequence[JobId], dict[str, list[JobId]]]] = {}

    def cost(self, job_id: JobId) -> float:
        got = self._costs.get(job_id)
        if got is None:
            got = self._costs[job_id] = lost_accelerator_seconds(self.by_job[job_id], self.now)
        return got

    def freed(self, cluster: ClusterInfo, victims: Sequence[JobId]) -> ClusterInfo:
        """`cluster` with these victims' replicas on it released (`victims` in the order they are released)."""
        key = (cluster.name, tuple(victims))
        got = self._freed.get(key)
        if got is None:
            got = self._freed[key] = released(cluster, victims, self.by_job)
        return got

    def freed_on_nodes(self, cluster: ClusterInfo, victims: Sequence[JobId]) -> ClusterInfo:
        """`cluster` with these victims released onto the nodes they ran on (nodevictims.released_on_nodes)."""
        key = (f"{cluster.name}{PART_MARK}nodes", tuple(victims))
        got = self._freed.get(key)
        if got is None:
            got = self._freed[key] = released_on_nodes(cluster, victims, self.by_job, self.used)
        return got

    def pools(self) -> dict[tuple[str, str], dict[str, int]]:
        """`used` grouped by cluster and model (nodevictims.by_pool), once until `clear`."""
        if self._pools is None:
            self._pools = by_pool(self.used)
        return self._pools

    def on(self, candidates: Sequence[JobId]) -> dict[str, list[JobId]]:
        """`per_cluster(candidates)`, once per list: the cycle keeps one list per priority and queue, and both
        `plan` and `capped` ask. (The list is held, so its id is not reused while the entry lives.)"""
        got = self._on.get(id(candidates))
        if got is None or got[0] is not candidates:
            got = self._on[id(candidates)] = (candidates, per_cluster(candidates, self.by_job))
        return got[1]

    def clear(self) -> None:
        self._costs.clear()
        self._freed.clear()
        self._on.clear()
        self._pools = None


def per_cluster(candidates: Sequence[JobId], by_job: Mapping[JobId, Sequence[Allocation]]) -> dict[str, list[JobId]]:
    """The candidates holding something on each cluster, in the candidates' order."""
    out: dict[str, list[JobId]] = defaultdict(list)
    for job_id in candidates:
        for a in by_job[job_id]:
            on = out[a.cluster]
            if not on or on[-1] != job_id:
                on.append(job_id)
    return out


def plan(
    request: PlacementRequest,
    clusters: Sequence[ClusterInfo],
    by_job: Mapping[JobId, Sequence[Allocation]],
    candidates: Sequence[JobId],
    fits: Callable[[ClusterInfo, Sequence[JobId]], bool],
    *,
    now: float,
    budget: int,
    memo: PlanMemo | None = None,
    fair: Callable[[ClusterInfo, Sequence[JobId]], bool] | None = None,
) -> VictimPlan | None:
    """The cheapest set of at most `budget` victim jobs from `candidates` making `request` fit one cluster.

    `fits(cluster, victims)` is asked of the cluster with the victims' resources released; the victims
    are given too, since stopping a job of the request's own queue also gives back some of its quota.

    Victims are added cheapest first until the job fits. More victims never make less room (nor less
    quota), so a cluster where the first `budget` of them do not make the job fit is passed over with one
    question, not `budget` of them: a backlog asks this of every cluster for each kind of waiting job.
    `memo` keeps costs and released clusters between calls over the same clusters and running work.

    `fair(cluster, victims)` (`fair_after`) is asked of each cluster's chosen victims: more victims from one
    queue lower that queue's share, so it is not monotone like `fits`, and is asked last. A cluster whose
    cheapest sufficient victims break it is passed over, even if another set there might not: refusing is
    the side that cannot cycle."""
    memo = memo or PlanMemo(by_job, now)
    on = memo.on(candidates)
    per_node = request.spec.resources.whole_accelerators if memo.used else 0
    best: VictimPlan | None = None
    for cluster in clusters:
        jobs = sorted(on.get(cluster.name, []), key=lambda j: (memo.cost(j), by_job[j][0].priority, j))
        if not jobs:
            continue
        def freed(chosen: Sequence[JobId], base: ClusterInfo = cluster) -> ClusterInfo:
            return memo.freed(base, chosen)

        def on_nodes(chosen: Sequence[JobId], base: ClusterInfo = cluster) -> ClusterInfo:
            return memo.freed_on_nodes(base, chosen)

        tries: list[tuple[list[JobId], Callable[[Sequence[JobId]], ClusterInfo]]] = []
        most = jobs[:budget]
        if fits(freed(most), most):
            tries.append((most, freed))
        if per_node:  # victims node by node, cheapest node first, until every replica fits (nodevictims.py)
            chosen: list[JobId] = []
            for _cost, _n, _node, there in node_sets(cluster, per_node, jobs, by_job, memo.used, memo.cost,
                                                     budget=budget):
                chosen.extend(j for j in there if j not in chosen)
                if len(chosen) > budget:
                    break
                if fits(on_nodes(chosen), chosen):
                    tries.append((chosen, on_nodes))
                    break
        for order, without in tries:
            found = _fewest(order, without, fits)
            if fair is not None and not fair(without(found), found):
                continue
            cost = sum(memo.cost(j) for j in found)
            if best is None or (cost, len(found), cluster.name) < (best.lost_accelerator_seconds, len(best.victims),
                                                                   best.cluster):
                best = VictimPlan(cluster.name, tuple(found), cost, without(found))
    return best


def _fewest(order: Sequence[JobId], without: Callable[[Sequence[JobId]], ClusterInfo],
            fits: Callable[[ClusterInfo, Sequence[JobId]], bool]) -> list[JobId]:
    """The first of `order` that make the job fit (all of them do), less any victim not needed after all."""
    chosen: list[JobId] = []
    for j in order:
        chosen.append(j)
        if fits(without(chosen), chosen):
            break
    for j in list(reversed(chosen[:-1])):  # give back victims the job does not need after all
        trial = [x for x in chosen if x != j]
        if fits(without(trial), trial):
            chosen = trial
    return chosen


def unfair_note(request: PlacementRequest, queues: set[str]) -> str | None:
    """What to add to the reason of a job `plan` found no victims for because every set that made room broke
    the fair-share rule (`fair_after`) for victims of these queues (None if it did not). Without it a gang
    bigger than its queue's share waited behind preemptible work with a reason that only named capacity."""
    others = sorted(queues - {request.spec.queue})
    if not others:
        return None
    return (f"not preempting: stopping the work in its way would leave queue {request.spec.queue} holding a larger "
            f"share than {'the queue' if len(others) == 1 else f'{len(others)} queues'} of that work (a fair-share "
            "preemption must not; docs/architecture.md)")


def capped(ready: Sequence[ClusterInfo], candidates: Sequence[JobId], by_job: Mapping[JobId, Sequence[Allocation]],
           fits: Callable[[ClusterInfo, Sequence[JobId]], bool], fair: Callable[[ClusterInfo, Sequence[JobId]], bool],
           *, budget: int, cap: int, memo: PlanMemo, per_node: int = 0) -> str | None:
    """What to add to the reason of a job `plan` found no victims for, when more victims than the cycle's cap
    allows would make room on some cluster (None if not): a gang needing more small victims than
    maxVictimsPerCycle waited for ever with a reason that never named the cap (the spread path's said so).
    Or, where the running work names its nodes, when every node that could hold a replica of `per_node`
    accelerators runs work the job may not stop (nodevictims.blocked_everywhere): no cap would help then.

    Or, when stopping every candidate would still not make room anywhere, says so (tenant QA F2: a priority
    job blocked by non-preemptible work read nothing of preemption). On each cluster with more candidates than
    `budget` the fewest cheapest victims
    that make room are found by bisection (more victims never make less room: a few `fits` questions, not
    one per victim), and must keep the shares in order too (`fair`): the reason never promises a preemption
    the fair-share rule would refuse. Where the victims there name their nodes, `plan` tried every node's
    cheapest set within the cap, so the cap is the reason; where they do not, the count is the pessimistic
    estimate's (snapshot.release), and the reason says so (tenant QA F9: it sent the operator to the cap
    while 3 victims on one node would have done)."""
    if blocked_everywhere(ready, per_node, memo.on(candidates), by_job, memo.pools()):
        return ("not preempting: every node that could hold it runs non-preemptible work (or work of a priority "
                "and queue it may not preempt)")
    named = {c.name: c for c in ready}
    helps = False  # whether stopping every candidate on some cluster would make room
    for cluster, on in memo.on(candidates).items():
        target = named.get(cluster)
        if target is None or not fits(memo.freed(target, on), on):
            continue  # all of them first, unsorted: the release estimate hardly depends on their order
        helps = True
        if len(on) <= budget:
            continue  # `plan` tried them all: what refused is the fair-share rule (unfair_note)
        jobs = sorted(on, key=lambda j: (memo.cost(j), by_job[j][0].priority, j))
        lo, hi = budget, len(jobs)  # the first `lo` do not make room (the plan said so), the first `hi` do
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(memo.freed(target, jobs[:mid]), jobs[:mid]):
                hi = mid
            else:
                lo = mid
        if fair(memo.freed(target, jobs[:hi]), jobs[:hi]):
            spent = "" if budget == cap else f", {cap - budget} already stopped this cycle"
            known = all(a.nodes for j in on for a in by_job[j] if a.cluster == cluster)
            why = ("no node frees enough with that few stopped" if known else
                   f"with the {budget} cheapest preemptible jobs stopped, it does not fit by the federator's "
                   f"estimate ({cluster}'s agent does not say which node each runs on: fewer on one node may do)")
            return (f"not preempting: it would take more than maxVictimsPerCycle ({cap}{spent}) preemptible jobs "
                    f"to make room: {why}")
    if not helps and candidates:  # tenant QA F2: a priority job behind non-preemptible work read no note at all
        return (f"not preempting: even with all {len(candidates)} preemptible jobs it may stop gone it would not "
                "fit: the rest of the work in its way is not preemptible, or not its to stop")
    return None


def within_quota(request: PlacementRequest, usage: QueueUsage, by_job: Mapping[JobId, Sequence[Allocation]],
                  victims: Sequence[JobId]) -> PlacementRequest | Reason:
    """`request` as its queue's quota admits it once `victims` stop: with the models whose quota is used up
    blocked (and, for a spread request, its replicas per model capped), or the Reason the quota refuses it.
    Preemption makes room in clusters, never past a quota; a victim of the request's own queue gives its share
    of the quota back (a high-priority job of a queue at its quota may stop that queue's own preemptible
    work), one of another queue gives back none."""
    own = [a for j in victims for a in by_job[j] if a.queue == request.spec.queue]
    for a in own:
        usage.add_allocation(a, sign=-1)
    try:
        check = usage.quota_check(request)
    finally:
        for a in own:
            usage.add_allocation(a)
    return check.refused if check.refused is not None else check.admitted(request)


@dataclass(frozen=True, slots=True)
class SpreadPlan:
    """Victims that let a spread request place every replica; or, if none do, why not."""

    victims: tuple[JobId, ...]
    refused: Reason | None = None


def plan_spread(
    by_job: Mapping[JobId, Sequence[Allocation]],
    candidates: Sequence[JobId],
    spread_without: Callable[[Sequence[JobId]], Reason | None],
    *,
    now: float,
    budget: int,
) -> SpreadPlan:
    """The victims, at most `budget`, cheapest first, after which `spread_without(victims)` (the spread
    planner over the cluster view with those victims released) places the whole request.

    Victims are added cheapest first (least lost accelerator-seconds, then lowest priority) until the spread
    fits, then any victim the spread does not need after all is given back. If it never fits,
    `refused` is the spread planner's reason with every victim the budget allows released.
    """
    order = sorted(candidates, key=lambda j: (lost_accelerator_seconds(by_job[j], now), by_job[j][0].priority, j))
    chosen: list[JobId] = []
    why: Reason | None = None
    for job_id in order[:budget]:
        chosen.append(job_id)
        why = spread_without(chosen)
        if why is None:
            break
    if not chosen or why is not None:
        return SpreadPlan((), why)
    for job_id in list(reversed(chosen[:-1])):  # give back victims the spread does not need after all
        trial = [j for j in chosen if j != job_id]
        if spread_without(trial) is None:
            chosen = trial
    return SpreadPlan(tuple(chosen))


def released(cluster: ClusterInfo, victims: Sequence[JobId], by_job: Mapping[JobId, Sequence[Allocation]]
             ) -> ClusterInfo:
    """The cluster as it would be with these victims' replicas gone from it."""
    for j in victims:
        for a in by_job[j]:
            if a.cluster == cluster.name:
                for resources, pods in allocation_parts(a):  # a gang of pod sets: each set at its ask
                    cluster = release(cluster, resources=resources, replicas=pods,
                                      accelerator_model=a.accelerator_model)
    return cluster


def release_in_attempt(txn: Txn, victims: Sequence[JobId], by_job: Mapping[JobId, Sequence[Allocation]]) -> None:
    """Open an attempt with the victims' resources released (the caller commits or aborts it). A victim's
    part on a cluster outside the snapshot (no capacity report yet) frees nothing the cycle can use."""
    txn.begin()
    known = set(txn.names)
    for j in victims:
        for a in by_job[j]:
            if a.cluster in known:
                cluster = txn.get(a.cluster)
                for resources, pods in allocation_parts(a):  # a gang of pod sets: each set at its ask
                    cluster = release(cluster, resources=resources, replicas=pods,
                                      accelerator_model=a.accelerator_model)
                txn.put(cluster)


PART_MARK = "\x00"
"""Between a job id and a cluster in a part's victim key: no job id holds it (ids are DNS-label-like)."""


def victim_units(by_job: Mapping[JobId, Sequence[Allocation]]) -> dict[JobId, list[Allocation]]:
    """The units a preemption stops, keyed as victims: a job on one cluster whole, and each cluster's part of a
    job on several (a spread job) on its own, keyed `job id PART_MARK cluster`. Everything that reads victims
    reads their allocations, which still carry the job's own id."""
    out: dict[JobId, list[Allocation]] = {}
    for job_id, allocs in by_job.items():
        clusters = sorted({a.cluster for a in allocs})
        if len(clusters) <= 1:
            out[job_id] = list(allocs)
            continue
        for cluster in clusters:
            out[JobId(f"{job_id}{PART_MARK}{cluster}")] = [a for a in allocs if a.cluster == cluster]
    return out


def preemption_of(victim: JobId, allocs: Sequence[Allocation], request: PlacementRequest,
                  cluster: str | None = None) -> Preemption:
    where = cluster or ", ".join(sorted({a.cluster for a in allocs}))
    part = PART_MARK in victim
    what = f"its part on {allocs[0].cluster} preempted" if part else f"preempted on {where}"
    # The victim's owner learns the preemptor only within its own queue (outside QA, M2: another organisation's
    # job id and queue were named); the audit of it is the federator's log.
    whom = (f"{request.job_id} (queue {request.spec.queue}, priority {request.spec.priority})"
            if request.spec.queue == allocs[0].queue else
            f"a job of another queue (priority {request.spec.priority})")
    return Preemption(allocs[0].job_id, allocs[0].queue, request.job_id, cluster or allocs[0].cluster,
                      f"{what} for {whom}", part=part)
