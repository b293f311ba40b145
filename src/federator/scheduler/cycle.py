"""One scheduling cycle: order the pending jobs, place each over a snapshot.

A pure function of (snapshot, pending jobs, running work, config, now): no
clock but the one handed in for phase timings, no I/O. The server, the
simulator and the benchmarks all run this same code. The cycle reads as
numbered phases, each timed:

1. order: queues by weighted DRF share (lowest first), within a queue by
   priority, then the owner's share (who holds least first: `owner_share.py`), then submission time;
2. prescore: per-cycle values every plugin reads (max price, demand, region use,
   which the place phase moves as it reserves);
   reserve: gangs waiting past the policy's threshold reserve room on one cluster each (`reservation.py`);
3. place: each job checked against its queue's quota, then placed in a
   transaction committed only if the whole job fits; a training gang goes to
   one cluster, inference replicas spread (at least `minRegions` regions, nearest tiers first), and the rest
   of a running inference job takes what fits (`spread.py`);
4. preempt: jobs still waiting for capacity may stop cheaper, lower-priority
   (or over-share) preemptible work, up to a cap per cycle.

Speed: filter and score results are cached per request *shape* for the
cycle (`board.py`) and refreshed only for clusters that changed since, and a
shape that fits nowhere stays unplaceable for the rest of the place phase
(capacity only shrinks in it); at its end, the capacity reasons of the shapes
whose clusters changed since are made again over the room left, and their
jobs told those (`room_words.py`). So the cost of a cycle grows with jobs plus
shapes x clusters, not jobs x clusters. The filters' verdicts outlive the
cycle (`verdicts.py`): a shape's first look at a cluster in a cycle reuses
what the filters said of it last time while the cluster and what they read
of the cycle are the same; only the scores are computed afresh.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

from federator.model import MILLI, ClusterInfo, ClusterState, JobId, JobKind, NeverRunnable, Reason, ReasonCode
from federator.scheduler.alternatives import Assignment, assign, first_that_fits
from federator.scheduler.board import Board, shape_key
from federator.scheduler.cheapest import by_price, wants_cheapest
from federator.scheduler.config import SchedulerConfig
from federator.scheduler.demand import Arrival, demand_of
from federator.scheduler.elastic import elastic_note, largest, least, quota_held, shrinkable, smallest
from federator.scheduler.fairshare import FairOrder, FleetPoolsMemo, QueueUsage
from federator.scheduler.fleet_fit import FleetFit
from federator.scheduler.framework import (
    MAX_SCORE,
    Allocation,
    CycleContext,
    FilterPlugin,
    PlacementRequest,
    PoolScorePlugin,
    ScorePlugin,
)
from federator.scheduler.gcpause import few_full_collections
from federator.scheduler.nodevictims import forget, node_used
from federator.scheduler.parked_line import IN_LINE, ParkedQueue
from federator.scheduler.plugins import FILTERS, POOL_SCORES, SCORES
from federator.scheduler.pod_set_fit import parts, reserve_request
from federator.scheduler.pools import best_model, quota_budget, reservation_bucket, reserve_spread
from federator.scheduler.preemption import (
    PlanMemo,
    Preemption,
    by_fair_share,
    capped,
    eligible,
    fair_after,
    plan,
    plan_spread,
    preemption_of,
    release_in_attempt,
    unfair_note,
    victim_units,
    within_quota,
)
from federator.scheduler.regionload import RegionUse
from federator.scheduler.reservation import Reservation, guarded, reserve_room, respected, still_reserved
from federator.scheduler.residency import ALWAYS_FILTERS, fenced
from federator.scheduler.room_words import RoomWords
from federator.scheduler.same_as import placed
from federator.scheduler.snapshot import Snapshot, Txn
from federator.scheduler.spread import is_rest, spread_counts
from federator.scheduler.standing import with_standing
from federator.scheduler.summary import summarize
from federator.scheduler.verdicts import Verdicts


@dataclass(frozen=True, slots=True)
class Decision:
    job_id: JobId
    assignments: tuple[Assignment, ...]
    # Why these leave the job short of its ask (spread.py): the rest of a running job placed in part, or in fewer
    # regions than its minRegions. None: the job has all it asked for.
    short: Reason | None = None


@dataclass(frozen=True, slots=True)
class CycleResult:
    decisions: tuple[Decision, ...]
    pending: Mapping[JobId, Reason]
    phase_seconds: Mapping[str, float]
    snapshot: Snapshot  # after the cycle's reservations
    preemptions: tuple[Preemption, ...] = ()
    decision_seconds: tuple[float, ...] = ()  # time spent deciding each of `decisions`, same order
    reservations: tuple[Reservation, ...] = ()  # the gangs still waiting on room reserved for them (reservation.py)
    resting: Mapping[JobId, float] = field(default_factory=dict)  # gangs whose reservation ran out: until when


# Reasons more room could cure: only these jobs may preempt. REGION_UNAVAILABLE comes only from a
# spread's minRegions (too few regions with room *now*), which room in another region cures.
_CAPACITY = frozenset({ReasonCode.GANG_DOES_NOT_FIT, ReasonCode.INSUFFICIENT_ACCELERATORS, ReasonCode.INSUFFICIENT_CPU,
                       ReasonCode.INSUFFICIENT_MEMORY, ReasonCode.REGION_UNAVAILABLE, ReasonCode.RESERVED})
# Reasons of a job that waits in its queue's line: room or quota that the jobs taken before it may get first.
_IN_LINE = IN_LINE  # capacity and quota: parked_line.py counts the parked jobs by the same set


def prescore(snapshot: Snapshot, config: SchedulerConfig | None = None,
             requests: Sequence[PlacementRequest] = (), running: Sequence[Allocation] = (),
             recent: Sequence[Arrival] = (), scarcity_scale: float | None = None,
             maintenance: Mapping[str, float] | None = None, now: float = 0.0) -> CycleContext:
    prices = [p for c in snapshot.clusters if (p := c.price_per_accelerator_hour) is not None]
    latency = dict(config.region_latency_ms) if config else {}
    if scarcity_scale is None:
        scarcity_scale = config.scarcity_scales[0] if config else 0.0
    demand = demand_of(snapshot.ready(), requests, running, recent, scarcity_scale=scarcity_scale) \
        if requests or running or recent else None
    return CycleContext(max_price=max(prices, default=0.0), regions=RegionUse(snapshot.ready(), MAX_SCORE),
                        region_latency_ms=latency, max_latency_ms=max(latency.values(), default=0), demand=demand,
                        maintenance=dict(maintenance or {}), now=now, placed=placed(requests, running))


class Scheduler:
    """Runs cycles with a fixed configuration."""

    def __init__(self, config: SchedulerConfig | None = None) -> None:
        self.config = config or SchedulerConfig()
        names = (*(n for n in ALWAYS_FILTERS if n not in self.config.filters), *self.config.filters)
        self.filters: list[FilterPlugin] = [FILTERS[n]() for n in names]
        weighted = [(SCORES[n](), w) for n, w in self.config.score_weights.items() if w]
        self.scores: list[tuple[ScorePlugin, int]] = [(s, w) for s, w in weighted if s.name not in POOL_SCORES]
        self.pool_scores: list[tuple[PoolScorePlugin, int]] = [(cast(PoolScorePlugin, s), w) for s, w in weighted
                                                                if s.name in POOL_SCORES]
        # Whether a reservation's region use is to move scores (RegionLoad weighs in): else none is counted.
        self.reads_regions = any(s.name == "RegionLoad" for s, _ in self.scores)
        self.fleet_pools = FleetPoolsMemo()  # what QueueUsage reads of the fleet's pools, kept across cycles
        self.verdicts = Verdicts()  # the filters' verdicts per fit shape and cluster, kept across cycles

    def schedule(
        self,
        snapshot: Snapshot,
        requests: Sequence[PlacementRequest],
        *,
        running: Sequence[Allocation] = (),
        now: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
        recent: Sequence[Arrival] = (),
        scarcity_scale: float | None = None,
        reservations: Sequence[Reservation] = (),
        resting: Mapping[JobId, float] | None = None,
        maintenance: Mapping[str, float] | None = None,
        parked: Mapping[str, ParkedQueue] | None = None,
    ) -> CycleResult:
        """Place what fits of `requests` over `snapshot`; `running` is the work already placed
        (for queue usage and preemption), `now` the time lost accelerator-seconds (and gangs' waits) are
        measured at, `recent` the arrivals that have ended, which the demand remembers (scheduler/demand.py),
        `scarcity_scale` the one of the configured scales a rollout chose (scheduler/tuning.py;
        None: the first), `reservations` and `resting` the last cycle's, kept while they can
        (scheduler/reservation.py), `maintenance` each cluster's maintenance window still ahead: when it begins,
        which no job placed there may run past (scheduler/maintenance_window.py; judged at `now`), `parked` each
        queue's jobs parked out of the cycle, which a waiting job's count of the jobs ahead includes
        (scheduler/parked_line.py)."""
        with few_full_collections():
            return self._schedule(snapshot, requests, running, now, clock, recent, scarcity_scale, reservations,
                                  resting, maintenance, parked)

    def _schedule(self, snapshot: Snapshot, requests: Sequence[PlacementRequest], running: Sequence[Allocation],
                  now: float, clock: Callable[[], float], recent: Sequence[Arrival] = (),
                  scarcity_scale: float | None = None, reservations: Sequence[Reservation] = (),
                  resting: Mapping[JobId, float] | None = None,
                  maintenance: Mapping[str, float] | None = None,
                  parked: Mapping[str, ParkedQueue] | None = None) -> CycleResult:
        cfg = self.config
        requests = fenced(requests, cfg)  # each queue's allowedRegions on its requests (scheduler/residency.py)
        phases: dict[str, float] = {}
        t0 = clock()
        usage = QueueUsage(cfg, snapshot, running, fleet=self.fleet_pools(snapshot))
        order = FairOrder(usage, requests, running, parked)
        t1 = clock()
        phases["order"] = t1 - t0
        ctx = prescore(snapshot, cfg, requests, running, recent, scarcity_scale, maintenance, now)
        t2 = clock()
        phases["prescore"] = t2 - t1
        reserved, rests = reserve_room(cfg, self.filters, snapshot, least(requests), reservations, usage.quota_check,
                                       now=now, ctx=ctx, running=running, resting=resting)  # elastic: its minimum
        t, t2 = t2, clock()
        phases["reserve"] = t2 - t

        board = Board(guarded(self.filters, reserved), self.scores, ctx, self.pool_scores, self.verdicts)
        txn = Txn(snapshot, on_change=board.changed)
        board.txn = txn
        unplaceable: dict[tuple[object, ...], Reason] = {}
        words = RoomWords()  # the capacity reasons told, settled against the room the phase leaves (room_words.py)
        notes: dict[JobId, Reason] = {}  # why a decision leaves its job short (Decision.short)
        decisions: list[Decision] = []
        seconds: list[float] = []
        pending: dict[JobId, Reason] = {}
        waiting: list[PlacementRequest] = []
        fleet = FleetFit(snapshot, cfg.legacy_vendor)
        for request in order:
            if len(decisions) >= cfg.max_placements_per_cycle:
                pending[request.job_id] = Reason(ReasonCode.WAITING, "placement limit of this cycle reached")
                continue
            started = clock()
            if reserved and (bound := respected(request, reserved)):
                request = replace(request, respects=bound)
            asked, (request, outcome) = request, first_that_fits(
                request, lambda v: self._try(v, usage, txn, board, unplaceable, notes, words), cfg.legacy_vendor)
            if isinstance(outcome, Reason) and shrinkable(asked, outcome):  # elastic: the largest count that fits
                count = largest(asked, lambda r: self._fits(r, usage, txn, board, unplaceable))  # (elastic.py)
                if (held := quota_held(asked, count, usage.quota_check, lambda r: self._fits(
                        r, usage, txn, board, unplaceable, quota=False))):
                    notes[asked.job_id] = held  # its queue's quota, not room, chose the count (elastic.py)
                request, outcome = first_that_fits(
                    count, lambda v: self._try(v, usage, txn, board, unplaceable, notes, words), cfg.legacy_vendor)
                if isinstance(outcome, Reason):  # waits (and may preempt) for room for its minimum
                    outcome = elastic_note(asked, outcome)
            elif isinstance(outcome, Reason) and asked.regain is not None:  # waits whole to regain its count
                outcome = elastic_note(asked, outcome)
            if isinstance(outcome, Reason):
                pending[request.job_id] = outcome = fleet.judged(smallest(asked), outcome)  # never fits (fleet_fit.py)?
                if outcome.never is None and outcome.code in _IN_LINE:  # the jobs after it come after it
                    order.waits(request)
                # preemption may make room for it, but not for a gang regaining its count (its room may be coming back)
                if outcome.code in _CAPACITY and outcome.never is None and asked.regain is None:
                    waiting.append(request)
                continue
            order.placed(request, outcome)
            decisions.append(Decision(request.job_id, outcome, notes.pop(request.job_id, None)))
            seconds.append(clock() - started)
            moved = False
            for a in outcome:
                for resources, pods in parts(request, a.replicas):  # a gang of pod sets: each at its ask
                    usage.add(request.spec.queue, resources, pods, a.accelerator_model, unit_milli=a.unit_milli)
                if ctx.demand is not None:
                    moved |= ctx.demand.live.take(a.accelerator_model, a.accelerator_milli * a.replicas,
                                                  a.accelerator_milli >= 2 * MILLI)
                if self.reads_regions:  # counted in its region; if RegionLoad moved there, its clusters are stale
                    for name in ctx.regions.placed(a):
                        board.changed(name)
            if moved:  # Scarcity's scores moved: every cluster's pool scores are stale
                board.rescored(txn.names)
        words.settle(pending, len(board.log), lambda r, k: None if board.best(r, k) is not None
                     else summarize(board.rejections(k), len(txn.names), r))
        t3 = clock()
        phases["place"] = t3 - t2

        preemptions: list[Preemption] = []
        active = sorted(set(order.queues) | {a.queue for a in running}) if waiting else []
        unstoppable: set[JobId] = set()  # waiting jobs no running work was theirs to stop (standing.py)
        if cfg.preemption and cfg.max_preemptions_per_cycle and waiting and running:
            preemptions = self._preempt(waiting, txn, board, usage, running, active, now=now,
                                        decisions=decisions, seconds=seconds, pending=pending, clock=clock,
                                        unstoppable=unstoppable)
        # tenant QA F2: an over-share queue's jobs say so; an under-share one's with nothing to stop, why it waits
        with_standing(pending, waiting, usage, active, unstoppable=unstoppable)
        order.explain(pending)  # outside QA, HPC H1: the jobs of its own queue that go before its owner's
        phases["preempt"] = clock() - t3
        return CycleResult(tuple(decisions), pending, phases, txn.snapshot(), tuple(preemptions), tuple(seconds),
                           still_reserved(reserved, pending, rests), rests)

    # -- placement --------------------------------------------------------

    def _try(self, request: PlacementRequest, usage: QueueUsage, txn: Txn, board: Board,
             unplaceable: dict[tuple[object, ...], Reason], shorts: dict[JobId, Reason],
             words: RoomWords | None = None, *, dry: bool = False) -> tuple[Assignment, ...] | Reason:
        """One alternative: the queue's quota on its models, then placement. `dry` (a gang's): whether it would
        place, reserving and keeping nothing (an empty tuple: it would): `_fits`."""
        check = usage.quota_check(request)
        if check.refused is not None:
            return check.refused
        request = check.admitted(request)
        outcome = self._place(request, txn, board, unplaceable, shorts, words, dry=dry)
        if isinstance(outcome, Reason) and (notes := check.notes):
            if outcome.code in (ReasonCode.QUOTA_EXCEEDED, ReasonCode.ACCELERATOR_UNAVAILABLE):
                return Reason(ReasonCode.QUOTA_EXCEEDED, "; ".join(notes),
                              never=NeverRunnable.QUOTA if check.never else None)
            return Reason(outcome.code, f"{outcome.message} ({'; '.join(notes)})")
        return outcome

    def _fits(self, request: PlacementRequest, usage: QueueUsage, txn: Txn, board: Board,
              unplaceable: dict[tuple[object, ...], Reason], *, quota: bool = True) -> bool:
        """Whether a gang request would place now, on any of its alternatives, with nothing reserved: the dry look
        an elastic gang's count is chosen by (elastic.py). `_try`'s own path in its dry mode (quota, a shape
        known unplaceable this cycle, the cluster `_place_one` would take), so the count chosen is one `_try`
        places; not `quota`: room alone, `_place`'s dry look (whether its quota chose the count: `quota_held`)."""
        def look(v: PlacementRequest) -> tuple[Assignment, ...] | Reason:
            if quota:
                return self._try(v, usage, txn, board, unplaceable, {}, dry=True)
            return self._place(v, txn, board, unplaceable, {}, dry=True)
        return not isinstance(first_that_fits(request, look, self.config.legacy_vendor)[1], Reason)

    def _place(self, request: PlacementRequest, txn: Txn, board: Board, unplaceable: dict[tuple[object, ...], Reason],
               notes: dict[JobId, Reason], words: RoomWords | None = None, *,
               dry: bool = False) -> tuple[Assignment, ...] | Reason:
        # Keyed by the shape, not its fit shape (which would do as well): the reason a job is told is then
        # what its own shape found, as of its first job this cycle. A dry look (`_fits`) reads it, and keeps
        # nothing in it: its reason is not the one a job is told.
        key = shape_key(request)
        known = unplaceable.get(key)
        if known is not None:
            if words is not None:  # a dry look passes none: it tells no job
                words.tell(request.job_id, key)
            return known
        one = request.is_gang or (request.replicas == 1 and request.spec.min_regions <= 1
                                  and not request.spec.region_weights)
        if one:
            outcome = self._place_one(request, txn, board, key, dry=dry)
        elif dry:
            raise ValueError("a dry placement is a gang's (elastic.py): a spread request has none")
        else:
            outcome = self._place_spread(request, txn, board, notes)
        if isinstance(outcome, Reason) and not dry:
            unplaceable[key] = outcome
            if words is not None and one:  # a spread's words are its count's (spread.py), not a summary
                words.make(key, request, outcome, len(board.log))
                words.tell(request.job_id, key)
        return outcome

    def _place_one(self, request: PlacementRequest, txn: Txn, board: Board, key: tuple[object, ...], *,
                   dry: bool = False) -> tuple[Assignment, ...] | Reason:
        name = board.best(request, key) if not wants_cheapest(request.spec) else \
            next(iter(by_price(board.ranked(request, key), txn)), None)  # spec.prefer: cheapest (cheapest.py)
        if dry:  # `_fits`: whether, not where nor why
            return () if name is not None else Reason(ReasonCode.GANG_DOES_NOT_FIT, "")
        if name is None:
            return summarize(board.rejections(key), len(txn.names), request)
        best = txn.get(name)
        model = board.model(request, key, best)
        if model is None:
            model = best_model(request, best, board.ctx, self.pool_scores, request.replicas)
        txn.begin()
        txn.put(reserve_request(best, request, model, bucket=reservation_bucket(request, best, model, board.ctx)))
        txn.commit()
        return (assign(best, request.replicas, model, request),)

    def _place_spread(self, request: PlacementRequest, txn: Txn, board: Board,
                      notes: dict[JobId, Reason]) -> tuple[Assignment, ...] | Reason:
        """A spread request's replicas; a running job's rest takes what fits, its shortfall in `notes` (spread.py)."""
        budget = quota_budget(request, board.ctx, board.pool_scores)
        spread = spread_counts(request, txn, board, budget, greedy=is_rest(request))
        if isinstance(spread, Reason):
            return spread
        txn.begin()
        try:
            out = reserve_spread(request, txn, spread.counts, board.ctx, board.pool_scores, budget)
        except ValueError as exc:  # a fit count and the arithmetic disagree: a bug, but not a crash
            txn.abort()
            return Reason(ReasonCode.WAITING, f"spreading failed: {exc}")
        txn.commit()
        if spread.short is not None:
            notes[request.job_id] = spread.short
        return out

    # -- preemption -------------------------------------------------------

    def _preempt(self, waiting: Sequence[PlacementRequest], txn: Txn, board: Board, usage: QueueUsage,
                 running: Sequence[Allocation], active: Sequence[str], *, now: float,
                 decisions: list[Decision], seconds: list[float], pending: dict[JobId, Reason],
                 clock: Callable[[], float], unstoppable: set[JobId]) -> list[Preemption]:
        """Victims for the waiting jobs, most deserving first, within the cycle's budget; the jobs for which no
        running work is a victim at all go in `unstoppable`.

        Only preemptible work is ever a victim, so the running work is narrowed to it once, and a cycle with
        none costs nothing here. Whom a job may preempt depends on its priority and queue only, and whether
        victims can make room for it on its shape, queue and priority: both are worked out once per such key
        and kept until a preemption changes what runs. A national backlog waits with many alike jobs beside
        thousands of running ones; asking every waiting job of every running job made a cycle over 22,000
        waiting jobs beside 2,000 running ones (none preemptible) take 17 s of CPU here."""
        by_job: dict[JobId, list[Allocation]] = defaultdict(list)
        placed = {d.job_id for d in decisions}  # the rest of a job placed this cycle: its parts are no victims
        for a in running:
            if a.preemptible and a.job_id not in placed:
                by_job[a.job_id].append(a)
        holders = set(by_job)  # jobs that hold something: a rest request's own parts are no victims for it
        by_job = victim_units(by_job)  # a spread job's parts one by one (preemption.py)
        budget = self.config.max_preemptions_per_cycle
        out: list[Preemption] = []
        whom: dict[tuple[int, str], list[JobId]] = {}  # (priority, queue) -> who it may preempt
        hopeless: dict[tuple[object, ...] | None, Reason | None] = {}  # no victims make room: the reason it gave
        memo = PlanMemo(by_job, now, node_used(running))  # victims' costs, clusters with victims released
        if not by_job:  # nothing running is preemptible: no waiting job has anything to stop
            unstoppable.update(r.job_id for r in waiting)
        for request in waiting:
            if budget <= 0 or not by_job:
                break
            spec = request.spec
            # (the rest of a job that runs in part is never alike: its own parts are no victims for it, nor shared)
            key = None if request.job_id in holders else (
                request.shape(), spec.queue, spec.priority, spec.min_regions, spec.group_size)
            if key in hopeless:
                if (said := hopeless[key]) is not None:
                    pending[request.job_id] = said
                continue
            started = clock()
            candidates = whom.get((spec.priority, spec.queue)) if key is not None else None
            if candidates is None:
                candidates = [j for j, allocs in by_job.items() if eligible(allocs[0], request, usage, active)]
                if key is not None:
                    whom[spec.priority, spec.queue] = candidates
            if not candidates:
                unstoppable.add(request.job_id)
                continue
            before = pending.get(request.job_id)
            done = len(out)
            self._preempt_one(request, candidates, by_job, txn, board, usage, now=now, budget=budget,
                              pending=pending, out=out, decisions=decisions, memo=memo)
            if len(out) == done and request.job_id in pending:
                said = pending[request.job_id]
                if key is not None:
                    hopeless[key] = said if said is not before else None
                continue
            budget -= len(out) - done
            whom.clear()  # what runs, the clusters, and the queues' shares changed
            hopeless.clear()
            memo.clear()
            seconds.append(clock() - started)
        return out

    def _preempt_one(self, request: PlacementRequest, candidates: Sequence[JobId],
                     by_job: dict[JobId, list[Allocation]], txn: Txn, board: Board, usage: QueueUsage, *,
                     now: float, budget: int, pending: dict[JobId, Reason], out: list[Preemption],
                     decisions: list[Decision], memo: PlanMemo) -> None:
        """Preempt for one waiting job if victims among `candidates` make room for it: appends the
        preemptions to `out` and its decision to `decisions`, or changes nothing."""
        if _spreads(request):
            placed = self._preempt_spread(request, candidates, by_job, txn, board, usage, now=now,
                                          budget=budget, pending=pending, memo=memo)
            if placed is None:
                return
            victims, assignments = placed
            for victim in victims:
                allocs = by_job.pop(victim)
                for a in allocs:
                    usage.add(a.queue, a.resources, a.replicas, a.accelerator_model, sign=-1, unit_milli=a.unit_milli)
                out.append(preemption_of(victim, allocs, request))
            for spot in assignments:
                usage.add(request.spec.queue, request.spec.resources, spot.replicas, spot.accelerator_model,
                          unit_milli=spot.unit_milli)
            pending.pop(request.job_id, None)
            decisions.append(Decision(request.job_id, assignments))
            return
        whole = request if request.is_gang else replace(
            request, spec=replace(request.spec, kind=JobKind.TRAINING))

        def fits(cluster: ClusterInfo, victims: Sequence[JobId], whole: PlacementRequest = whole) -> bool:
            admitted = within_quota(whole, usage, by_job, victims)
            return not isinstance(admitted, Reason) and not isinstance(board.evaluate(admitted, cluster), Reason)

        def fair(cluster: ClusterInfo, victims: Sequence[JobId], whole: PlacementRequest = whole) -> bool:
            admitted = within_quota(whole, usage, by_job, victims)
            if isinstance(admitted, Reason):
                return False
            try:
                model = best_model(admitted, cluster, board.ctx, self.pool_scores, request.replicas)
            except ValueError:
                return False
            gone = [by_job[v] for v in victims]
            ok = fair_after(request, [(request.replicas, model)], gone, usage)
            if not ok:
                unfair.update(a.queue for allocs in gone for a in allocs if by_fair_share(a, request, usage))
            return ok

        unfair: set[str] = set()  # the queues of victims `fair` refused
        ready = [txn.get(n) for n in txn.names if txn.get(n).state is ClusterState.READY]
        chosen = plan(whole, ready, by_job, candidates, fits, now=now, budget=budget, memo=memo, fair=fair)
        if chosen is None:
            held, refused = pending.get(request.job_id), unfair_note(request, unfair)
            cap = self.config.max_preemptions_per_cycle
            per_node = request.spec.resources.whole_accelerators
            if held is not None and (note := capped(ready, candidates, by_job, fits, fair, budget=budget, cap=cap,
                                                    memo=memo, per_node=per_node) or refused):
                pending[request.job_id] = replace(held, message=f"{held.message}; {note}")
            return
        admitted = within_quota(whole, usage, by_job, chosen.victims)
        if isinstance(admitted, Reason):  # the plan's own check said it is within quota: a bug, not a crash
            return
        release_in_attempt(txn, chosen.victims, by_job)
        txn.put(chosen.after)  # the plan's estimate: per node where the victims' nodes are known (nodevictims.py)
        target = txn.get(chosen.cluster)
        model = best_model(admitted, target, board.ctx, self.pool_scores, request.replicas)
        if not fair_after(request, [(request.replicas, model)], [by_job[v] for v in chosen.victims], usage):
            txn.abort()  # the plan asked this of the same model: a bug, but never a preemption that cycles
            return
        try:
            txn.put(reserve_request(target, request, model))
        except ValueError:
            txn.abort()
            return
        txn.commit()
        for victim in chosen.victims:
            allocs = by_job.pop(victim)
            forget(memo.used, allocs)
            for a in allocs:
                usage.add(a.queue, a.resources, a.replicas, a.accelerator_model, sign=-1, unit_milli=a.unit_milli)
            out.append(preemption_of(victim, allocs, request, chosen.cluster))
        bound = assign(target, request.replicas, model, request)
        for resources, pods in parts(request, request.replicas):
            usage.add(request.spec.queue, resources, pods, model, unit_milli=bound.unit_milli)
        pending.pop(request.job_id, None)
        decisions.append(Decision(request.job_id, (bound,)))

    def _preempt_spread(self, request: PlacementRequest, candidates: Sequence[JobId],
                        by_job: Mapping[JobId, Sequence[Allocation]], txn: Txn, board: Board, usage: QueueUsage,
                        *, now: float, budget: int, pending: dict[JobId, Reason],
                        memo: PlanMemo) -> tuple[tuple[JobId, ...], tuple[Assignment, ...]] | None:
        """Preempt for a spread request with the same spread rules as the place phase; commits the
        victims' release and the placement together, or nothing. None (with the job's reason telling
        why, when victims existed but could not make room) if it does not preempt."""
        one = replace(request, replicas=1, kept_regions=(), kept_replicas=())
        on = memo.on(candidates)  # a cluster with its own candidates released: others hold nothing there
        useful = {name for name in txn.names
                  if not isinstance(board.evaluate(one, memo.freed(txn.get(name), on.get(name, []))), Reason)}
        candidates = [j for j in candidates if any(a.cluster in useful for a in by_job[j])]
        if not candidates:
            return None

        def spread_without(victims: Sequence[JobId]) -> Reason | None:
            admitted = within_quota(request, usage, by_job, victims)
            if isinstance(admitted, Reason):
                return admitted
            release_in_attempt(txn, victims, by_job)
            counts = spread_counts(admitted, txn, board, quota_budget(admitted, board.ctx, board.pool_scores))
            txn.abort()
            return counts if isinstance(counts, Reason) else None

        chosen = plan_spread(by_job, candidates, spread_without, now=now, budget=budget)
        if chosen.refused is not None:
            held = pending.get(request.job_id)
            if held is not None:
                pending[request.job_id] = replace(held, message=f"{held.message}; not preempting: with the "
                                                  f"{min(budget, len(candidates))} cheapest preemptible jobs "
                                                  f"stopped, {chosen.refused.message}")
            return None
        admitted = within_quota(request, usage, by_job, chosen.victims)
        if isinstance(admitted, Reason):  # plan_spread's own check said it is within quota: a bug, not a crash
            return None
        release_in_attempt(txn, chosen.victims, by_job)
        room = quota_budget(admitted, board.ctx, board.pool_scores)
        counts = spread_counts(admitted, txn, board, room)  # all or nothing: victims stop only for the whole rest
        try:
            if isinstance(counts, Reason):
                raise ValueError(counts.message)
            assignments = reserve_spread(admitted, txn, counts.counts, board.ctx, board.pool_scores, room)
        except ValueError:  # the plan said it fits: a bug, but not a crash
            txn.abort()
            return None
        if not fair_after(request, [(a.replicas, a.accelerator_model) for a in assignments],
                          [by_job[v] for v in chosen.victims], usage):
            txn.abort()  # it would leave its queue over a victim queue's share: the reverse would follow
            return None
        txn.commit()
        return chosen.victims, assignments


def _spreads(request: PlacementRequest) -> bool:
    """Replicas that may go to several clusters (the place phase's `_place_spread` path)."""
    return not request.is_gang and not (request.replicas == 1 and request.spec.min_regions <= 1)
