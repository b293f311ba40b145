"""An elastic gang's smaller count: what the place phase tries when the whole gang fits nowhere.

Why its own module: the contract is model/elastic.py's (JobSpec.min_replicas). The place phase (cycle.py) asks for
the whole gang first, through every filter, score, quota and fair-share check as any gang; only when that waits for
room does it look (dry: the place phase's own path, quota and the cluster it would take, nothing reserved) for the
largest smaller count down to the minimum that fits, by bisection, and places that: so the count placed is the
largest that fits in any one cluster now, and among clusters the one fitting most wins (a cluster fitting 3 of 4
before one fitting 2). Each count is an ordinary gang request (a `PlacementRequest` of that many replicas), so it is
placed all or nothing in ONE cluster and the reservation, quota, fair share and usage the cycle counts are at the
count placed. When not even the minimum fits, the gang waits as a request of its minimum: that is what preemption
makes room for and a reservation holds (`least`). A request for the rest of a job (fewer than spec.replicas asked)
is never made smaller: an elastic gang owes no rest (model/job.py `replicas_waiting`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from federator.model import NeverRunnable, Reason, ReasonCode
from federator.scheduler.elastic_regain import floor, regain_words
from federator.scheduler.fairshare import QuotaCheck
from federator.scheduler.framework import PlacementRequest

# What fewer replicas could cure: room, and a queue's quota (the quota counts the replicas placed).
_ROOM = frozenset({ReasonCode.GANG_DOES_NOT_FIT, ReasonCode.INSUFFICIENT_ACCELERATORS, ReasonCode.INSUFFICIENT_CPU,
                   ReasonCode.INSUFFICIENT_MEMORY, ReasonCode.QUOTA_EXCEEDED})


def shrinkable(request: PlacementRequest, why: Reason) -> bool:
    """Whether the place phase looks for a smaller count of `request`, which waits `why`: a whole elastic gang that
    waits for what fewer replicas could cure (room, or a quota: a whole gang over its queue's whole quota may have
    its minimum within it)."""
    spec = request.spec
    return spec.elastic and request.replicas == spec.replicas and why.code in _ROOM and \
        why.never in (None, NeverRunnable.QUOTA) and request.replicas > floor(spec, request.regain)


def largest(request: PlacementRequest, fits: Callable[[PlacementRequest], bool]) -> PlacementRequest:
    """A `shrinkable` request at the largest count from its floor (spec.min_replicas, or the count it regains after
    a loss: elastic_regain.py) to one below its size that `fits` says fits (a dry look: the place phase's quota and
    cluster choice, nothing reserved), by bisection; at the floor when none does (the place phase then tries that
    for its reason).

    Bisection, not every count down from the size: each count is a shape of its own, evaluated over every cluster,
    so 20 waiting gangs of 512 with a minimum of 1 over 100 clusters took 3.7 s a cycle counting down; a fit is
    monotone in the count (fewer replicas never need more room or quota), so log2 of the range of looks find the
    same count."""
    low, high = floor(request.spec, request.regain), request.replicas - 1
    if not fits(replace(request, replicas=low)):
        return replace(request, replicas=low)
    while low < high:  # low fits; the largest that fits is in [low, high]
        mid = (low + high + 1) // 2
        if fits(replace(request, replicas=mid)):
            low = mid
        else:
            high = mid - 1
    return replace(request, replicas=low)


def quota_held(request: PlacementRequest, chosen: PlacementRequest,
               quota_check: Callable[[PlacementRequest], QuotaCheck],
               room_fits: Callable[[PlacementRequest], bool]) -> Reason | None:
    """Why `chosen` (`largest`'s count of `request`) is not one more when its queue's quota, not room, chose it:
    one more replica fits by room alone (`room_fits`: the board's best cluster, no quota), and `largest` found it
    does not with the quota. None otherwise. Said beside the count placed (Decision.short, model.job.shortfall):
    a gang held short by its quota read the same as one held short by room (elasticqa63)."""
    more = replace(request, replicas=chosen.replicas + 1)
    if chosen.replicas >= request.replicas or not room_fits(more):
        return None
    check = quota_check(more)
    words = check.refused.message if check.refused is not None else "; ".join(check.notes)
    words = words.split(", more than the whole quota")[0]  # of the whole gang, not of the count placed
    at = f"; at {more.replicas}: {words}" if words else ""
    return Reason(ReasonCode.QUOTA_EXCEEDED,
                  f"its queue's quota, not room, held it to {chosen.replicas} (room fits {more.replicas}{at})")


def smallest(request: PlacementRequest) -> PlacementRequest:
    """The request at the count a "never fits the fleet" judgement (fleet_fit.py) is made at: an elastic gang's
    minimum (it may run at that), any other request as it is."""
    spec = request.spec
    if spec.elastic and request.replicas == spec.replicas:
        return replace(request, replicas=spec.min_replicas)
    return request


def least(requests: Sequence[PlacementRequest]) -> Sequence[PlacementRequest]:
    """`requests` as the reservation phase (reservation.py) reads them: an elastic gang that waits past the threshold
    reserves room for its minimum, the count it can start at, not for a whole gang that holds room from others for
    longer (the place phase then takes the largest count that fits, in that room or elsewhere)."""
    if not any(r.spec.elastic for r in requests):
        return requests
    return [smallest(r) for r in requests]


def elastic_note(request: PlacementRequest, why: Reason) -> Reason:
    """Why an elastic gang waits: what its floor (`why`, the last count tried) found, said as such: its minimum, or
    the count it regains after a loss and until when (elastic_regain.py)."""
    spec = request.spec
    if request.regain is not None:
        return replace(why, message=f"{regain_words(request.regain, floor(spec, request.regain), spec.minimum_named)}"
                                    f": {why.message}")
    if spec.workload_json:  # a brought PyTorchJob's minimum: its elasticPolicy's, not a field its user wrote
        source = spec.minimum_named.split(", ", 1)[1]
        return replace(why, message=f"not even its minimum ({spec.min_replicas} of {spec.replicas} replicas, "
                                    f"{source}) fits in one cluster: {why.message}")
    return replace(why, message=f"not even spec.minReplicas ({spec.min_replicas} of {spec.replicas} replicas) "
                                f"fits in one cluster: {why.message}")


__all__ = ["elastic_note", "largest", "least", "quota_held", "shrinkable", "smallest"]
