"""Device groups -> the scheduler's accelerator pools: a pure function.

A pool is one (vendor, model) of one cluster: per node, how many whole devices
are free (a histogram), plus the partly used devices that fractional replicas
may still share. Devices of unusable nodes (not Ready, cordoned, tainted)
count in the total but offer nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from federator.backends.kube.devices import DeviceGroup, Sharing
from federator.model import AcceleratorPool
from federator.model.cluster import DRA_SUFFIX
from federator.model.pool_room import one_node_room, room_classes

_HISTOGRAM_MIN = 9  # 0..8 free devices, as in the simulated backend


def pools(groups: Iterable[DeviceGroup], usable_nodes: Collection[str],
          room: Mapping[str, tuple[int, int]] | None = None) -> tuple[AcceleratorPool, ...]:
    """One pool per (vendor, model), sorted by model then vendor.

    With `room` (node -> free CPU milli and memory bytes), each pool says per bucket of whole free
    devices, and per free part of shared ones, the free CPU and memory of one of those nodes, the
    roomiest (`one_node_room`), and every node's, counted by class (`room_classes`): the federator's node
    fit (AcceleratorPool.room_classes; host_room and shared_room for federators older than the classes).
    """
    by_key: dict[tuple[str, str], list[DeviceGroup]] = {}
    for g in groups:
        by_key.setdefault(g.key, []).append(g)
    out = []
    for (vendor, model), members in sorted(by_key.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        hist = [0] * _HISTOGRAM_MIN
        shared: dict[int, int] = {}
        total = allocatable = quota_held = 0
        per_node: dict[str, int] = {}
        installed: dict[str, int] = {}  # devices per node, usable or not: the largest is what one replica could get
        bucket_rooms: dict[int, list[tuple[int, int]]] = {}
        shared_rooms: dict[int, list[tuple[int, int]]] = {}
        node_rooms: list[tuple[int, int, int]] = []  # (whole free, CPU, memory) per node, for the room classes
        for g in members:
            total += g.devices
            installed[g.node] = installed.get(g.node, 0) + g.devices
            if g.node not in usable_nodes:
                continue
            allocatable += g.devices
            quota_held += g.quota_held_units
            per_node[g.node] = per_node.get(g.node, 0) + g.free_devices()
            rest = g.free_rest_milli()
            if rest:
                shared[rest] = shared.get(rest, 0) + 1
                if room is not None:
                    shared_rooms.setdefault(rest, []).append(room.get(g.node, (0, 0)))
        for node, free in per_node.items():
            if free >= len(hist):
                hist.extend([0] * (free + 1 - len(hist)))
            hist[free] += 1
            if room is not None:
                cpu, mem = room.get(node, (0, 0))
                bucket_rooms.setdefault(free, []).append((cpu, mem))
                node_rooms.append((free, cpu, mem))
        first = members[0]
        host_room = tuple(one_node_room(bucket_rooms.get(i, ())) for i in range(len(hist))) if room is not None \
            else ()
        out.append(AcceleratorPool(model, tuple(hist), total, allocatable, shared_devices=tuple(sorted(shared.items())),
                           host_room=host_room,
                           shared_room=tuple(sorted((f, *one_node_room(r)) for f, r in shared_rooms.items())),
                           room_classes=room_classes(node_rooms, (
                               (f, *r) for f, rs in shared_rooms.items() for r in rs)) if room is not None else (),
                           sharing=first.sharing.value,
                           unit_milli=first.unit_milli if first.sharing is Sharing.MIG else 0,
                           quota_held_accelerators=quota_held,
                           largest_node_accelerators=max(installed.values(), default=0),
                           **_extra(vendor, first)))
    return tuple(out)


def _extra(vendor: str, g: DeviceGroup) -> dict[str, Any]:
    """The pool fields beyond the histogram, where the model has them."""
    fields = set(getattr(AcceleratorPool, "__dataclass_fields__", {}))
    extra: dict[str, Any] = {"vendor": vendor, "memory_mib": g.memory_mib,
                             "resource_name": g.resource or g.dra_class + DRA_SUFFIX, "family": g.family}
    return {k: v for k, v in extra.items() if k in fields}


__all__ = ["Sharing", "pools"]
