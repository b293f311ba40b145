"""A five-vendor fleet and job mix for the benchmarks (issue 10), seeded.

Fleet: the providers of a national network each run their own vendor's devices, so cluster i is
mostly of vendor `VENDORS[i % 5]` (NVIDIA, AMD, Huawei Ascend, Cambricon, Hygon), and every other
cluster also holds some NVIDIA H100 nodes. NVIDIA clusters include a MIG pool (1g.10gb partitions
of H100s) and a time-sliced L40S pool. Names, memory and resource names come from the catalog, as
an agent reports them.

Jobs: each vendor's users ask in the form their job files use: NVIDIA users the legacy one-count
form (`nvidia.com/gpu` with `gpuModels`, as `common.JOB_MIX`), the others their vendor's resource
(`huawei.com/Ascend910: 16`, which a job file turns into one alternative of that vendor). With
`alternatives` > 0 that share of the jobs instead lists 2-3 alternatives across vendors (H100 or
16 x Ascend910B, MI300X or H100, any Cambricon or any Hygon device, by memory per device, ...).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from common import JOB_MIX, idle_cluster

from federator.catalog import builtin_catalog
from federator.model import (
    AcceleratorAlternative,
    AcceleratorPool,
    ClusterInfo,
    JobId,
    JobKind,
    JobSpec,
    Resources,
)
from federator.scheduler import PlacementRequest

GiB = 2**30
VENDORS = ("nvidia", "amd", "huawei", "cambricon", "hygon")
H100 = "NVIDIA-H100-80GB-HBM3"

# vendor -> (model, devices per node, share of the cluster's nodes, sharing, unit milli, model suffix, resource)
POOLS: dict[str, tuple[tuple[str, int, float, str, int, str, str], ...]] = {
    "nvidia": ((H100, 8, 0.35, "", 0, "", ""),
               ("NVIDIA-A100-SXM4-80GB", 8, 0.3, "", 0, "", ""),
               ("NVIDIA-L40S", 4, 0.15, "", 0, "", ""),
               (H100, 7, 0.1, "MIG", 142, "-MIG-1g.10gb", "nvidia.com/mig-1g.10gb"),
               ("NVIDIA-L40S", 4, 0.1, "TimeSlicing", 0, "-SHARED", "nvidia.com/gpu.shared")),
    "amd": (("AMD-Instinct-MI300X", 8, 0.6, "", 0, "", ""), ("AMD-Instinct-MI250X", 8, 0.4, "", 0, "", "")),
    "huawei": (("Ascend910B", 16, 0.7, "", 0, "", ""), ("Ascend310P", 8, 0.3, "", 0, "", "")),
    "cambricon": (("MLU590", 8, 0.5, "", 0, "", ""), ("MLU370-X8", 8, 0.5, "", 0, "", "")),
    "hygon": (("DCU-K100", 8, 0.6, "", 0, "", ""), ("DCU-Z100", 8, 0.4, "", 0, "", "")),
}


def _pool(vendor: str, model: str, per_node: int, count: int, sharing: str, unit: int, suffix: str,
          resource: str) -> AcceleratorPool:
    entry = builtin_catalog().describe_model(model, vendor)
    hist = [0] * max(9, per_node + 1)
    hist[per_node] = count
    total = count * per_node
    return AcceleratorPool(model + suffix, tuple(hist), total, total, vendor=vendor,
                           memory_mib=entry.memory_mib // (7 if sharing == "MIG" else 1),
                           resource_name=resource or entry.resource_name, sharing=sharing, unit_milli=unit)


def clusters(n: int, *, nodes: int = 1000, seed: int = 0, regions: int = 10) -> list[ClusterInfo]:
    """`n` clusters of about `nodes` idle nodes each, one vendor each (every other one with H100s too)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        vendor = VENDORS[i % len(VENDORS)]
        mix = list(POOLS[vendor])
        if vendor != "nvidia" and i % 2:
            mix = [(m, p, s * 0.8, *rest) for m, p, s, *rest in mix] + [(H100, 8, 0.2, "", 0, "", "")]  # type: ignore[misc]
        pools = []
        nodes_here = 0
        for model, per_node, share, sharing, unit, suffix, resource in mix:
            count = max(1, round(nodes * share * rng.uniform(0.7, 1.3)))
            pools.append(_pool(vendor if model != H100 else "nvidia", model, per_node, count, sharing, unit,
                               suffix, resource))
            nodes_here += count
        out.append(idle_cluster(i, regions, pools, nodes_here, rng))
    return out


