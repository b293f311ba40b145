"""Fake accelerator nodes of several vendors, labelled as the real device plugins label them.

kwok plays the kubelet, so a node is whatever the test bed writes into its
status and labels. These builders write what the real components publish on a
real node of that kind (sources in tests/testbed/README.md, "Vendor nodes"):

* NVIDIA, whole GPUs: ``nvidia.com/gpu`` (k8s-device-plugin) and the GPU
  feature discovery labels ``nvidia.com/gpu.product``, ``.count``, ``.memory``
  (MiB), ``.family``, ``.replicas``, ``nvidia.com/mig.capable``,
  ``nvidia.com/gpu.sharing-strategy``.
* NVIDIA MIG, mixed strategy: ``nvidia.com/mig-<g>g.<mem>gb`` resources, one per
  profile, and per profile ``nvidia.com/mig-<profile>.{product,count,memory,
  replicas,slices.gi,slices.ci,multiprocessors}``; ``nvidia.com/mig.strategy=mixed``;
  the parent GPU's labels stay (``nvidia.com/gpu.count`` counts MIG-enabled GPUs,
  ``nvidia.com/gpu.replicas=0``) while ``nvidia.com/gpu`` itself is 0.
* NVIDIA time-slicing: ``replicas`` copies of every GPU under ``nvidia.com/gpu``
  (product label gets ``-SHARED``) or, with ``renameByDefault``, under
  ``nvidia.com/gpu.shared`` (product label unchanged); ``nvidia.com/gpu.replicas``
  and ``nvidia.com/gpu.sharing-strategy=time-slicing``.
* HAMi: its device plugin registers ``deviceSplitCount`` slots per GPU under
  ``nvidia.com/gpu`` and the per-GPU facts (uuid, slots, memory MiB, cores %,
  type) as JSON in the ``hami.io/node-nvidia-register`` annotation; memory and
  cores (``nvidia.com/gpumem``, ``nvidia.com/gpucores``) are never node
  resources, HAMi's scheduler extender tells kube-scheduler to ignore them.
  The test bed has no extender, so such a member's kube-scheduler is told the
  same through NodeResourcesFit ``ignoredResources`` (``scheduler_ignored_resources``).
* Huawei Ascend (MindCluster Ascend Device Plugin): ``huawei.com/Ascend910`` for
  the whole 910 family (910A, 910B*, 910A3), label ``accelerator=huawei-Ascend910``,
  chip name ``huawei.com/npu.chip.name`` (and its deprecated twin
  ``node.kubernetes.io/npu.chip.name``), memory ``huawei.com/npu.chip.memory``
  (and ``mind-cluster/npu-chip-memory``), ``accelerator-type``, ``servertype``.
* AMD (ROCm k8s-device-plugin and its node labeller): ``amd.com/gpu`` and
  ``amd.com/gpu.{product-name,vram,family,device-id,cu-count,simd-count}``.
* DRA: devices published in ``resource.k8s.io/v1`` ResourceSlices by the fake
  driver (``fake_dra_driver.py``), in the shape the NVIDIA DRA driver uses:
  driver ``gpu.nvidia.com``, devices ``gpu-<i>`` with attributes ``type``,
  ``uuid``, ``productName``, ``brand``, ``architecture`` and capacity ``memory``.
  The node itself carries no extended GPU resource.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

try:
    from tests.testbed.testbed import DRA_DRIVER, DraDevice, NodeSpec
except ImportError:  # tests/testbed on sys.path
    from testbed import DRA_DRIVER, DraDevice, NodeSpec  # type: ignore[no-redef]

__all__ = [
    "AMD_MI300X",
    "ASCEND_910B",
    "DRA_DRIVER",
    "HAMI_IGNORED_RESOURCES",
    "amd_nodes",
    "ascend_nodes",
    "dra_gpu_nodes",
    "hami_nodes",
    "mig_nodes",
    "time_sliced_nodes",
    "vendor_fleet",
]

H100 = "NVIDIA-H100-80GB-HBM3"
H100_MEMORY_MIB = 81559
L4 = "NVIDIA-L4"
L4_MEMORY_MIB = 23034
A100 = "NVIDIA-A100-SXM4-80GB"
A100_MEMORY_MIB = 81920

ASCEND_910B = "910B3"  # huawei.com/npu.chip.name on an Atlas 800T A2
AMD_MI300X = "AMD_Instinct_MI300X_OAM"  # amd.com/gpu.product-name

#: HAMi's per-container asks that only its scheduler extender understands.
HAMI_IGNORED_RESOURCES: tuple[str, ...] = ("nvidia.com/gpumem", "nvidia.com/gpucores", "nvidia.com/gpumem-percentage")

#: H100 80GB MIG profiles: (memory MiB, multiprocessors, GPU-instance slices, compute-instance slices).
_H100_MIG: Mapping[str, tuple[int, int, int, int]] = {
    "1g.10gb": (9856, 16, 1, 1),
    "1g.20gb": (19968, 26, 1, 1),
    "2g.20gb": (19968, 32, 2, 2),
    "3g.40gb": (40192, 60, 3, 3),
    "4g.40gb": (40192, 64, 4, 4),
    "7g.80gb": (80768, 132, 7, 7),
}


def _gfd_labels(product: str, count: int, memory_mib: int, family: str, *, replicas: int = 1,
                sharing: str = "none", mig_capable: bool = False) -> dict[str, str]:
    return {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(count),
        "nvidia.com/gpu.memory": str(memory_mib),
        "nvidia.com/gpu.family": family,
        "nvidia.com/gpu.replicas": str(replicas),
        "nvidia.com/gpu.sharing-strategy": sharing,
        "nvidia.com/mig.capable": str(mig_capable).lower(),
    }


def _names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(count)]


def mig_nodes(prefix: str, count: int, profiles: Mapping[str, int], *, gpus: int = 8,
              product: str = H100, memory_mib: int = H100_MEMORY_MIB, **kw: Any) -> list[NodeSpec]:
    """Nodes whose ``gpus`` GPUs are all MIG-enabled, with ``profiles`` = {profile: instances per node}."""
    extra = dict(kw.pop("labels", {}))
    unknown = set(profiles) - set(_H100_MIG)
    if unknown:
        raise ValueError(f"unknown MIG profiles {sorted(unknown)}; known: {sorted(_H100_MIG)}")
    labels = _gfd_labels(product, gpus, memory_mib, "hopper", replicas=0, mig_capable=True)
    labels["nvidia.com/mig.strategy"] = "mixed"
    extended: dict[str, str] = {"nvidia.com/gpu": "0"}
    for profile, n in profiles.items():
        mem, sms, gi, ci = _H100_MIG[profile]
        key = f"nvidia.com/mig-{profile}"
        extended[key] = str(n)
        labels.update({
            f"{key}.product": f"{product}-MIG-{profile}",
            f"{key}.count": str(n),
            f"{key}.memory": str(mem),
            f"{key}.replicas": "1",
            f"{key}.multiprocessors": str(sms),
            f"{key}.slices.gi": str(gi),
            f"{key}.slices.ci": str(ci),
        })
    return [NodeSpec(name, "", 0, labels={**labels, **extra}, extended=extended, **kw)
            for name in _names(prefix, count)]


def time_sliced_nodes(prefix: str, count: int, *, gpus: int = 4, replicas: int = 4, renamed: bool = False,
                      product: str = L4, memory_mib: int = L4_MEMORY_MIB, **kw: Any) -> list[NodeSpec]:
    """NVIDIA nodes with time-slicing: ``replicas`` shares of each of ``gpus`` GPUs."""
    labels = _gfd_labels(product if renamed else f"{product}-SHARED", gpus, memory_mib, "ada-lovelace",
                         replicas=replicas, sharing="time-slicing")
    labels.update(kw.pop("labels", {}))
    resource = "nvidia.com/gpu.shared" if renamed else "nvidia.com/gpu"
    extended = {resource: str(gpus * replicas)}
    if renamed:
        extended["nvidia.com/gpu"] = "0"
    return [NodeSpec(name, "", 0, labels=labels, extended=extended, **kw) for name in _names(prefix, count)]


def hami_nodes(prefix: str, count: int, *, gpus: int = 4, split: int = 10, product: str = A100,
               memory_mib: int = A100_MEMORY_MIB, **kw: Any) -> list[NodeSpec]:
    """HAMi vGPU nodes: ``split`` slots per GPU under ``nvidia.com/gpu``, devices in the register annotation."""
    nvml_name = "NVIDIA " + product.removeprefix("NVIDIA-").replace("-", " ")
    labels = {"gpu": "on", **_gfd_labels(product, gpus, memory_mib, "ampere"), **kw.pop("labels", {})}
    out = []
    for name in _names(prefix, count):
        devices = [{"id": f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{name}-{i}')}", "index": i, "count": split,
                    "devmem": memory_mib, "devcore": 100, "type": f"NVIDIA-{nvml_name}", "numa": 0,
                    "mode": "hami-core", "health": True} for i in range(gpus)]
        annotations = {"hami.io/node-nvidia-register": json.dumps(devices, separators=(",", ":")),
                       "hami.io/node-handshake": "Reported 2026-11-30 00:00:00"}
        out.append(NodeSpec(name, "", 0, labels=labels, annotations=annotations,
                            extended={"nvidia.com/gpu": str(gpus * split)},
                            scheduler_ignored_resources=HAMI_IGNORED_RESOURCES, **kw))
    return out


def ascend_nodes(prefix: str, count: int, *, npus: int = 8, chip: str = ASCEND_910B, memory: str = "64G",
                 **kw: Any) -> list[NodeSpec]:
    """Atlas 800T A2-style nodes: ``npus`` Ascend 910B NPUs under ``huawei.com/Ascend910``."""
    labels = {
        "accelerator": "huawei-Ascend910",
        "huawei.com/npu.chip.name": chip,
        "node.kubernetes.io/npu.chip.name": chip,
        "huawei.com/npu.chip.memory": memory,
        "mind-cluster/npu-chip-memory": memory,
        "accelerator-type": f"module-910b-{npus}",
        "servertype": "Ascend910B-20",
        "huawei.com/npu.server.type": "Ascend910B-20",
        **kw.pop("labels", {}),
    }
    return [NodeSpec(name, "", 0, labels=labels, extended={"huawei.com/Ascend910": str(npus)}, **kw)
            for name in _names(prefix, count)]


def amd_nodes(prefix: str, count: int, *, gpus: int = 8, product: str = AMD_MI300X, vram: str = "192G",
              **kw: Any) -> list[NodeSpec]:
    """AMD Instinct nodes: ``amd.com/gpu`` and the node labeller's ``amd.com/gpu.*`` labels."""
    labels = {
        "amd.com/gpu.product-name": product,
        "amd.com/gpu.vram": vram,
        "amd.com/gpu.family": "AI",
        "amd.com/gpu.device-id": "74a1",
        "amd.com/gpu.cu-count": "304",
        "amd.com/gpu.simd-count": "1216",
        **kw.pop("labels", {}),
    }
    return [NodeSpec(name, "", 0, labels=labels, extended={"amd.com/gpu": str(gpus)}, **kw)
            for name in _names(prefix, count)]


