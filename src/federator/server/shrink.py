"""Scaling a serving job down in place: which parts shrink, which go, and the Resize orders that say so.

Why: a part (placement) of a spread inference job was fixed at launch, so scaling a job down could only drop
whole parts (server/scaling.py, `parts_to_drop`): a job of one part of 6 replicas scaled to 4 had that part
cancelled and a new part of 4 placed, and every replica stopped until the new part ran. A serving user expects
what a Deployment does: 6 -> 4 stops 2 replicas and the other 4 serve on.

An agent whose Hello lists the "resize" feature (agent.proto, Hello.features and Resize) shrinks a placement in
place: the placement keeps its id and generation, and the agent stops only the replicas it no longer runs. So
parts on such clusters are *elastic* when a job scales down (`plan_down`): they may keep any count from 1 to
what they hold. Parts on other clusters (older and third-party agents) are what they were: kept whole or
dropped whole, then replaced, exactly as before.

The plan keeps as many replicas as the new count allows, Running ones before those still starting, then the ones
nearest the users (in the job's preferred regions, then in its users' region, then nearer by the policy's
latencies: server/nearness.py), so the farthest and non-preferred parts shrink or stop first; then as many
regions, then the fewest parts touched, then the oldest; and it keeps minRegions reachable (the kept regions
plus one per replica still owed). Moving replicas back near the users later (a far part kept because the near
one could not shrink, or one that failed over) is server/rebalancing.py's: it places the near ones first, then
takes the surplus with this same plan. With every part elastic
nothing is ever owed: the job shrinks with no new placement at all.

A job with spec.regions.weights is planned region by region instead: each region keeps at most its share of the
new count (scheduler/weights.py, the split its placement made), so 6 in east and 2 in west at 3:1 scaled to 4
keep 3 and 1, as Karmada's split of 4 says; a region holding less than its share keeps what it has, and no
replica moves between regions (`_weighted`). Its parts on agents that cannot resize are planned this way too.

Durable first (server/scaling.py, `scale`): the new counts are stored with the new spec before any agent hears
of them; from then on the federator books the smaller count (reservations and usage read `Placement.replicas`).
The Resize is sent after the write (`Federator.send`; one for an agent away is owed, Orphans.unsent, and sent
at its re-sync); a restart before it reaches the agent converges at the agent's re-sync,
which sends a Resize with the stored count for every inference placement the cluster holds (`resync_orders`).
Every Resize is owed until the agent answers it or that re-sync settles it (`owe`), kept with the member across a
restart of the federator (store/members.py), so an agent back without the feature has those parts replaced. An
agent that answers a Resize Ack ok=false (it could not shrink that placement) has its part replaced, as an agent
without the feature would (`refused`), without keeping the job off its cluster.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING

from federator.model import ClusterState, Job, JobId, JobKind, JobPhase, Placement, Reason, ReasonCode
from federator.scheduler.weights import shares
from federator.server.nearness import ANYWHERE, Nearness
from federator.server.orders import ResizeOrder

if TYPE_CHECKING:
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator

EXACT_PARTS = 12  # up to this many parts every set is tried (as server/scaling.py); past it, a greedy choice


@dataclass(frozen=True, slots=True)
class DownPlan:
    """What a scale-down does to a job's parts: those dropped whole, and those kept at a smaller count."""

    dropped: tuple[Placement, ...] = ()
    shrunk: Mapping[str, int] = field(default_factory=dict)  # placement id -> its new replica count

    def __bool__(self) -> bool:
        return bool(self.dropped or self.shrunk)


def plan_down(placements: Sequence[Placement], replicas: int, min_regions: int, elastic: Collection[str],
              near: Nearness = ANYWHERE, *, weights: tuple[tuple[str, int], ...] = (), group: int = 1) -> DownPlan:
    """The parts to drop and to shrink so that the placements hold no more than `replicas`. A part whose id is in
    `elastic` may keep any count from 1 to what it holds; the others are kept whole or dropped. The order of what
    is kept is the module's (nearness by `near`, server/nearness.py). With `weights` (the job's
    spec.regions.weights, in groups of `group`), each region keeps no more than its share of `replicas`
    (`_weighted`). Pure."""
    if weights:
        return _weighted(placements, replicas, elastic, near, weights, group)
    if sum(p.replicas for p in placements) <= replicas:
        return DownPlan()
    exact = len(placements) <= EXACT_PARTS
    kept = _best(placements, replicas, min_regions, elastic, near) if exact else \
        _greedy(placements, replicas, min_regions, elastic, near)
    counts = dict(kept)
    return DownPlan(dropped=tuple(p for p in placements if p.placement_id not in counts),
                    shrunk={p.placement_id: n for p in placements
                            if (n := counts.get(p.placement_id, p.replicas)) < p.replicas})


