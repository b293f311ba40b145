"""Whether a capacity report agrees with the placements it lists: a pure function, and what the federator does.

Why: CapacityReport.placement_ids says "these placements' resources are already subtracted in this report", and
the federator then holds nothing for them (server/scheduling.py, `reserved_info`). An agent whose arithmetic is
wrong (it listed its running 1 x 8 placement yet reported the pool's 16 devices all free) made the federator book
the same devices again: four 1 x 8 gangs were placed on a 16-device pool, and `get clusters` said 16/16 free
(outside QA F7). Nothing said so, to the provider or to anyone.

The check is the cheap one the report itself allows, per pool: the accelerators of the live placements it lists
on that pool cannot be more than the pool's devices that are not whole free (total_accelerators less the whole
free devices of nodes_by_free). Whole-free is the only part an honest agent cannot have used, whatever else it
counts (devices of unusable nodes, quota held back, shared devices all count as not whole free), so the bound is
lenient by construction. Per placement, the least it can hold:

- whole devices (a multiple of 1000 milli per replica): replicas x devices; on a MIG pool, replicas (a partition
  each, whatever a whole-partition ask maps to);
- a fraction: on a pool that shares by milli-devices (sharing "" or HAMi), ceil(sum of milli / 1000); on a MIG
  pool, replicas (a partition each); on a time-sliced or MPS pool, whose units are accesses and not shares of a
  device, 1.

A contradicting pool's report is still applied (the rest of it is as good as any), but its listed placements are
taken as NOT subtracted: the federator holds their resources itself, as for a placement the report does not list,
so nothing is booked twice. The agent is told with an Error (reason `inconsistent_report`, naming the pool and the
numbers; the stream goes on), it is counted (federator_inconsistent_reports_total{cluster}), and logged once each
time the cluster's set of contradicting pools changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from federator.model import MILLI, ClusterCapacity, Placement
from federator.model.cluster import SHARING_HAMI, SHARING_MIG, AcceleratorPool

INCONSISTENT_REPORT = "inconsistent_report"  # the Error's reason: the report is applied, its claim is not trusted


@dataclass(frozen=True, slots=True)
class Contradiction:
    """One pool whose listed placements hold more than the report leaves them."""

    pool: str  # "vendor/model", as the report named it
    index: int  # its index in capacity.accelerator_pools; -1 when the report has no such pool
    listed: int  # the least the listed live placements of the pool hold
    used: int  # total_accelerators - whole free devices, as reported
    placement_ids: tuple[str, ...]  # the listed live placements of the pool, sorted

    def message(self) -> str:
        where = (f"capacity.accelerator_pools[{self.index}] ({self.pool})" if self.index >= 0
                 else f"capacity.accelerator_pools: no pool {self.pool}")
        return (f"{where}: capacity.placement_ids lists {len(self.placement_ids)} live placement(s) of the pool "
                f"holding at least {self.listed} accelerator(s) (e.g. {self.placement_ids[0]}), but the report "
                f"leaves only {self.used} not whole free (total_accelerators less the whole free of "
                f"nodes_by_free); the report is applied, and the federator holds those placements' resources "
                f"itself as if they were not listed")


def least_held(p: Placement, pool: AcceleratorPool) -> int:
    """The fewest of `pool`'s devices (partitions for MIG) placement `p` can hold; see the module docstring."""
    milli = p.accelerator_milli
    if milli <= 0 or p.replicas <= 0:
        return 0
    if pool.sharing == SHARING_MIG:
        return p.replicas
    if milli % MILLI == 0:
        return p.replicas * (milli // MILLI)
    if not pool.sharing or pool.sharing == SHARING_HAMI:
        return math.ceil(p.replicas * milli / MILLI)
    return 1  # TimeSlicing, MPS: units are accesses, any number of them may share one device


def _key(vendor: str, model: str) -> str:
    return f"{vendor}/{model}" if vendor else model


def contradictions(capacity: ClusterCapacity, listed: Iterable[Placement]) -> list[Contradiction]:
    """The pools of a report whose listed live placements (`listed`: those of its placement_ids that are live on
    its cluster) hold more than it leaves them, in pool order; [] when the report adds up."""
    by_key: dict[tuple[str, str], int] = {}
    for i, pool in enumerate(capacity.accelerator_pools):
        by_key.setdefault((pool.vendor, pool.accelerator_model), i)
        by_key.setdefault(("", pool.accelerator_model), i)
    held: dict[int, tuple[int, list[str]]] = {}
    missing: dict[str, list[Placement]] = {}
    for p in listed:
        if p.accelerator_milli <= 0:
            continue
        found = by_key.get((p.accelerator_vendor, p.accelerator_model), by_key.get(("", p.accelerator_model)))
        if found is None:  # a pool holding a live placement vanished from the report
            missing.setdefault(_key(p.accelerator_vendor, p.accelerator_model), []).append(p)
            continue
        n, ids = held.get(found, (0, []))
        ids.append(p.placement_id)
        held[found] = (n + least_held(p, capacity.accelerator_pools[found]), ids)
    out = []
    for i, (n, ids) in sorted(held.items()):
        pool = capacity.accelerator_pools[i]
        used = max(0, pool.total_accelerators - pool.free_accelerators)
        if n > used:
            out.append(Contradiction(_key(pool.vendor, pool.accelerator_model), i, n, used, tuple(sorted(ids))))
    for key, ps in sorted(missing.items()):
        out.append(Contradiction(key, -1, sum(max(1, p.replicas) for p in ps), 0,
                                 tuple(sorted(p.placement_id for p in ps))))
    return out


__all__ = ["INCONSISTENT_REPORT", "Contradiction", "contradictions", "least_held"]
