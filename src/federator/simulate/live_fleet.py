"""Today's fleet, as the live federator sees it, for `federator sim --fleet`: `federator get clusters -o yaml|json`.

A planner's what-if starts from the fleet that runs now; `sim` refused the live view as a fleet (outside QA,
planners P4). The view says per cluster its region, labels (provider, price) and, per accelerator pool, its
vendor, model, sharing, total devices and `nodes_by_free` (how many of its nodes have 0, 1, 2 ... devices free);
`memory_mib` and `largest_node_accelerators` where the federator writes them. It does not say the shape of each
node, so the fleet read from it is an approximation, said here and in docs/operators.md:

- a pool is `sum(nodes_by_free)` nodes sharing its `total_accelerators` as evenly as whole devices go (a pool
  with no histogram: nodes of `largest_node_accelerators`, else one node);
- the cluster's allocatable CPU and memory are shared evenly over those nodes (over one CPU-only node when the
  cluster has no pool): a CPU- or memory-heavy job may fit here where one real node would not have held it;
- the fleet is empty: the view's free counts mix the federated jobs (which a job list replays) with the
  members' own work, which it cannot tell apart, so both are left out;
- every listed cluster is a member, whatever its state (Lost, cordoned, draining): delete the entries of
  those a what-if leaves out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.backends.sim.fleet import ClusterSpec, NodeSpec, cluster_identity
from federator.catalog import catalog

_CLUSTER_KEYS = ("name", "region", "capacity")


class LiveFleetError(ValueError):
    """A cluster list that cannot be a fleet; names the file and the field."""


def is_cluster_list(doc: object) -> bool:
    """Whether a document is what `get clusters -o yaml|json` writes: a list of clusters with a capacity."""
    return isinstance(doc, list) and bool(doc) and all(
        isinstance(c, Mapping) and all(k in c for k in _CLUSTER_KEYS) for c in doc)


def fleet_of_cluster_list(doc: list[Any], *, source: str = "clusters") -> dict[str, ClusterSpec]:
    """Simulated clusters of the shape the live view gives (see the module's docstring for what is guessed)."""
    cat = catalog()
    out: dict[str, ClusterSpec] = {}
    for i, c in enumerate(doc):
        where = f"{source}: [{i}]"
        name, region, labels = cluster_identity(c, where, taken=out, error=LiveFleetError)
        cap = c.get("capacity") or {}
        if not isinstance(cap, Mapping):
            raise LiveFleetError(f"{where}.capacity: must be a mapping (get clusters -o yaml writes one)")
        pools = cap.get("accelerator_pools") or []
        if not isinstance(pools, list):
            raise LiveFleetError(f"{where}.capacity.accelerator_pools: must be a list")
        shapes: list[tuple[str, str, int, str, int, int]] = []  # (vendor, model, devices, sharing, unit, memory)
        for j, p in enumerate(pools):
            at = f"{where}.capacity.accelerator_pools[{j}]"
            if not isinstance(p, Mapping):
                raise LiveFleetError(f"{at}: must be a mapping")
            vendor, model = p.get("vendor") or "", p.get("accelerator_model")
            if not isinstance(model, str) or not model:
                raise LiveFleetError(f"{at}.accelerator_model: must be a model name")
            if not isinstance(vendor, str) or (vendor and cat.vendor(vendor) is None):
                raise LiveFleetError(f"{at}.vendor: unknown vendor {vendor!r} (the catalog has: "
                                     f"{', '.join(cat.vendor_names)}; add one with --accelerator-catalog)")
            total = _count(p, "total_accelerators", at)
            hist = p.get("nodes_by_free") or []
            if not isinstance(hist, list) or not all(_whole(n) for n in hist):
                raise LiveFleetError(f"{at}.nodes_by_free: must be a list of node counts")
            largest = _count(p, "largest_node_accelerators", at)
            nodes = sum(hist) or (-(-total // largest) if largest else 1 if total else 0)
            sharing = p.get("sharing") or ""
            if not isinstance(sharing, str):
                raise LiveFleetError(f"{at}.sharing: must be a string")
            unit, memory = _count(p, "unit_milli", at), _count(p, "memory_mib", at)
            for k in range(nodes):  # the devices as evenly as whole ones go
                devices = total // nodes + (1 if k < total % nodes else 0)
                shapes.append((vendor, model, devices, sharing, unit, memory))
        cpu, mem = _count(cap, "cpu_milli_allocatable", f"{where}.capacity"), \
            _count(cap, "memory_bytes_allocatable", f"{where}.capacity")
        n = max(len(shapes), 1)
        node_list = [NodeSpec(f"{name}-n{k}", model, devices, cpu // n, mem // n, vendor=vendor, sharing=sharing,
                              unit_milli=unit, accelerator_memory_mib=memory)
                     for k, (vendor, model, devices, sharing, unit, memory) in enumerate(shapes)]
        if not node_list and (cpu or mem):
            node_list = [NodeSpec(f"{name}-n0", "", 0, cpu, mem)]
        out[name] = ClusterSpec(name, region, labels, tuple(node_list))
    return out


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(m: Mapping[str, Any], key: str, where: str) -> int:
    value = m.get(key, 0)
    if value is None:
        return 0
    if not _whole(value):
        raise LiveFleetError(f"{where}.{key}: must be a whole number, got {value!r}")
    return int(value)


__all__ = ["LiveFleetError", "fleet_of_cluster_list", "is_cluster_list"]
