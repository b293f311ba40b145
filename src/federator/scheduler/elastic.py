"""An elastic gang's smaller counts: what the place phase tries when the whole gang fits nowhere.

Why its own module: the contract is model/elastic.py's (JobSpec.min_replicas). The place phase (cycle.py) asks for
the whole gang first, through every filter, score, quota and fair-share check as any gang; only when that waits for
room does it ask again at each smaller count down to the minimum, largest first, and takes the first that fits: so
the count placed is the largest that fits in any one cluster now, and among clusters the one fitting most wins
(a cluster fitting 3 of 4 before one fitting 2). Each count is an ordinary gang request (a `PlacementRequest` of
that many replicas), so it is placed all or nothing in ONE cluster and the reservation, quota, fair share and usage
the cycle counts are at the count placed. A request for the rest of a job (fewer than spec.replicas asked) is never
made smaller: an elastic gang owes no rest (model/job.py `replicas_waiting`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from federator.model import NeverRunnable, Reason, ReasonCode
from federator.scheduler.framework import PlacementRequest

# What fewer replicas could cure: room, and a queue's quota (the quota counts the replicas placed).
_ROOM = frozenset({ReasonCode.GANG_DOES_NOT_FIT, ReasonCode.INSUFFICIENT_ACCELERATORS, ReasonCode.INSUFFICIENT_CPU,
                   ReasonCode.INSUFFICIENT_MEMORY, ReasonCode.QUOTA_EXCEEDED})


def smaller(request: PlacementRequest, why: Reason) -> Iterator[PlacementRequest]:
    """The request at each count from one below its size down to spec.min_replicas, largest first; none for a
    request that is not a whole elastic gang, or that waits for something fewer replicas do not cure (a whole gang
    over its queue's whole quota is such a thing: its minimum may be within it)."""
    spec = request.spec
    if not spec.elastic or request.replicas != spec.replicas or why.code not in _ROOM or \
            why.never not in (None, NeverRunnable.QUOTA):
        return
    for n in range(request.replicas - 1, spec.min_replicas - 1, -1):
        yield replace(request, replicas=n)


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
    """Why an elastic gang waits: what its minimum count (`why`, the last count tried) found, said as such."""
    spec = request.spec
    return replace(why, message=f"not even spec.minReplicas ({spec.min_replicas} of {spec.replicas} replicas) "
                                f"fits in one cluster: {why.message}")


__all__ = ["elastic_note", "least", "smaller", "smallest"]
