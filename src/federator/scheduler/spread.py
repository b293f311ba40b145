"""How many of a spread request's replicas go to which cluster: tiers of regions near the users, minRegions, and
what the rest of a running job may take when not all of it fits.

Why its own module: the count is the one place three rules of inference placement meet, each decided after an
outside QA round (inference angle), and cycle.py is at its size limit.

- Tiers (F5). Replicas fill the clusters of the first tier before any of the next: the preferred regions
  (`spec.regions.preferred`) and the users' region (`spec.regions.user`) together are the first tier, then, with a
  users' region, each other region is a tier of its own in order of the policy's latency to the users' region
  (regions of equal latency share one; regions with no latency known come last, together). Without a users' region
  the other regions are one tier, as before. `regions: {user: west}` alone spread one replica per cluster over every
  region although west had room for all: Locality only ranked the clusters, it never concentrated replicas.
  `minRegions` is the only reason to go wider than the nearest tier with room.
- The rest of a running job is placed greedily (F6). A job's first placement is all or nothing (the whole job
  fits, or it waits with its reason). The rest of a job that already runs (a scale-up's difference, a lost part's
  replicas: `PlacementRequest.kept_regions` is not empty) takes as many replicas as fit now, in whole groups of
  `spec.group_size`, as a Deployment scales; the remainder keeps waiting with the reason the all-or-nothing count
  would have given. 3 -> 9 with room for 5 more left the job at 3.
- For the rest of a running job, minRegions is a goal, not a gate (F1). With fewer regions left that can host a
  replica than `minRegions` asks (one of two regions Lost), the rest goes to the regions left and the job is told
  it spans fewer regions and why (each missing region's clusters, in their words or their state). A job with
  `minRegions: 2` served 1 of 4 for a whole region outage while its model sat free in the surviving region. A
  job's first placement keeps minRegions as a gate. When a region returns, server/rebalancing.py moves a replica
  into it (an extra request placed by this same count, then the surplus taken).

Preemption counts all or nothing (`greedy=False`): victims are stopped only for the whole rest.

Cost: the tiers are one pass over the clusters the board ranked already, as the preferred tier was; the greedy
rest is the same count stopping where it runs out instead of giving up, so no extra pass over the fleet. Pure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from federator.model import JobSpec, Reason, ReasonCode
from federator.scheduler.board import Board, shape_key
from federator.scheduler.cheapest import by_price, price_tiers, wants_cheapest
from federator.scheduler.framework import CycleContext, PlacementRequest, accepted_pools
from federator.scheduler.plugins import quota_held_text
from federator.scheduler.pools import LazyFitCounts, QuotaBudget
from federator.scheduler.regions_why import regions_why
from federator.scheduler.snapshot import Txn
from federator.scheduler.summary import summarize
from federator.scheduler.weights import weighted_counts


@dataclass(frozen=True, slots=True)
class Spread:
    """Replicas per cluster, and why they leave the job short of its ask (None: they do not): the replicas of a
    greedy rest that still wait, or fewer regions than minRegions."""

    counts: Counter[str]
    short: Reason | None = None


def is_rest(request: PlacementRequest) -> bool:
    """The rest of a job that already runs (server/partial.py `rest_request`): its live placements hold regions."""
    return bool(request.kept_regions)


def tiers(names: list[str], txn: Txn, spec: JobSpec, ctx: CycleContext) -> list[list[str]]:
    """`names` (best first) cut into the tiers replicas fill in order (module docstring); each keeps their order,
    or, with `spec.prefer: cheapest`, is cut again into tiers of one price, cheapest first (cheapest.py)."""
    out = _region_tiers(names, txn, spec, ctx)
    return [cut for tier in out for cut in price_tiers(tier, txn)] if wants_cheapest(spec) else out


def _region_tiers(names: list[str], txn: Txn, spec: JobSpec, ctx: CycleContext) -> list[list[str]]:
    first = set(spec.preferred_regions)
    if spec.user_region:
        first.add(spec.user_region)
    if not first:
        return [names]
    near = [n for n in names if txn.get(n).region in first]
    others = [n for n in names if txn.get(n).region not in first]
    if not spec.user_region:
        return [near, others] if near else [names]
    by_ms: dict[int, list[str]] = {}
    unknown: list[str] = []
    for n in others:
        ms = ctx.latency_ms(spec.user_region, txn.get(n).region)
        if ms is None:
            unknown.append(n)
        else:
            by_ms.setdefault(ms, []).append(n)
    out = [near] if near else []
    out.extend(by_ms[ms] for ms in sorted(by_ms))
    if unknown:
        out.append(unknown)
    return out


def spread_counts(request: PlacementRequest, txn: Txn, board: Board, budget: QuotaBudget | None = None, *,
                  greedy: bool = False) -> Spread | Reason:
    """Replicas per cluster for a spread request over the txn's current view (an open attempt included:
    preemption asks with its victims released); reads only, reserves nothing. It counts whole groups of
    `spec.group_size` (a LeaderWorkerSet group stays in one cluster). With quota caps (`model_caps`) it counts
    through a fresh `budget`, which keeps the split over models for the reservation. `greedy` (the rest of a
    running job, `is_rest`): what fits now, minRegions a goal (module docstring); a Reason only if none fits."""
    g = max(1, request.spec.group_size)
    one = replace(request, replicas=g, kept_regions=(), kept_replicas=(), model_caps=())
    key = shape_key(one)
    names = board.ranked(one, key)
    if not names:
        return summarize(board.rejections(key), len(txn.names), request)
    caps = LazyFitCounts(one, txn, per=g)
    if request.spec.region_weights:  # spec.regions.weights: the split is the weights' (weights.py)
        ranked = by_price(names, txn) if wants_cheapest(request.spec) else names
        weighted = weighted_counts(request, txn, ranked, caps, budget=budget, greedy=greedy,
                                   rejected=board.rejected(key))
        if isinstance(weighted, Reason):
            return weighted
        units, why = weighted
        return Spread(Counter({n: c * g for n, c in units.items()}), why)
    ordered = tiers(names, txn, request.spec, board.ctx)
    counts: Counter[str] = Counter()
    left = request.replicas // g
    kept = set(request.kept_regions)  # the rest of a job: its live placements' regions count already
    need = request.spec.min_regions - len(kept)
    regions_short: Reason | None = None
    if request.spec.min_regions > 1 and need > 0:
        seeds: dict[str, str] = {}
        for n in (n for tier in ordered for n in tier):
            region = txn.get(n).region
            if region not in kept and region not in seeds and (
                    budget is None or (len(seeds) < need and budget.take(one, txn.get(n), 1))):
                seeds[region] = n
        if len(seeds) < need or left < need:
            holding = f"{len(kept)} held by its running placements ({', '.join(sorted(kept))}); " if kept else ""
            regions_short = Reason(ReasonCode.REGION_UNAVAILABLE,
                                   f"replicas must span {request.spec.min_regions} regions; {holding}"
                                   + (f"only {len(seeds)} {'more ' if kept else ''}can host one now "
                                      f"({', '.join(sorted(seeds))})" if seeds else
                                      f"no {'other ' if kept else ''}region can host one now")
                                   + regions_why(txn, board.rejected(key), kept | set(seeds)))
            if not greedy:
                return regions_short
        for n in list(seeds.values())[:min(need, left)]:
            counts[n] += 1
            caps[n] -= 1
            left -= 1
    for tier in ordered:
        if budget is None and left <= len(tier) and all(caps[n] > 0 for n in tier[:left]):  # one each, best first
            for n in tier[:left]:
                counts[n] += 1
                caps[n] -= 1
            left = 0
            break
        active = [n for n in tier if caps[n] > 0]
        while left and active:
            share = max(1, left // len(active))
            for n in active:
                k = min(share, caps[n], left)
                if budget is not None and k:
                    got = budget.take(one, txn.get(n), k)
                    if got < k:  # its pools, within the caps, take no more: the caps only fall
                        caps[n] = k = got
                counts[n] += k
                caps[n] -= k
                left -= k
                if not left:
                    break
            active = [n for n in active if caps[n] > 0]
    short: Reason | None = None
    if left:
        code = ReasonCode.INSUFFICIENT_ACCELERATORS if request.accelerator_milli else ReasonCode.INSUFFICIENT_CPU
        where = f"{len(names)} clusters" if len(names) != 1 else f"the one cluster with room ({names[0]})"
        held = sum(p.quota_held_accelerators for n in names for p in accepted_pools(one, txn.get(n))) \
            if request.accelerator_milli else 0
        short = Reason(code, f"only {request.replicas - left * g} of {request.replicas} replicas fit across "
                             f"{where}" + (f" (in groups of {g})" if g > 1 else "")
                             + quota_held_text(held, members=len(names) != 1))
        if not greedy or not counts:  # none fits: as the first placement would say (minRegions first)
            return regions_short if regions_short is not None else short
    if regions_short is not None:
        spans = len(kept | {txn.get(n).region for n in counts})
        if spans < request.spec.min_regions:  # else the seeds it found and the replicas left made up the span
            said = (f"spans {spans} of the {request.spec.min_regions} regions its minRegions asks, placed in the "
                    f"regions left: {regions_short.message}")
            short = Reason(short.code, f"{short.message}; {said}") if short is not None else \
                Reason(ReasonCode.REGION_UNAVAILABLE, said)
    out = Counter({n: c * g for n, c in counts.items()}) if g > 1 else counts
    return Spread(out, short)


__all__ = ["Spread", "is_rest", "spread_counts", "tiers"]
