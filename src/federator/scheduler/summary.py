"""One reason for a job no cluster takes: the most severe code, with every cluster's story.

Its own module so that the place phase (cycle.py) and the spread count (spread.py) both tell a job the same
story without importing each other. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from federator.model import Reason, ReasonCode
from federator.scheduler.framework import ASKED_DEVICES_HAVE, OTHER_VENDORS_ONLY, PlacementRequest

# Most severe first: the reason we report is the one closest to fitting.
SEVERITY = [
    ReasonCode.RESERVED,  # it would fit but for room reserved for a gang (reservation.py): the nearest to fitting
    ReasonCode.GANG_DOES_NOT_FIT,
    ReasonCode.INSUFFICIENT_ACCELERATORS,
    ReasonCode.INSUFFICIENT_CPU,
    ReasonCode.INSUFFICIENT_MEMORY,
    ReasonCode.QUOTA_EXCEEDED,
    ReasonCode.LATENCY_BUDGET,
    ReasonCode.REGION_UNAVAILABLE,
    # Before the reasons no wait cures: a cluster that would take the job refused it a moment ago, in its own
    # words (a namespace not marked for the queue, an admission webhook, a name its controller refuses), which the
    # user can act on; "member-b has no H100 nodes" from the others read as the reason (AcceleratorUnavailable).
    # After the capacity reasons, which decide whether the job may preempt elsewhere.
    ReasonCode.RECENTLY_REFUSED,
    ReasonCode.SHARING_UNAVAILABLE,
    ReasonCode.ACCELERATOR_UNAVAILABLE,
    ReasonCode.POD_SECURITY,
    ReasonCode.WORKLOAD_KIND_UNSUPPORTED,
    ReasonCode.CLUSTER_NOT_READY,
    # Last: spec.clusters is a bound the user set, and the clusters it leaves out say so whatever else they
    # lack; it is the answer only when no cluster it allows said anything else. An allowed cluster without the
    # model, or Lost, read as ClusterAffinity, and users.md sent its user to widen spec.clusters (outside QA N2).
    ReasonCode.CLUSTER_AFFINITY,
]


def summarize(rejected: Sequence[Reason], clusters: int, request: PlacementRequest) -> Reason:
    """One reason for a job no cluster takes: the most severe code, with every cluster's story."""
    if clusters == 0:
        return Reason(ReasonCode.NO_CLUSTERS, "no member cluster is connected")
    codes = {r.code for r in rejected}
    code = next((c for c in SEVERITY if c in codes), rejected[0].code if rejected else ReasonCode.WAITING)
    parts: list[str] = []
    by_code: dict[ReasonCode, list[Reason]] = {}
    for r in rejected:
        by_code.setdefault(r.code, []).append(r)
    # The code's own story first, so the message says what the code says (a refusal's words first under
    # InsufficientAccelerators read as a mismatch: outside QA); then a refusal's, before the other codes': the
    # member's reason, not cut off after theirs.
    for c in sorted(by_code, key=lambda c: -2 if c is code else -1 if c is ReasonCode.RECENTLY_REFUSED
                    else SEVERITY.index(c) if c in SEVERITY else len(SEVERITY)):
        group = sorted(by_code[c], key=lambda r: (_distance(r), r.message))
        parts.extend(r.message for r in group[:3])
        if len(group) > 3:
            parts.append(f"{len(group) - 3} more clusters: {c}")
    return Reason(code, f"0/{clusters} clusters fit: " + "; ".join(parts))


def _distance(reason: Reason) -> int:
    """How far a cluster's AcceleratorUnavailable is from fitting, so the nearest are named before "N more
    clusters": the asked devices there but too small (or of unknown memory), then no such devices, then only
    other vendors' devices. A Hygon ask in a mostly-NVIDIA fleet was told of three NVIDIA members and not of the
    one Hygon member, whose devices' memory was unknown (outside QA re-test, vendors2 R6)."""
    return 0 if ASKED_DEVICES_HAVE in reason.message else 2 if OTHER_VENDORS_ONLY in reason.message else 1


__all__ = ["SEVERITY", "summarize"]
