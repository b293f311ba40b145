"""The accelerators of a member cluster, from its Nodes, Pods, ResourceSlices and ResourceClaims.

`Discovery` holds what the agent reads of the vendor catalog (device plugins:
resource names and product/memory labels; DRA drivers: device class and
attributes; the catalog's model names and families) and turns the cluster's
objects into `DeviceGroup`s: the input of both the capacity report
(`pools.py`) and the rendering of a placement (`accelerators.py`), so what the
agent reports and what it asks for agree.

It is built from the catalog (`Discovery.from_catalog`): the built-in one
merged with the operator's `--accelerator-catalog` file, so a vendor's device
plugin or DRA driver is added by data, not code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from federator.backends.kube.devices import (
    DeviceGroup,
    DevicePlugin,
    UnlabelledDevices,
    UnsupportedDevices,
    node_groups,
    unlabelled_devices,
    unsupported_devices,
    with_usage,
)
from federator.backends.kube.dra import DraDriver, dra_groups
from federator.catalog import Catalog, catalog
from federator.model.accelerator import prefixed_model

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class KnownModel:
    """A catalog model as discovery needs it: the memory to fill in, the family to report."""

    vendor: str
    name: str
    family: str = ""
    memory_mib: int = 0
    label_values: tuple[str, ...] = ()  # the product label's own spellings of `name` (AMD_Instinct_MI300X_OAM)


@dataclass(frozen=True, slots=True)
class Discovery:
    """What the agent understands of accelerators: device plugins, DRA drivers and models (catalog data)."""

    plugins: tuple[DevicePlugin, ...] = ()
    dra_drivers: tuple[DraDriver, ...] = ()
    models: tuple[KnownModel, ...] = ()
    prefixes: tuple[tuple[str, str], ...] = ()  # (vendor, modelPrefix)

    @classmethod
    def from_catalog(cls, cat: Catalog | None = None) -> Discovery:
        """Discovery of every vendor in `cat` (default: the process's catalog, with the operator's file)."""
        cat = cat if cat is not None else catalog()
        plugins: list[DevicePlugin] = []
        drivers: list[DraDriver] = []
        for v in cat.vendors:
            cores = tuple((m.name.lower(), m.ai_cores) for m in v.models if m.ai_cores)
            bounds = tuple((n.lower(), m.per_node) for m in v.models if m.per_node for n in (m.name, *m.label_values))
            resources = list(v.resources)
            renamed = v.sharing_name("timeSlicedResource")  # NVIDIA's time-slicing `renameByDefault`
            if renamed and renamed not in resources:
                resources.append(renamed)
            for r in resources:
                plugins.append(DevicePlugin(v.name, r, v.product_labels, v.memory_labels,
                                            default_product=v.unlabelled_model(r) if v.default_model else "",
                                            memory_unit=v.memory_unit, model_prefix=v.model_prefix,
                                            ai_cores=cores, partition_label=v.sharing_name("partitionLabel"),
                                            per_node=bounds))
            drivers.extend(DraDriver(d.driver, v.name, d.device_class, d.product_attribute, d.memory_capacity,
                                     d.type_attribute, d.device_type) for d in v.dra)
        models = tuple(KnownModel(m.vendor, m.name, m.family, m.memory_mib, m.label_values) for m in cat.models())
        prefixes = tuple((v.name, v.model_prefix) for v in cat.vendors if v.model_prefix)
        return cls(tuple(plugins), tuple(drivers), models, prefixes)

    @property
    def resources(self) -> frozenset[str]:
        """Every extended resource of an accelerator: vendors taint accelerator nodes with these keys."""
        return frozenset(p.resource for p in self.plugins)

    def groups(self, nodes: Iterable[Obj], pods: Iterable[Obj], *, slices: Iterable[Obj] = (),
               claims: Iterable[Obj] = (), device_classes: Sequence[str] | None = None) -> list[DeviceGroup]:
        """The device groups of the given (usable) nodes, with what pods and claims hold of them,
        named as the catalog names their models."""
        nodes = list(nodes)
        names = {str((n.get("metadata") or {}).get("name", "")) for n in nodes}
        plugin_groups = [g for n in nodes for g in node_groups(n, self.plugins)]
        dra = [g for g in dra_groups(slices, claims, self.dra_drivers, device_classes) if g.node in names]
        return [self._named(g) for g in with_usage(plugin_groups, pods) + dra]

    def unlabelled(self, nodes: Iterable[Obj]) -> list[UnlabelledDevices]:
        """The devices of the given nodes that no label names the model of: counted, never offered (devices.py)."""
        return [u for n in nodes for u in unlabelled_devices(n, self.plugins)]

    def unsupported(self, nodes: Iterable[Obj]) -> list[UnsupportedDevices]:
        """The devices of the given nodes in units that are not chips (Ascend vNPU, HAMi Ascend): counted, never
        offered (devices.py)."""
        return [u for n in nodes for u in unsupported_devices(n, self.plugins)]

    def _known(self, vendor: str, product: str) -> KnownModel | None:
        """The catalog's model a product label's value names: by name with the vendor's prefix (910B3 ->
        Ascend910B3), or by one of the model's labelValues (AMD_Instinct_MI300X_OAM -> AMD-Instinct-MI300X)."""
        model = prefixed_model(dict(self.prefixes).get(vendor, ""), product).lower()
        return next((m for m in self.models if m.vendor == vendor and (
            m.name.lower() == model or product.lower() in (v.lower() for v in m.label_values))), None)

    def _named(self, group: DeviceGroup) -> DeviceGroup:
        """The group under the catalog's model name (vendor prefix: 910B3 -> Ascend910B3; labelValues:
        AMD_Instinct_MI300X_OAM -> AMD-Instinct-MI300X), with the catalog's family and, where no label said, memory.
        The node selector keeps the label's value."""
        prefix = dict(self.prefixes).get(group.vendor, "")
        model = prefixed_model(prefix, group.model)
        known = self._known(group.vendor, group.model)
        if known is None and group.parent_model:  # a partition pool (vNPU, AMD compute partition): its device's
            parent = self._known(group.vendor, group.parent_model)  # name and family (Ascend310P for 310P3's vNPUs)
            if parent is not None and group.model.startswith(group.parent_model):
                model = parent.name + group.model[len(group.parent_model):]
            # an AMD partition (no parent resource: counted under the GPU's own) holds its share of the GPU's
            # memory; a vNPU's is the template's, said only where its name says it, never guessed
            share = parent.memory_mib * group.unit_milli // 1000 if parent and not group.parent_resource else 0
            memory = group.memory_mib or share
            return replace(group, model=model, family=parent.family if parent else "", memory_mib=memory)
        if known is None:
            return group if model == group.model else replace(group, model=model)
        return replace(group, model=known.name, family=known.family, memory_mib=group.memory_mib or known.memory_mib)


def default_discovery() -> Discovery:
    """Discovery from the process's catalog (the built-in one plus `--accelerator-catalog`)."""
    return Discovery.from_catalog(catalog())


__all__ = ["Discovery", "KnownModel", "default_discovery"]