_Kept = tuple[tuple[str, int], ...]  # (placement id, the count it keeps)


def _weighted(placements: Sequence[Placement], replicas: int, elastic: Collection[str], near: Nearness,
              weights: tuple[tuple[str, int], ...], group: int) -> DownPlan:
    """A weighted job's scale-down: each region keeps at most its share of the new count (scheduler/weights.py
    `shares`, the rule its placement splits by), chosen within the region as any scale-down chooses; a region
    holding less keeps what it has and is owed the rest there. Without this the plan kept what the usual rule
    liked best (the fewest parts touched, the most regions), so 6 east and 2 west scaled to 4 kept 2 and 2, not
    3 and 1, until the next scale-up. A replica is never moved: a region over its share only loses replicas, and
    one whose part cannot shrink in place (not `elastic`) loses that part whole, its share placed again there."""
    share = shares(replicas, weights, group=group)
    gone: set[str] = set()
    shrunk: dict[str, int] = {}
    for region in sorted({p.region for p in placements}):
        plan = plan_down([p for p in placements if p.region == region], share.get(region, 0), 0, elastic, near)
        gone.update(p.placement_id for p in plan.dropped)
        shrunk.update(plan.shrunk)
    return DownPlan(dropped=tuple(p for p in placements if p.placement_id in gone), shrunk=shrunk)


def _first(p: Placement, near: Nearness) -> tuple[bool, tuple[bool, bool, int], int, int]:
    """Which elastic part keeps its replicas first: Running, then the nearest, then the biggest, then the
    oldest."""
    return p.phase is not JobPhase.RUNNING, near.rank(p.region), -p.replicas, p.generation


def _allot(parts: Sequence[Placement], replicas: int, min_regions: int, elastic: Collection[str],
           near: Nearness) -> _Kept | None:
    """The counts `parts` keep together within `replicas`, less one replica owed for each region minRegions still
    lacks: the fixed ones whole, each elastic one at least 1 and the room left going to them in `_first` order;
    None when they cannot all be kept."""
    flex = sorted((p for p in parts if p.placement_id in elastic), key=lambda p: _first(p, near))
    owed = max(0, min_regions - len({p.region for p in parts}))
    room = replicas - owed - sum(p.replicas for p in parts if p.placement_id not in elastic) - len(flex)
    if room < 0:
        return None
    out = [(p.placement_id, p.replicas) for p in parts if p.placement_id not in elastic]
    for p in flex:
        extra = min(p.replicas - 1, room)
        room -= extra
        out.append((p.placement_id, 1 + extra))
    return tuple(out)


def _worth(parts: Sequence[Placement], kept: _Kept, replicas: int, min_regions: int,
           near: Nearness) -> tuple[int, ...] | None:
    """How good keeping `kept` is (greater is better), or None when minRegions would be out of reach."""
    by_id: dict[str, Placement] = {p.placement_id: p for p in parts}
    held = sum(n for _, n in kept)
    regions = len({by_id[pid].region for pid, _ in kept})
    if held > replicas or regions + (replicas - held) < min_regions:
        return None
    running = sum(n for pid, n in kept if by_id[pid].phase is JobPhase.RUNNING)
    touched = sum(1 for pid, n in kept if n < by_id[pid].replicas) + len(parts) - len(kept)
    nearest = near.worth((by_id[pid].region, n) for pid, n in kept)
    return held, running, *nearest, regions, -touched, -sum(by_id[pid].generation for pid, _ in kept)


def _best(parts: Sequence[Placement], replicas: int, min_regions: int, elastic: Collection[str],
          near: Nearness) -> _Kept:
    best: _Kept = ()  # keeping nothing always reaches minRegions: replicas >= minRegions
    best_worth = _worth(parts, best, replicas, min_regions, near)
    for size in range(1, len(parts) + 1):
        for chosen in combinations(parts, size):
            kept = _allot(chosen, replicas, min_regions, elastic, near)
            if kept is None:
                continue
            worth = _worth(parts, kept, replicas, min_regions, near)
            if worth is not None and (best_worth is None or worth > best_worth):
                best, best_worth = kept, worth
    return best


