"""A report above its provider's `maxAccelerators` is clamped to the bound, not refused.

Why: the bound is a security trust bound (security/trust.py): an agent of a provider may not claim more room than
the provider contracted, at any price, and draw every tenant's work. A report over it used to be refused whole
(`implausible_report`), and the cluster kept its last report within the bound. But a provider adding one node
past the bound then froze its whole cluster's capacity view: drains, failures and cordons all went unseen, an
L40S job was sent to two cordoned nodes, and nothing said so but an agent WARNING every 2 s (outside provider QA
F4). Now the federator takes the report and offers at most the bound:

- the bound and the totals are in whole-device equivalents, the unit of every total a person reads
  (`model.sharing.accelerator_milli_of`: a MIG partition counts as its share of a device);
- the excess is taken out of the pools with the fewest devices in use first, then the smallest (ties: vendor,
  then model, by name), so the pools running work keep their room, and a node of a new model added idle past
  the bound is what is left out;
- within a pool, whole free nodes are taken out, the least free first (a node with 8 free devices, the slot of
  a big gang, is the last to go), and the pool's total and allocatable shrink by what they held: what is in
  use stays as reported, so the placements the report lists still add up (server/consistency.py);
- devices in use are never taken out: a report whose devices in use alone exceed the bound (the operator
  lowered it below what runs) is taken with none free in its clamped pools, since room is what draws work.

A node moved out takes at most its free devices, so a clamped cluster may offer a few devices under the bound,
never over it. The clamp is deterministic (the same report gives the same result) and stateless.

It is visible: `federator get clusters` shows the cluster `Ready,OverBound` (ClusterStatus.over_bound, the
federator's words); the federator logs at WARNING when a cluster goes over its bound (and when the excess
changes), and at INFO when it is back within; `federator_reports_clamped_total{cluster}` counts clamped reports;
and the agent is told once per change with an Error of reason `over_bound`, which the reference agent logs at
ERROR once and counts in `federator_agent_messages_rejected_total{reason}`.
"""

from __future__ import annotations

import math
from dataclasses import replace

from federator.model import MILLI, AcceleratorPool, ClusterCapacity
from federator.model.resources import format_accelerators

OVER_BOUND = "over_bound"  # the Error's reason: the report is applied, clamped to the provider's bound


def _take_free_nodes(pool: AcceleratorPool, units: int) -> tuple[AcceleratorPool, int]:
    """`pool` with whole free nodes, the least free first, taken out until at least `units` free devices are
    gone (or none is left); and how many went. A node taken out leaves the pool: its free devices leave the
    total and allocatable counts, and its bucket's room classes lose it."""
    hist = list(pool.nodes_by_free)
    gone = 0
    moved: dict[int, int] = {}  # bucket -> nodes taken out of it
    for i in range(1, len(hist)):
        if gone >= units:
            break
        take = min(hist[i], math.ceil((units - gone) / i))
        if take:
            hist[i] -= take
            moved[i] = take
            gone += take * i
    classes = []
    for bucket, cpu, mem, count in pool.room_classes:
        out = min(count, moved.get(bucket, 0)) if bucket > 0 else 0
        if out:
            moved[bucket] -= out
        if count - out:
            classes.append((bucket, cpu, mem, count - out))
    # A bucket left with no node has no room to say; one left with some keeps its roomiest node's (the nodes
    # taken out are not told apart in it, so it may be one of them: the agent refuses a replica that does not fit).
    host_room = tuple((0, 0) if 0 < i < len(hist) and hist[i] == 0 else r for i, r in enumerate(pool.host_room))
    return replace(pool, nodes_by_free=tuple(hist), total_accelerators=pool.total_accelerators - gone,
                   allocatable_accelerators=max(0, pool.allocatable_accelerators - gone),
                   host_room=host_room, room_classes=tuple(classes)), gone


def clamp(capacity: ClusterCapacity, bound: int) -> tuple[ClusterCapacity, int]:
    """`capacity` offering at most `bound` whole devices (module docstring), and the milli-devices taken out
    (0: within the bound, `capacity` itself)."""
    excess = capacity.total_accelerator_milli - bound * MILLI
    if excess <= 0:
        return capacity, 0
    pools = list(capacity.accelerator_pools)

    def in_use(i: int) -> tuple[int, int, str, str]:
        p = pools[i]
        return (p.accelerator_milli_of(max(0, p.total_accelerators - p.free_accelerators)),
                p.accelerator_milli_of(p.total_accelerators), p.vendor, p.accelerator_model)

    taken = 0
    for i in sorted(range(len(pools)), key=in_use):
        if taken >= excess:
            break
        pool = pools[i]
        unit = pool.accelerator_milli_of(1) or MILLI
        pools[i], gone = _take_free_nodes(pool, math.ceil((excess - taken) / unit))
        taken += gone * unit
    kept = tuple(p for p in pools if p.total_accelerators > 0 or p.shared_devices)
    return replace(capacity, accelerator_pools=kept), taken


def clamped_message(*, reported_milli: int, bound: int, provider: str) -> str:
    """The federator's words for a clamped report: what was claimed and the bound. Nothing that changes as work
    starts and ends (what was left out), so the words change, and are said again, only when the claim or the
    bound does."""
    return (f"capacity.accelerator_pools: {format_accelerators(reported_milli)} accelerators in all (whole-device "
            f"equivalents over every pool) are more than maxAccelerators {bound}, the most the trust file lets one "
            f"cluster of provider {provider!r} report: the federator offers at most {bound}, leaving out free "
            "devices of the pools with the fewest in use, the smallest first; raise the provider's maxAccelerators "
            "(trust file) or take nodes out of the cluster")


__all__ = ["OVER_BOUND", "clamp", "clamped_message"]
