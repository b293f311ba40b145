"""`spec.regions.weights`: an inference job's replicas split over regions by static weights (outside migration QA,
M8: Karmada's `replicaDivisionPreference: Weighted` with a `staticWeightList`, "2:1 east:west").

Why its own module: the split is a rule of its own beside spread.py's tiers and minRegions (which the weights
replace: Submit refuses a job giving both), and spread.py is long.

- The split (`split`): each region gets floor(units x weight / sum of weights), units being the job's replicas in
  whole groups of `spec.group_size`; the units left over go one each to the regions with the largest fractional
  part, then the heavier weight, then the region's name (Karmada's rule: floor, remainders by fraction and
  weight). 3:1 on 8 gives 6 and 2; 2:1 on 4 gives 3 and 1; 1:1:1 on 4 gives 2, 1, 1 (the first name).
- The split is the ask, so replicas never spill to a region that was not given them: a user who writes "2:1
  east:west" means it (traffic, data residency, a contract), as a Karmada user's pods stay Pending in their
  cluster. A job's first placement is all or nothing: while one weighted region cannot take its share the whole
  job waits, its reason naming the region, its share, how many fit there and the field. The rest of a running job
  (a scale-up's difference, a lost part's replicas: `PlacementRequest.kept_replicas` says what each region holds)
  takes what fits of each region's share now, and the remainder waits with that reason (spread.py's greedy rest).
- A scale-down leaves each region at most its share of the new count (`shares`; server/shrink.py picks which
  replicas go), so the ratio holds after it as after a scale-up; a region holding less keeps what it has.
- Within a region, its clusters take its share best first (the policy's ranking, or cheapest first with
  `spec.prefer: cheapest`), each as much as it fits.

Pure: one pass over the clusters the board ranked already.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

from federator.model import Reason, ReasonCode
from federator.scheduler.framework import PlacementRequest
from federator.scheduler.pools import QuotaBudget
from federator.scheduler.snapshot import Txn

FIELD = "spec.regions.weights"


def split(units: int, weights: tuple[tuple[str, int], ...]) -> dict[str, int]:
    """`units` over the regions of `weights` by the rule of the module docstring; every region named is a key."""
    total = sum(w for _, w in weights)
    if total <= 0 or units <= 0:
        return {r: 0 for r, _ in weights}
    out = {r: units * w // total for r, w in weights}
    left = units - sum(out.values())
    order = sorted(weights, key=lambda rw: (-(units * rw[1] % total), -rw[1], rw[0]))
    for r, _ in order[:left]:
        out[r] += 1
    return out


def shares(replicas: int, weights: tuple[tuple[str, int], ...], *, group: int = 1) -> dict[str, int]:
    """Each weighted region's share in replicas of a job of `replicas` in groups of `group` (`split` of its whole
    groups): what a scale-down leaves each region (server/shrink.py, `plan_down`), by the rule placement splits
    by. 3:1 on 4 is east 3, west 1; on 2, east 2, west 0 (the fractions tie: the heavier weight takes the one
    left over)."""
    g = max(1, group)
    return {r: u * g for r, u in split(replicas // g, weights).items()}


def targets(request: PlacementRequest, group: int) -> dict[str, int]:
    """Units (groups) each weighted region still needs for this request: its share of the whole job less what the
    job's live placements hold there (the rest of a running job), never below 0. A rest whose holdings are not
    said (`kept_replicas` empty) is split by the weights alone."""
    weights = request.spec.region_weights
    kept = dict(request.kept_replicas)
    if not kept:
        return split(request.replicas // group, weights)
    whole = split((request.replicas + sum(kept.values())) // group, weights)
    need = {r: max(0, u - kept.get(r, 0) // group) for r, u in whole.items()}
    over = sum(need.values()) - request.replicas // group
    for r in sorted(need, key=lambda r: (-need[r], r)):  # a holding over its share: the rest still adds up
        while over > 0 and need[r] > 0:
            need[r] -= 1
            over -= 1
    return need


def weighted_counts(request: PlacementRequest, txn: Txn, names: list[str], caps: dict[str, int],
                    *, budget: QuotaBudget | None, greedy: bool,
                    rejected: Mapping[str, Reason]) -> tuple[Counter[str], Reason | None] | Reason:
    """Units (groups of `spec.group_size`) per cluster for a weighted request, from `names` (the clusters that
    pass its filters, best first) and `caps` (units each fits, read by key: pools.LazyFitCounts computes them on
    first use; what this takes is taken off); with why some wait (None: none does). Not
    `greedy` (a first placement): a Reason as soon as one region cannot take its share."""
    g = max(1, request.spec.group_size)
    one = replace(request, replicas=g, kept_regions=(), kept_replicas=(), model_caps=())
    counts: Counter[str] = Counter()
    shorts: list[tuple[str, int, int, list[str]]] = []  # region, its units, units that fit, its clusters
    need = targets(request, g)
    for region in sorted(need):
        want = need[region]
        there = [n for n in names if txn.get(n).region == region]
        got = 0
        for n in there:
            if got == want:
                break
            k = min(want - got, caps[n])
            if budget is not None and k:
                k = budget.take(one, txn.get(n), k)
            if k > 0:
                counts[n] += k
                caps[n] -= k
                got += k
        if got < want:
            shorts.append((region, want, got, there))
    if not shorts:
        return counts, None
    reason = _short_reason(request, g, shorts, txn, rejected)
    if not greedy or not counts:
        return reason
    return counts, reason


def _short_reason(request: PlacementRequest, g: int, shorts: list[tuple[str, int, int, list[str]]], txn: Txn,
                  rejected: Mapping[str, Reason]) -> Reason:
    """Why the weighted regions short of their share wait: each region, its share, what fits and where."""
    said = ", ".join(f"{r}: {w}" for r, w in request.spec.region_weights)
    parts = []
    nowhere = True
    for region, want, got, there in shorts:
        if there:
            nowhere = False
            where = f"on {', '.join(there[:3])}{', ...' if len(there) > 3 else ''}"
        else:
            members = [n for n in txn.names if txn.get(n).region == region]
            why = sorted({rejected[n].code.value for n in members if n in rejected})
            where = (f"no cluster there can host one ({', '.join(why)})" if members else
                     "no Ready cluster there")
        parts.append(f"{region}'s share is {want * g} replicas, {got * g} fit there now ({where})")
    if nowhere:
        code = ReasonCode.REGION_UNAVAILABLE
    else:
        code = ReasonCode.INSUFFICIENT_ACCELERATORS if request.accelerator_milli else ReasonCode.INSUFFICIENT_CPU
    return Reason(code, f"{FIELD} ({said}) splits the replicas; " + "; ".join(parts)
                  + "; they wait there, never moved to another region")


__all__ = ["FIELD", "shares", "split", "targets", "weighted_counts"]