def greedy_order(parts: Sequence[Placement], near: Nearness) -> list[Placement]:
    """The order a job of many parts is kept in, past EXACT_PARTS: Running parts first, then the nearest (`near`),
    then the first part of each region before the others (so that more regions are kept), then the biggest and
    the oldest. Shared with server/scaling.py (`parts_to_drop`)."""
    order = sorted(parts, key=lambda p: _first(p, near))
    firsts = {p.region: p for p in reversed(order)}
    return sorted(order, key=lambda p: (p.phase is not JobPhase.RUNNING, near.rank(p.region),
                                        firsts[p.region] is not p))


def _greedy(parts: Sequence[Placement], replicas: int, min_regions: int, elastic: Collection[str],
            near: Nearness) -> _Kept:
    """In `greedy_order`, each part kept (an elastic one at what room is left) only if the count and minRegions
    stay within reach with it."""
    kept: _Kept = ()
    by_id: dict[str, Placement] = {p.placement_id: p for p in parts}
    for p in greedy_order(parts, near):
        regions = {by_id[pid].region for pid, _ in kept} | {p.region}
        room = replicas - sum(n for _, n in kept) - max(0, min_regions - len(regions))
        n = min(p.replicas, room) if p.placement_id in elastic else p.replicas
        if n >= 1 and _worth(parts, (*kept, (p.placement_id, n)), replicas, min_regions, near) is not None:
            kept = (*kept, (p.placement_id, n))
    return kept


def elastic_parts(fed: Federator, job: Job) -> frozenset[str]:
    """The live parts of `job` that may shrink in place: on a cluster whose agent's latest Hello said it can
    resize, connected or not. An agent between streams (restarted, upgraded) is the same agent until its next
    Hello says otherwise: stopping its part and placing a replacement elsewhere left a job serving fewer replicas
    than either count, and its preferred region empty (outside QA F11). Its Resize is taken at the re-sync
    (`resend`), or, should its agent come back without the feature, its part is replaced then. A Lost cluster's
    part is not elastic: it is re-placed anyway, so it is dropped whole."""
    return frozenset(p.placement_id for p in job.placements
                     if p.phase.is_active and (rec := fed.clusters.get(p.cluster)) is not None
                     and rec.state is not ClusterState.LOST and rec.can_resize)


def away(fed: Federator, job: Job) -> frozenset[str]:
    """The clusters of `job`'s parts whose agent is between streams: a Resize waits for its re-sync."""
    return frozenset(p.cluster for p in job.placements
                     if (rec := fed.clusters.get(p.cluster)) is not None and (not rec.connected or rec.closing))


def summary(job: Job, was: int, replicas: int, plan: DownPlan, *, waiting: Collection[str] = ()) -> str:
    """What a scale-down did, for the job's message and Event: "scaled from 6 to 4: east-1 shrank 6 -> 4 in
    place"; a cluster in `waiting` (`away`) "shrinks 6 -> 4 in place when its agent is back"."""
    said = [f"{p.cluster} shrinks {p.replicas} → {plan.shrunk[p.placement_id]} in place when its agent is back"
            if p.cluster in waiting else f"{p.cluster} shrank {p.replicas} → {plan.shrunk[p.placement_id]} in place"
            for p in job.placements if p.placement_id in plan.shrunk]
    said += [f"{p.cluster} stopped ({p.replicas} replica{'s' if p.replicas != 1 else ''})" for p in plan.dropped]
    return f"scaled from {was} to {replicas}" + (f": {', '.join(said)}" if said else "")


def shrink(job: Job, shrunk: Mapping[str, int], *, reason: str) -> list[tuple[str, ResizeOrder]]:
    """Give the parts of `job` in `shrunk` their new counts (on the stored copy and on the live job alike); the
    Resize orders to send once stored."""
    orders: list[tuple[str, ResizeOrder]] = []
    for p in job.placements:
        n = shrunk.get(p.placement_id)
        if n is None or n >= p.replicas:
            continue
        p.message = f"shrinking to {n} replicas in place"  # until the agent's next update says more
        p.replicas = n
        orders.append((p.cluster, ResizeOrder(p.placement_id, p.generation, n, reason)))
    return orders