def amd_partitioned_nodes(prefix: str, count: int, *, mode: str = "cpx_nps4", gpus: int = 8,
                          **kw: Any) -> list[NodeSpec]:
    """AMD MI300X nodes in a compute partition mode, as ROCm's device plugin (naming strategy `single`) and node
    labeller publish them: every partition one ``amd.com/gpu`` (CPX: 8 per GPU, 64 on the node) and the mode in
    ``amd.com/compute-memory-partition``. `mode` "": the count without the labeller's partition labels."""
    parts = {"spx": 1, "dpx": 2, "tpx": 3, "qpx": 4, "cpx": 8}[(mode or "cpx").split("_")[0]]
    labels = {"amd.com/compute-partitioning-supported": "true", "amd.com/memory-partitioning-supported": "true",
              **({"amd.com/compute-memory-partition": mode} if mode else {}), **kw.pop("labels", {})}
    return amd_nodes(prefix, count, gpus=gpus * parts, labels=labels, **kw)


def dra_gpu_nodes(prefix: str, count: int, *, gpus: int = 8, product_name: str = "NVIDIA H100 80GB HBM3",
                  architecture: str = "Hopper", memory: str = "81559Mi", **kw: Any) -> list[NodeSpec]:
    """Nodes whose GPUs are advertised only through DRA ResourceSlices (no extended resource)."""
    out = []
    for name in _names(prefix, count):
        devices = tuple(
            DraDevice(
                name=f"gpu-{i}",
                attributes={"type": "gpu", "uuid": f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{name}-{i}')}",
                            "productName": product_name, "brand": "Nvidia", "architecture": architecture},
                capacity={"memory": memory},
            )
            for i in range(gpus))
        out.append(NodeSpec(name, "", 0, dra_devices=devices, **kw))
    return out


def vendor_fleet(members: Sequence[str] = ("nvidia", "ascend", "amd", "mig", "dra")) -> dict[str, list[NodeSpec]]:
    """One member per accelerator kind, for a federation of several vendors on the test bed."""
    builders: dict[str, Any] = {
        "nvidia": lambda m: [NodeSpec(f"{m}-h100-0", H100, 8,
                                      labels=_gfd_labels(H100, 8, H100_MEMORY_MIB, "hopper", mig_capable=True))],
        "ascend": lambda m: ascend_nodes(f"{m}-910b", 2),
        "amd": lambda m: amd_nodes(f"{m}-mi300x", 1),
        "mig": lambda m: mig_nodes(f"{m}-h100", 1, {"1g.10gb": 14, "3g.40gb": 4}),
        "shared": lambda m: time_sliced_nodes(f"{m}-l4", 1),
        "hami": lambda m: hami_nodes(f"{m}-a100", 1),
        "dra": lambda m: dra_gpu_nodes(f"{m}-h100", 1),
    }
    unknown = set(members) - set(builders)
    if unknown:
        raise ValueError(f"unknown member kinds {sorted(unknown)}; known: {sorted(builders)}")
    return {m: builders[m](m) for m in members}
