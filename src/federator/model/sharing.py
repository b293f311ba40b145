"""How a pool shares its devices, and what its own units are worth in whole devices.

Why a module of its own: the sharing values an agent reports (agent.proto `sharing`), the rule of which asks a
pool so shared serves, and the worth of a partition or a fraction in milli whole devices are read by far more
than `AcceleratorPool` (cluster.py): the scheduler's filter, a simulated member's binding, usage, quotas, fair
share and every total a person reads. They depend on nothing but the milli unit, so they sit apart from the pool
and its room arithmetic (pool_room.py), compiled with the rest of the model (pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from federator.model.resources import MILLI

#: GpuPool.sharing values a Kubernetes agent reports (backends/kube/devices.py Sharing).
SHARING_NONE = "None"
# Hardware partitions: NVIDIA MIG instances and Huawei Ascend static vNPUs (agent.proto `sharing`: the value kept its
# first vendor's name, which agents and federators of 0.11.0 and older know).
SHARING_MIG = "MIG"
SHARING_HAMI = "HAMi"
# What a model name asking for whole partitions contains ("H100-MIG-1g.10gb", "Ascend310P3-vNPU-2c",
# "MI300X-CPX": AMD's compute partition modes): naming a chip alone ("H100", "MI300X") means whole chips, never
# partitions of one.
PARTITION_MARKERS = ("MIG", "VNPU", "DPX", "TPX", "QPX", "CPX")


def names_partition(model: str) -> bool:
    """Whether a user's model name names a hardware partition (contains one of `PARTITION_MARKERS`, any case)."""
    upper = model.upper()
    return any(marker in upper for marker in PARTITION_MARKERS)


def sharing_serves(sharing: str, unit_milli: int, accelerator_milli: int) -> bool:
    """Whether a pool that shares its devices as `sharing` (AcceleratorPool.sharing; `unit_milli` for MIG) runs
    replicas of `accelerator_milli` (whole devices or a fraction) at all: the federator's filter and a simulated
    member's binding read the same rule."""
    fractional = accelerator_milli % MILLI != 0
    if not sharing or sharing == SHARING_HAMI:
        return True
    if sharing == SHARING_NONE:
        return not fractional
    if sharing == SHARING_MIG:
        return not fractional or accelerator_milli <= unit_milli
    return fractional  # time-slicing, MPS: a replica is an access to a GPU, never a GPU


class _Shared(Protocol):
    @property
    def sharing(self) -> str: ...
    @property
    def unit_milli(self) -> int: ...


class _Counted(_Shared, Protocol):
    @property
    def vendor(self) -> str: ...
    @property
    def free_accelerators(self) -> int: ...
    @property
    def total_accelerators(self) -> int: ...


class _Held(_Counted, Protocol):
    @property
    def quota_held_accelerators(self) -> int: ...


def accelerator_milli_of(pool: _Shared, units: int) -> int:
    """`units` of a pool's own counts (total, allocatable, free, quota held) in milli whole devices: 1000 each, a
    MIG partition its `unit_milli` (125 for a 1g.10gb of an 80 GB GPU). A pool counts its own units; every total a
    person reads over several pools (`get clusters`, federator_cluster_accelerators, a MemberCluster's status) is in
    whole-device equivalents, the unit a job's ACCELERATORS and the usage bill use, so that 14 1g.10gb partitions
    add 1.75 to a fleet's total, not 14, and a region's use does not change with how its nodes are partitioned.
    A time-sliced pool already counts its physical devices."""
    if pool.sharing == SHARING_MIG and pool.unit_milli > 0:
        return units * pool.unit_milli
    return units * MILLI


def held_milli(accelerator_milli: int, unit_milli: int) -> int:
    """What one replica asking `accelerator_milli` holds, in milli whole devices, on a pool whose devices are
    partitions worth `unit_milli` each (0: whole devices, or shared ones): whole partitions, one for a fraction
    (it has the partition to itself) and one per device asked for a whole count (a partition asked by name), each
    at its worth; on any other pool what was asked. What usage bills and quotas and fair share count: a 1g.10gb
    partition of an 80 GB GPU asked by name holds 125, not 1000; a 300m replica on a 500m partition holds 500."""
    if unit_milli <= 0 or accelerator_milli <= 0:
        return accelerator_milli
    return max(1, accelerator_milli // MILLI if accelerator_milli % MILLI == 0 else 1) * unit_milli


def partition_worth(pool: _Shared | None) -> int:
    """What one device of `pool` is worth in milli-devices when its devices are partitions (sharing MIG: MIG
    profiles, Ascend vNPU templates): its `unit_milli`; 0 for whole or shared devices (counted as asked)."""
    return pool.unit_milli if pool is not None and pool.sharing == SHARING_MIG and pool.unit_milli > 0 else 0


def pool_unit(sharing: str) -> str:
    """What a pool's own counts count, where it is not whole devices ("partitions" for MIG; "" otherwise): the word
    a per-model row shows after them, so '14/14 partitions' is not read as 14 GPUs."""
    return "partitions" if sharing == SHARING_MIG else ""


def accelerator_milli_totals(pools: Iterable[_Held]) -> tuple[int, int, int]:
    """(free, total, quota held) accelerator milli over `pools`, in whole-device equivalents (`accelerator_milli_of`):
    the totals people read of a cluster, from a report's pools (ClusterCapacity) or a BASIC view's summary
    (cli/cluster_view.py) alike, computed here alone."""
    free = total = held = 0
    for p in pools:
        free += accelerator_milli_of(p, p.free_accelerators)
        total += accelerator_milli_of(p, p.total_accelerators)
        held += accelerator_milli_of(p, p.quota_held_accelerators)
    return free, total, held


def vendor_totals(pools: Iterable[_Counted]) -> dict[str, tuple[int, int]]:
    """vendor -> (free, total) accelerator milli (whole-device equivalents, `accelerator_milli_of`) over `pools`,
    sorted by vendor (a report's pools, or a summary's)."""
    out: dict[str, tuple[int, int]] = {}
    for p in pools:
        free, total = out.get(p.vendor, (0, 0))
        out[p.vendor] = (free + accelerator_milli_of(p, p.free_accelerators),
                         total + accelerator_milli_of(p, p.total_accelerators))
    return dict(sorted(out.items()))
