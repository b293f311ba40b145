"""Whether a capacity report agrees with the placements it lists: a pure function, and what the federator does.

Why: CapacityReport.placement_ids says "these placements' resources are already subtracted in this report", and
the federator then holds nothing for them (server/cycle_snapshot.py, `reserved_info`). An agent whose arithmetic is
wrong (it listed its running 1 x 8 placement yet reported the pool's 16 devices all free) made the federator book
the same devices again: four 1 x 8 gangs were placed on a 16-device pool, and `get clusters` said 16/16 free
(outside QA F7). Nothing said so, to the provider or to anyone.

The check is the cheap one the report itself allows, per pool: the accelerators of the live placements it lists
on that pool cannot be more than the pool's devices that are not whole free (total_accelerators less the whole
free devices of nodes_by_free). Whole-free is the only part an honest agent cannot have used, whatever else it
counts (devices of unusable nodes, quota held back, shared devices all count as not whole free), so the bound is
lenient by construction. What the listed placements of a pool hold together, at least:

- whole devices (a multiple of 1000 milli per replica): replicas x devices, summed;
- fractions: on a pool that shares by milli-devices (sharing ""), ceil(the sum of all their milli / 1000), since
  fractions of several placements may share a device; on a time-sliced, MPS or HAMi pool, whose units are accesses
  and not exact shares of a device, 1 in all;
- on a MIG pool, a partition per replica (a partition serves one replica), whatever it asked;
- a pool the report no longer has at all, under a listed live placement: 1.

A contradicting pool's report is still applied (the rest of it is as good as any), but its listed placements are
taken as NOT subtracted: the federator holds their resources itself, as for a placement the report does not list,
so nothing is booked twice. The agent is told with an Error (reason `inconsistent_report`, naming the pool and the
numbers; the stream goes on), it is counted (federator_inconsistent_reports_total{cluster}), and logged once each
time the cluster's set of contradicting pools changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

from federator.model import MILLI, ClusterCapacity, JobSpec, Placement
from federator.model.cluster import SHARING_MIG, AcceleratorPool

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


def least_used(pool: AcceleratorPool, placements: Iterable[Placement]) -> int:
    """The fewest of `pool`'s devices (partitions for MIG) that `placements`, all on it, can hold together; see
    the module docstring. Fractions are summed before rounding up: two 500m replicas may share one device."""
    whole = fraction_milli = 0
    for p in placements:
        if p.accelerator_milli <= 0 or p.replicas <= 0:
            continue
        if pool.sharing == SHARING_MIG:  # a partition serves one replica, whatever it asked
            whole += p.replicas
        elif p.accelerator_milli % MILLI == 0:
            whole += p.replicas * (p.accelerator_milli // MILLI)
        else:
            fraction_milli += p.replicas * p.accelerator_milli
    if not fraction_milli:
        return whole
    if not pool.sharing:  # milli-devices are shares of a device
        return whole + math.ceil(fraction_milli / MILLI)
    return whole + 1  # TimeSlicing, MPS, HAMi: units are accesses, any number of them may share one device


def as_listed(placement: Placement, spec: JobSpec) -> Placement:
    """`placement` as this check counts it: a whole gang of unequal pod sets (JobSpec.pod_sets, whole devices
    only) as one replica of all its sets' devices together (21 for a learner 2 x 8, rollout 4 x 1, reward 1 x 1),
    not `replicas` x the largest ask (56, which a report of its 24 devices could never leave); itself otherwise."""
    if not spec.pod_sets or placement.replicas != spec.replicas:
        return placement
    return replace(placement, replicas=1, accelerator_milli=spec.total.accelerator_milli)


def _key(vendor: str, model: str) -> str:
    return f"{vendor}/{model}" if vendor else model


def contradictions(capacity: ClusterCapacity, listed: Iterable[Placement]) -> list[Contradiction]:
    """The pools of a report whose listed live placements (`listed`: those of its placement_ids that are live on
    its cluster) hold more than it leaves them, in pool order; [] when the report adds up."""
    by_key: dict[tuple[str, str], int] = {}
    for i, pool in enumerate(capacity.accelerator_pools):
        by_key.setdefault((pool.vendor, pool.accelerator_model), i)
        by_key.setdefault(("", pool.accelerator_model), i)
    held: dict[int, list[Placement]] = {}
    missing: dict[str, list[Placement]] = {}
    for p in listed:
        if p.accelerator_milli <= 0:
            continue
        found = by_key.get((p.accelerator_vendor, p.accelerator_model), by_key.get(("", p.accelerator_model)))
        if found is None:  # a pool holding a live placement vanished from the report
            missing.setdefault(_key(p.accelerator_vendor, p.accelerator_model), []).append(p)
        else:
            held.setdefault(found, []).append(p)
    out = []
    for i, ps in sorted(held.items()):
        pool = capacity.accelerator_pools[i]
        used = max(0, pool.total_accelerators - pool.free_accelerators)
        n = least_used(pool, ps)
        if n > used:
            out.append(Contradiction(_key(pool.vendor, pool.accelerator_model), i, n, used,
                                     tuple(sorted(p.placement_id for p in ps))))
    for key, ps in sorted(missing.items()):
        out.append(Contradiction(key, -1, 1, 0, tuple(sorted(p.placement_id for p in ps))))
    return out


__all__ = ["INCONSISTENT_REPORT", "Contradiction", "as_listed", "contradictions", "least_used"]