def resync_orders(jobs: Iterable[Job], rec: ClusterRecord, present: Collection[str]) -> list[ResizeOrder]:
    """At an agent's re-sync: a Resize with the stored count for every live placement the cluster holds of an
    inference job that may be scaled (none brings a spec.workload: server/scaling.py, `refusal`), so one lost with
    the old stream (or with a restart on either side) takes effect. Only to an agent that can resize; each is a
    no-op for an agent already at that count (agent.proto, Resize)."""
    if not rec.can_resize:
        return []
    return [ResizeOrder(p.placement_id, p.generation, p.replicas, "re-sync: the placement's count")
            for job in jobs if job.spec.kind is JobKind.INFERENCE and not job.spec.workload_json
            and not job.phase.is_terminal
            for p in job.placements
            if p.cluster == rec.name and p.phase.is_active and p.placement_id in present]


def owe(fed: Federator, resizes: Iterable[tuple[str, ResizeOrder]]) -> None:
    """A scale-down's Resizes, about to be sent: each is owed its cluster until the agent answers it (`acked`) or
    its next re-sync settles it (`resend`), remembered with the member (store/members.py). The agent owes no
    answer to a Resize it carried out (agent.proto, Resize), so the federator cannot tell one carried out from
    one lost with the stream, or with the federator: should the agent come back without the resize feature, the
    part is replaced rather than left running at its old count unseen (a job with more replicas than it asked).
    Before, only a Resize dropped while the agent was away was owed, and none survived a restart."""
    for cluster, order in resizes:
        if (rec := fed.clusters.get(cluster)) is not None:
            rec.resizes_owed.add(order.placement_id)
            fed.membership.changed(rec)
    fed.membership.flush()  # now, not at the loop's next turn: the stream may carry the Resize before it


def acked(fed: Federator, rec: ClusterRecord, placement_id: str) -> None:
    """The agent answered a Resize (Ack resize=true, ok or not): the placement is owed nothing more."""
    fed.heard(rec)
    if placement_id in rec.resizes_owed:
        rec.resizes_owed.discard(placement_id)
        fed.membership.changed(rec)


def resend(fed: Federator, rec: ClusterRecord, present: Collection[str]) -> None:
    """At the re-sync of `rec` (Federator._resync), send it `resync_orders`: an agent that can resize takes the
    stored counts, so nothing is owed it after. One back without the feature may run the parts whose Resize it
    never answered (shrunk while it was away, or sent before its stream or the federator went down) at their old
    count: each is replaced, as one whose Resize was refused (`refused`)."""
    owed, rec.resizes_owed = rec.resizes_owed & set(present), set()
    if not rec.can_resize:
        for placement_id in sorted(owed):
            refused(fed, rec, placement_id, "its agent came back without the resize feature")
    fed.membership.changed(rec)
    for order in resync_orders(fed.jobs.values(), rec, present):
        fed.send(rec.name, order)


def count(fed: Federator, *, shrunk: int = 0, stopped: int = 0, refused: int = 0) -> None:
    """federator_scale_down_parts_total: what a scale-down did to each part."""
    for result, n in (("shrunk", shrunk), ("stopped", stopped), ("refused", refused)):
        if n:
            fed.metrics.scale_down_parts.labels(result).inc(n)


def refused(fed: Federator, rec: ClusterRecord, placement_id: str, message: str) -> None:
    """The agent could not shrink a placement in place (Ack ok=false, resize=true): it runs as it was, so it is
    replaced, as a part of an agent without the feature is: cancelled, and its replicas placed again. Not a
    refusal of the job: the job is not kept off the cluster. Only a live placement of the agent's own cluster."""
    acked(fed, rec, placement_id)
    job = fed.jobs.get(fed.placement_index.get(placement_id, JobId("")))
    phase = fed.current_phase(rec.name, placement_id)
    if job is None or job.phase.is_terminal or phase is None or not phase.is_active:
        return
    count(fed, refused=1)
    fed.requeue(job, Reason(ReasonCode.WAITING, f"{rec.name} could not shrink placement {placement_id} in "
                                                f"place ({message[:800]}): replaced"), ended={placement_id})


__all__ = ["EXACT_PARTS", "DownPlan", "acked", "away", "count", "elastic_parts", "greedy_order", "owe", "plan_down",
           "refused", "resend", "resync_orders", "shrink", "summary"]
