"""The accelerators of a member cluster, from its Nodes, Pods, ResourceSlices and ResourceClaims.

`Discovery` holds what the agent reads of the vendor catalog (device plugins:
resource names and product/memory labels; DRA drivers: device class and
attributes) and turns the cluster's objects into `DeviceGroup`s: the input of
both the capacity report (`pools.py`) and the rendering of a placement
(`accelerators.py`), so what the agent reports and what it asks for agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federator.backends.kube.devices import DeviceGroup, DevicePlugin, node_groups, with_usage
from federator.backends.kube.dra import DraDriver, dra_groups

Obj = Mapping[str, Any]

#: Until the vendor catalog is read from its data file: the plugins every member understands.
BUILTIN_PLUGINS: tuple[DevicePlugin, ...] = (
    DevicePlugin("nvidia", "nvidia.com/gpu", ("nvidia.com/gpu.product",), ("nvidia.com/gpu.memory",)),
    DevicePlugin("nvidia", "nvidia.com/gpu.shared", ("nvidia.com/gpu.product",), ("nvidia.com/gpu.memory",)),
    DevicePlugin("amd", "amd.com/gpu", ("amd.com/gpu.product-name", "beta.amd.com/gpu.product-name"),
                 ("amd.com/gpu.vram",), default_product="AMD-GPU"),
    DevicePlugin("huawei", "huawei.com/Ascend910",
                 ("huawei.com/npu.chip.name", "node.kubernetes.io/npu.chip.name"),
                 ("huawei.com/npu.chip.memory", "mind-cluster/npu-chip-memory"), default_product="Ascend910"),
    DevicePlugin("huawei", "huawei.com/Ascend310P",
                 ("huawei.com/npu.chip.name", "node.kubernetes.io/npu.chip.name"),
                 ("huawei.com/npu.chip.memory", "mind-cluster/npu-chip-memory"), default_product="Ascend310P"),
    DevicePlugin("huawei", "huawei.com/Ascend310", ("huawei.com/npu.chip.name", "node.kubernetes.io/npu.chip.name"),
                 default_product="Ascend310"),
    DevicePlugin("cambricon", "cambricon.com/mlu", ("cambricon.com/mlu.model",), default_product="MLU"),
    DevicePlugin("hygon", "hygon.com/dcu", ("hygon.com/dcu.product", "hygon.com/dcu.model"), default_product="DCU"),
    DevicePlugin("intel", "habana.ai/gaudi", ("habana.ai/gaudi.product",), default_product="Gaudi"),
)
BUILTIN_DRA_DRIVERS: tuple[DraDriver, ...] = (
    DraDriver("gpu.nvidia.com", "nvidia", "gpu.nvidia.com"),
    DraDriver("gpu.amd.com", "amd", "gpu.amd.com", memory_capacity="memory"),
)


@dataclass(frozen=True, slots=True)
class Discovery:
    """What the agent understands of accelerators: device plugins and DRA drivers (catalog data)."""

    plugins: tuple[DevicePlugin, ...] = BUILTIN_PLUGINS
    dra_drivers: tuple[DraDriver, ...] = BUILTIN_DRA_DRIVERS

    @property
    def resources(self) -> frozenset[str]:
        """Every extended resource of an accelerator: vendors taint accelerator nodes with these keys."""
        return frozenset(p.resource for p in self.plugins)

    def groups(self, nodes: Iterable[Obj], pods: Iterable[Obj], *, slices: Iterable[Obj] = (),
               claims: Iterable[Obj] = (), device_classes: Sequence[str] | None = None) -> list[DeviceGroup]:
        """The device groups of the given (usable) nodes, with what pods and claims hold of them."""
        nodes = list(nodes)
        names = {str((n.get("metadata") or {}).get("name", "")) for n in nodes}
        plugin_groups = [g for n in nodes for g in node_groups(n, self.plugins)]
        dra = [g for g in dra_groups(slices, claims, self.dra_drivers, device_classes) if g.node in names]
        return with_usage(plugin_groups, pods) + dra


__all__ = ["BUILTIN_DRA_DRIVERS", "BUILTIN_PLUGINS", "Discovery"]
