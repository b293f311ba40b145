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

Which nodes, per resource (`flavor_nodes`): only those a flavor of the
ClusterQueue for the resource can run on. Kueue assigns a pod set a flavor
only when the pods' nodeSelector (and required node affinity) agrees with the
ResourceFlavor's `spec.nodeLabels`, and then adds those labels to the pods'
nodeSelector; so a node carries a flavor's devices when it has every one of
its nodeLabels (a flavor without nodeLabels matches every node). A queue
whose one flavor `h100` has `nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3`
never admits a pod pinned to A100 nodes ("flavor h100 doesn't match node
affinity"), yet the agent reported the A100s free, and an A100 job was sent
there to wait for the Kueue admission timeout (found on the test bed). The
free devices of a node no flavor matches are held like an uncovered
resource's. A flavor the ClusterQueue names that does not exist matches no
node (Kueue makes such a queue inactive).

Each flavor's quota is spent on its own nodes (`flavor_quota`): a queue with
flavor `h100` (8 GPUs, H100 nodes) and flavor `a100` (8 GPUs, A100 nodes)
admits 8 H100s, not 16. Summed over the flavors, the report showed 16 H100s
free, a 2 x 8 H100 gang was sent there, and Kueue, which gives a pod set one
flavor's quota, never admitted it. A node several flavors run on spends them
in the queue's order, as Kueue tries them.

A quota several pools share (a flavor without nodeLabels, or one whose labels
several models' nodes carry, and the resource's total over the flavors) is
spent by each pool (vendor, model) on its own, the whole of it for each
(`within_quota`). A gang runs on one pool, so what Kueue would admit of it
is all the quota left. Spent once over every pool, the freest nodes took it:
member-b's one flavor of 8 GPUs, A100 and L40S nodes, was reported as 8 A100s
free and the L40S pool all held, so a 2 x 4 L40S gang Kueue admitted at once
when created on the member was never sent there (outside tester F4). What a
pool reports is still what the queue admits of a gang on it, so a gang over
the quota is not sent; two gangs sent at once to two pools that share the
quota may together exceed it, and the second then waits on Kueue: the Kueue
admission timeout covers that, as it covers a cohort's lending.

Shared accelerators (time-slicing, HAMi) are left as they are: Kueue counts
their units, not devices, and a fraction's quota is not a device's.

Pure: plain dicts (the API objects) in, values out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from federator.backends.kube.devices import DeviceGroup, Sharing, quantity_int

Obj = Mapping[str, Any]

_EXACT = (Sharing.NONE, Sharing.MIG)  # kinds whose free units are whole devices (or partitions) Kueue counts as such


def _reserved(cluster_queue: Obj) -> dict[tuple[str, str], int]:
    """What the queue has reserved, per (flavor, resource): its `status.flavorsReservation`."""
    out: dict[tuple[str, str], int] = {}
    for flavor in (cluster_queue.get("status") or {}).get("flavorsReservation") or []:
        for r in flavor.get("resources") or []:
            out[(str(flavor.get("name", "")), str(r.get("name", "")))] = quantity_int(r.get("total"))
    return out


def headroom(local_queue: Obj | None, cluster_queue: Obj | None, resources: Iterable[str]) -> dict[str, int] | None:
    """Units of each of `resources` the ClusterQueue behind the LocalQueue would still admit, for the resources
    it holds back; None when that is not known (no LocalQueue, or its ClusterQueue not seen)."""
    if local_queue is None or cluster_queue is None:
        return None
    spec = cluster_queue.get("spec") or {}
    cohort = bool(spec.get("cohortName") or spec.get("cohort"))
    reserved = _reserved(cluster_queue)
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


def flavor_nodes(cluster_queue: Obj | None, flavors: Mapping[str, Obj], nodes: Iterable[Obj],
                 resources: Iterable[str]) -> dict[str, set[str]]:
    """Per resource the ClusterQueue covers, the names of the nodes that have every nodeLabel of at least one of
    its flavors for it (`flavors`: the ResourceFlavors by name); resources it does not cover are left out
    (`headroom` gives them none)."""
    labelled = [(str((n.get("metadata") or {}).get("name", "")), (n.get("metadata") or {}).get("labels") or {})
                for n in nodes]
    out: dict[str, set[str]] = {}
    for resource in resources:
        for group in ((cluster_queue or {}).get("spec") or {}).get("resourceGroups") or []:
            if resource not in (group.get("coveredResources") or []):
                continue
            matched = out.setdefault(resource, set())
            for flavor in group.get("flavors") or []:
                found = flavors.get(str(flavor.get("name", "")))
                if found is None:
                    continue  # no such ResourceFlavor: Kueue admits nothing with it
                want = (found.get("spec") or {}).get("nodeLabels") or {}
                matched.update(name for name, labels in labelled
                               if all(labels.get(k) == v for k, v in want.items()))
    return out


@dataclass(frozen=True)
class FlavorRoom:
    """One flavor of the ClusterQueue for one resource: the nodes it runs on and the units it would still admit
    (None: no bound the agent can see, a cohort's lending)."""

    flavor: str
    nodes: frozenset[str]
    left: int | None


def flavor_quota(local_queue: Obj | None, cluster_queue: Obj | None, flavors: Mapping[str, Obj],
                 nodes: Iterable[Obj], resources: Iterable[str]) -> dict[str, list[FlavorRoom]] | None:
    """Per resource the ClusterQueue covers, its flavors for it in the queue's order, each with its nodes
    (`flavor_nodes`'s rule) and its own quota left (`headroom`'s rule, per flavor); None when not known."""
    if local_queue is None or cluster_queue is None:
        return None
    spec = cluster_queue.get("spec") or {}
    cohort = bool(spec.get("cohortName") or spec.get("cohort"))
    reserved = _reserved(cluster_queue)
    labelled = [(str((n.get("metadata") or {}).get("name", "")), (n.get("metadata") or {}).get("labels") or {})
                for n in nodes]
    out: dict[str, list[FlavorRoom]] = {}
    for resource in resources:
        for group in spec.get("resourceGroups") or []:
            if resource not in (group.get("coveredResources") or []):
                continue
            rooms = out.setdefault(resource, [])
            for flavor in group.get("flavors") or []:
                name = str(flavor.get("name", ""))
                found = flavors.get(name)
                want = ((found or {}).get("spec") or {}).get("nodeLabels") or {}
                runs_on = frozenset() if found is None else frozenset(
                    n for n, labels in labelled if all(labels.get(k) == v for k, v in want.items()))
                rooms.append(FlavorRoom(name, runs_on, _flavor_left(flavor, resource, cohort, reserved)))
    return out


def _flavor_left(flavor: Obj, resource: str, cohort: bool, reserved: Mapping[tuple[str, str], int]) -> int | None:
    for r in flavor.get("resources") or []:
        if r.get("name") != resource:
            continue
        if cohort and r.get("borrowingLimit") is None:
            return None  # what the cohort lends is not the agent's to see
        quota = quantity_int(r.get("nominalQuota")) + (quantity_int(r.get("borrowingLimit")) if cohort else 0)
        return max(0, quota - reserved.get((str(flavor.get("name", "")), resource), 0))
    return 0  # the flavor gives the resource no quota


def within_quota(groups: Iterable[DeviceGroup], left: Mapping[str, int],
                 usable: Collection[str] | None = None,
                 eligible: Mapping[str, Collection[str]] | None = None,
                 by_flavor: Mapping[str, Sequence[FlavorRoom]] | None = None) -> list[DeviceGroup]:
    """`groups` with the free devices beyond what `left` allows marked as held (used, and counted as
    `quota_held_units`), the freest nodes first kept whole; groups of other resources, and shared ones, as they
    are. With `usable`, only those nodes' devices spend the quota: a cordoned or not-Ready node offers nothing,
    and had its free devices taken the quota, the nodes that can run a replica were all reported held. With
    `eligible` (`flavor_nodes`), a node not listed for its resource has all its free devices held: no flavor
    of the queue runs there. With `by_flavor` (`flavor_quota`), a node's devices spend only the quota of the
    flavors that run on it, in the queue's order."""
    groups = list(groups)
    # Each pool (vendor, model) spends its own copy of the quota: a gang runs on one pool, so what the queue
    # would admit of it is the whole quota left, whichever other pools the same flavor runs on (module docstring).
    budget: dict[tuple[str, tuple[str, str]], int] = {}
    flavor_base = {(r, room.flavor): room.left for r, rooms in (by_flavor or {}).items() for room in rooms}
    flavor_left: dict[tuple[str, str, tuple[str, str]], int | None] = {}
    order = sorted(range(len(groups)), key=lambda i: (-groups[i].free_units, groups[i].node))
    out = list(groups)
    for i in order:
        g = groups[i]
        if g.sharing not in _EXACT or (usable is not None and g.node not in usable):
            continue
        if eligible is not None and g.resource in eligible and g.node not in eligible[g.resource]:
            if g.free_units:
                out[i] = replace(g, used_units=g.used_units + g.free_units,
                                 quota_held_units=g.quota_held_units + g.free_units)
            continue
        mine = [(g.resource, room.flavor, g.key) for room in (by_flavor or {}).get(g.resource, ())
                if g.node in room.nodes]
        for k in mine:
            flavor_left.setdefault(k, flavor_base[k[:2]])
        bounded = all(flavor_left[k] is not None for k in mine)
        if g.resource in left:
            budget.setdefault((g.resource, g.key), left[g.resource])
        if (g.resource, g.key) not in budget and not (mine and bounded):
            continue
        keep = min(g.free_units, budget.get((g.resource, g.key), g.free_units))
        if mine and bounded:
            keep = min(keep, sum(flavor_left[k] or 0 for k in mine))
        if (g.resource, g.key) in budget:
            budget[(g.resource, g.key)] -= keep
        spend = keep
        for k in mine:
            room = flavor_left[k]
            if room is not None:
                flavor_left[k] = room - min(spend, room)
                spend -= min(spend, room)
        if keep < g.free_units:
            held = g.free_units - keep
            out[i] = replace(g, used_units=g.used_units + held, quota_held_units=g.quota_held_units + held)
    return out


__all__ = ["FlavorRoom", "flavor_nodes", "flavor_quota", "headroom", "within_quota"]
