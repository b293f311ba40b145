"""Device groups -> the scheduler's accelerator pools: a pure function.

A pool is one (vendor, model) of one cluster: per node, how many whole devices
are free (a histogram), plus the partly used devices that fractional replicas
may still share. Devices of unusable nodes (not Ready, cordoned, tainted)
count in the total but offer nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from federator.backends.kube.devices import DeviceGroup, Sharing
from federator.model import GpuPool

_HISTOGRAM_MIN = 9  # 0..8 free devices, as in the simulated backend


def pools(groups: Iterable[DeviceGroup], usable_nodes: Collection[str]) -> tuple[GpuPool, ...]:
    """One pool per (vendor, model), sorted by model then vendor."""
    by_key: dict[tuple[str, str], list[DeviceGroup]] = {}
    for g in groups:
        by_key.setdefault(g.key, []).append(g)
    out = []
    for (vendor, model), members in sorted(by_key.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        hist = [0] * _HISTOGRAM_MIN
        shared: dict[int, int] = {}
        total = allocatable = 0
        per_node: dict[str, int] = {}
        for g in members:
            total += g.devices
            if g.node not in usable_nodes:
                continue
            allocatable += g.devices
            per_node[g.node] = per_node.get(g.node, 0) + g.free_devices()
            rest = g.free_rest_milli()
            if rest:
                shared[rest] = shared.get(rest, 0) + 1
        for free in per_node.values():
            if free >= len(hist):
                hist.extend([0] * (free + 1 - len(hist)))
            hist[free] += 1
        first = members[0]
        out.append(GpuPool(model, tuple(hist), total, allocatable, shared_gpus=tuple(sorted(shared.items())),
                           **_extra(vendor, first)))
    return tuple(out)


def _extra(vendor: str, g: DeviceGroup) -> dict[str, Any]:
    """The pool fields beyond the histogram, where the model has them."""
    fields = set(getattr(GpuPool, "__dataclass_fields__", {}))
    extra: dict[str, Any] = {"vendor": vendor, "memory_mib": g.memory_mib,
                                "resource_name": g.resource or f"{g.dra_class} (DRA)",
                                "sharing": g.sharing.value, "unit_milli": g.unit_milli}
    return {k: v for k, v in extra.items() if k in fields}


__all__ = ["Sharing", "pools"]