A = AcceleratorAlternative
# Each non-NVIDIA vendor's own one-count asks: (kind, replicas range, alternatives), the job-file form
# `<vendor resource>: N` (+ gpuModels) becomes one alternative of that vendor per model.
VENDOR_ASKS: dict[str, tuple[tuple[JobKind, tuple[int, int], tuple[AcceleratorAlternative, ...]], ...]] = {
    "amd": ((JobKind.TRAINING, (1, 4), (A(8000, vendor="amd"),)),
            (JobKind.TRAINING, (1, 1), (A(1000, "MI250X", "amd"),)),
            (JobKind.INFERENCE, (2, 6), (A(1000, "MI300X", "amd"),))),
    "huawei": ((JobKind.TRAINING, (1, 4), (A(16000, "Ascend910B", "huawei"),)),
               (JobKind.TRAINING, (1, 2), (A(8000, vendor="huawei"),)),
               (JobKind.INFERENCE, (2, 8), (A(1000, "Ascend310P", "huawei"),))),
    "cambricon": ((JobKind.TRAINING, (1, 4), (A(8000, "MLU590", "cambricon"),)),
                  (JobKind.INFERENCE, (1, 4), (A(1000, vendor="cambricon"),))),
    "hygon": ((JobKind.TRAINING, (1, 4), (A(8000, "K100", "hygon"),)),
              (JobKind.TRAINING, (1, 1), (A(2000, vendor="hygon"),))),
}
# Jobs whose images exist for several vendors: alternatives across vendors, most preferred first.
CROSS_VENDOR: tuple[tuple[JobKind, tuple[int, int], tuple[AcceleratorAlternative, ...]], ...] = (
    (JobKind.TRAINING, (1, 4), (A(8000, "H100"), A(16000, "Ascend910B", "huawei"))),
    (JobKind.TRAINING, (1, 2), (A(8000, "MI300X", "amd"), A(8000, "H100"), A(8000, "A100"))),
    (JobKind.TRAINING, (1, 2), (A(4000, vendor="cambricon"), A(4000, vendor="hygon"))),
    (JobKind.TRAINING, (1, 1), (A(8000, min_memory_mib=80_000),)),
    (JobKind.INFERENCE, (2, 8), (A(1000, "L40S"), A(1000, "Ascend310P", "huawei"), A(1000, "MLU370"))),
    (JobKind.INFERENCE, (1, 1), (A(500, "MIG-1g.10gb"), A(1000, "Z100"))),
    (JobKind.TRAINING, (1, 2), (A(8000, "A100"), A(8000, "MI250X"), A(8000, "K100"))),
)


def jobs(n: int, *, seed: int = 0, alternatives: float = 0.0, queues: Sequence[str] = ("research", "serving", "batch"),
         regions: int = 10) -> list[PlacementRequest]:
    """`n` jobs: NVIDIA users as common.JOB_MIX, the other four vendors' users in their own resource,
    a fifth of the jobs each; with `alternatives`, that share lists alternatives across vendors."""
    rng = random.Random(seed)
    weights = [m[0] for m in JOB_MIX]
    out = []
    for i in range(n):
        cross = rng.random() < alternatives
        vendor = rng.choice(VENDORS)
        alts: tuple[AcceleratorAlternative, ...] = ()
        models: tuple[str, ...] = ()
        if cross:
            kind, (lo, hi), alts = rng.choice(CROSS_VENDOR)
            milli = 0
        elif vendor == "nvidia":
            _, kind, (lo, hi), milli, choices = rng.choices(JOB_MIX, weights=weights)[0]
            models = rng.choice(choices)
        else:
            kind, (lo, hi), alts = rng.choice(VENDOR_ASKS[vendor])
            milli = 0
        replicas = rng.randint(lo, hi)
        gpus = max(1, (alts[0].milli if alts else milli) // 1000)
        spec = JobSpec(name=f"job-{i:06d}", kind=kind, replicas=replicas,
                       resources=Resources(4000 * gpus, 32 * GiB * gpus, milli), accelerator_models=models,
                       queue=rng.choice(queues), priority=rng.choice((0, 0, 0, 10)),
                       preferred_regions=(f"region-{rng.randrange(regions):02d}",) if rng.random() < 0.2 else ())
        if alts:
            spec = replace(spec, accelerators=alts)
        out.append(PlacementRequest(JobId(spec.name), spec, replicas, float(i)))
    return out
