"""Kueue mode: what the member's ClusterQueue would admit now, held against the accelerators the agent reports.

Why: Kueue's quota is the member's business, and the federator sees only
nodes. A member whose nodes hold 24 free GPUs behind a ClusterQueue with 8 GPUs
of quota looked to the federator like room for a 2 x 8 gang; the gang was sent
there, and Kueue held it suspended for ever ("... > maximum capacity (8)")
while another member sat idle (found on the test bed with the real Kueue).
So in Kueue mode the agent reports no more free accelerators than the
ClusterQueue behind its LocalQueue has quota left for, per resource name
(`headroom`), by marking the excess as held (`within_quota`): the freest nodes
keep their devices, so a gang Kueue would admit still finds whole nodes in the
report, and one it would not admit does not. The report says how many free
devices the quota holds (AcceleratorPool.quota_held_accelerators), so a job's
pending reason can say that the quota, not the nodes, is what is short.

What counts as left, per accelerator resource (nvidia.com/gpu, ...):

- over every flavor of the ClusterQueue that covers the resource, its
  `nominalQuota`, plus its `borrowingLimit` when the queue is in a cohort,
  less what the queue has reserved (`status.flavorsReservation`);
- a queue in a cohort with no `borrowingLimit` on the resource may borrow
  whatever its cohort leaves unused, which the agent cannot see: that resource
  is not held back (the Kueue admission timeout still covers it);
- a resource the ClusterQueue does not cover at all is one Kueue never admits
  ("resource ... unavailable in ClusterQueue"): nothing of it is free.

Shared accelerators (time-slicing, HAMi) are left as they are: Kueue counts
their units, not devices, and a fraction's quota is not a device's.

Pure: plain dicts (the API objects) in, values out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from typing import Any

from federator.backends.kube.devices import DeviceGroup, Sharing, quantity_int

Obj = Mapping[str, Any]

_EXACT = (Sharing.NONE, Sharing.MIG)  # kinds whose free units are whole devices (or partitions) Kueue counts as such


def headroom(local_queue: Obj | None, cluster_queue: Obj | None, resources: Iterable[str]) -> dict[str, int] | None:
    """Units of each of `resources` the ClusterQueue behind the LocalQueue would still admit, for the resources
    it holds back; None when that is not known (no LocalQueue, or its ClusterQueue not seen)."""
    if local_queue is None or cluster_queue is None:
        return None
    spec = cluster_queue.get("spec") or {}
    cohort = bool(spec.get("cohortName") or spec.get("cohort"))
    reserved: dict[tuple[str, str], int] = {}
    for flavor in (cluster_queue.get("status") or {}).get("flavorsReservation") or []:
        for r in flavor.get("resources") or []:
            name = str(r.get("name", ""))
            reserved[(str(flavor.get("name", "")), name)] = quantity_int(r.get("total"))
    out: dict[str, int] = {}
    for resource in resources:
        covered, left, unbounded = False, 0, False
        for group in spec.get("resourceGroups") or []:
            if resource not in (group.get("coveredResources") or []):
                continue
            covered = True
            for flavor in group.get("flavors") or []:
                for r in flavor.get("resources") or []:
                    if r.get("name") != resource:
                        continue
                    quota = quantity_int(r.get("nominalQuota"))
                    if cohort:
                        if r.get("borrowingLimit") is None:
                            unbounded = True
                        quota += quantity_int(r.get("borrowingLimit"))
                    left += max(0, quota - reserved.get((str(flavor.get("name", "")), resource), 0))
        if not covered:
            out[resource] = 0
        elif not unbounded:
            out[resource] = left
    return out


def within_quota(groups: Iterable[DeviceGroup], left: Mapping[str, int],
                 usable: Collection[str] | None = None) -> list[DeviceGroup]:
    """`groups` with the free devices beyond what `left` allows marked as held (used, and counted as
    `quota_held_units`), the freest nodes first kept whole; groups of other resources, and shared ones, as they
    are. With `usable`, only those nodes' devices spend the quota: a cordoned or not-Ready node offers nothing,
    and had its free devices taken the quota, the nodes that can run a replica were all reported held."""
    groups = list(groups)
    budget = dict(left)
    order = sorted(range(len(groups)), key=lambda i: (-groups[i].free_units, groups[i].node))
    out = list(groups)
    for i in order:
        g = groups[i]
        if g.sharing not in _EXACT or g.resource not in budget or (usable is not None and g.node not in usable):
            continue
        keep = min(g.free_units, budget[g.resource])
        budget[g.resource] -= keep
        if keep < g.free_units:
            held = g.free_units - keep
            out[i] = replace(g, used_units=g.used_units + held, quota_held_units=g.quota_held_units + held)
    return out


__all__ = ["headroom", "within_quota"]
