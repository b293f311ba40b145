"""Accelerators on a node, read the way each vendor's device plugin publishes them: pure functions.

A device plugin advertises devices as an extended resource (``nvidia.com/gpu``,
``huawei.com/Ascend910``, ``amd.com/gpu``...) and a labeller next to it names
the product in a node label. Which resources and labels exist is data (the
vendor catalog, `DevicePlugin` entries); this module knows only the few ways a
device can be *shared*, because those change what one unit of the resource is:

* **whole devices** (``Sharing.NONE``): one unit = one device;
* **hardware partitions** (``Sharing.MIG``): NVIDIA MIG, mixed strategy,
  ``nvidia.com/mig-<g>g.<mem>gb``, one unit = one partition, a device of its
  own (and a pool of its own), worth a fraction of the parent GPU in memory
  eighths; Huawei's static vNPU templates likewise, in AI cores (below);
* **AMD compute partitions** (``Sharing.MIG`` too): a GPU in DPX/QPX/CPX mode is that many ``amd.com/gpu``
  units, the mode in the labeller's ``amd.com/compute-memory-partition`` (the catalog's ``partitionLabel``): a
  pool ``<model>-CPX-NPS4`` worth 1/partitions of a GPU each. Without the label, a node counting more devices
  than the catalog's ``perNode`` of its model is left out (`UnsupportedDevices`), never counted as whole GPUs
  (vendqa61 V7);
* **time-slicing / MPS** (NVIDIA device plugin ``sharing``): ``replicas`` units
  per GPU, under ``nvidia.com/gpu`` (product label suffixed ``-SHARED``) or the
  renamed ``nvidia.com/gpu.shared``; a unit is an access, not a device, so such
  a pool serves only fractional replicas;
* **HAMi**: ``deviceSplitCount`` slots per GPU under ``nvidia.com/gpu``, the
  GPUs themselves (memory, type) in the ``hami.io/node-nvidia-register``
  annotation; a replica asks for slots plus ``nvidia.com/gpumem``/``gpucores``,
  so such a pool serves both whole and fractional replicas.

The result is a list of `DeviceGroup`: the devices of one node that belong to
one pool, with what the node's pods hold of them.

A group is offered only where a pod can be pinned to it. Devices whose vendor
names its products in a node label, on a node without that label (GPU feature
discovery has not labelled a new node yet, or does not run on its node pool),
are `UnlabelledDevices`, never a pool: the pod of such a "pool" had only the
resource to ask for, which every labelled node of the vendor also has, so
kube-scheduler put it on an A100 node while the unlabelled one idled, and
both pools' books went wrong (outside provider QA F3). A vendor whose plugin
names no product at all (no `productLabel` in the catalog) is one pool per
resource, which the resource itself pins.

Huawei's static vNPU templates (``huawei.com/Ascend310P-2c``: one unit is a
hardware partition of 2 of a chip's AI cores, a pod may take one) are
partitions like MIG instances: a pool per template and chip model
(``Ascend310P3-vNPU-2c``), sharing ``MIG``, worth the template's cores over
the chip's (`vnpu.py`; the chip's are the catalog's `aiCores` of its model,
`DevicePlugin.chip_ai_cores`). Their node needs the chip label as any Huawei
node (else `UnlabelledDevices`); a chip whose AI cores the catalog does not
give leaves its vNPUs out. Those, and HAMi's Ascend devices (the chip in the
resource, ``huawei.com/Ascend910B3``, sliced by ``-memory``), are
`UnsupportedDevices`: units the federator has no model of, never a pool and
never counted as chips (counted as chips, a vNPU template's 8 units made a
310P pool 8 chips bigger: outside QA, V2); they are said and counted instead
(`unsupported.py`), even when an operator's catalog lists the resource.
`pools.py` turns groups into
the scheduler's `AcceleratorPool`s; `accelerators.py` renders a placement on a
group back into resources and a node selector.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from federator.backends.kube import vnpu
from federator.model import MILLI, QuantityError, to_milli
from federator.model.accelerator import prefixed_model

Obj = Mapping[str, Any]

HAMI_REGISTER_ANNOTATION = "hami.io/node-nvidia-register"
HAMI_MEMORY_RESOURCE = "nvidia.com/gpumem"
HAMI_CORES_RESOURCE = "nvidia.com/gpucores"
HAMI_MEMORY_PERCENT_RESOURCE = "nvidia.com/gpumem-percentage"
NVIDIA_GPU = "nvidia.com/gpu"
NVIDIA_SHARED_GPU = "nvidia.com/gpu.shared"
NVIDIA_PRODUCT_LABEL = "nvidia.com/gpu.product"
NVIDIA_MEMORY_LABEL = "nvidia.com/gpu.memory"
NVIDIA_REPLICAS_LABEL = "nvidia.com/gpu.replicas"
NVIDIA_SHARING_LABEL = "nvidia.com/gpu.sharing-strategy"
MIG_RESOURCE = re.compile(r"^nvidia\.com/mig-(\d+g\.\d+gb)$")
# MindCluster static vNPU templates (Ascend910-2c ... -16c, Ascend310P-1c ... -4c.4cpu.dvpp) and HAMi's
# chip-named Ascend devices (Ascend910A, Ascend910B3; their -memory companion is not a device)
ASCEND_VNPU = vnpu.TEMPLATE_RESOURCE
ASCEND_HAMI = re.compile(r"^huawei\.com/Ascend910[A-Z][0-9A-Za-z]*$")
SHARED_SUFFIX = "-SHARED"
UNKNOWN_MODEL = "unknown"  # a plugin group's model when its vendor names none (catalog: no productLabel, defaultModel)
_MEMORY_EIGHTHS = 8  # MIG divides a GPU's memory in eight slices
# AMD compute partition modes (amd-smi: SPX one partition per GPU ... CPX one per XCD, 8 on MI300X/MI325X/MI355X),
# as the node labeller writes them with the memory mode: spx_nps1, dpx_nps2, cpx_nps4
AMD_PARTITIONS = {"spx": 1, "dpx": 2, "tpx": 3, "qpx": 4, "cpx": 8}
_AMD_MODE = re.compile(r"^(spx|dpx|tpx|qpx|cpx)_(nps\d+)$")
# Resources a known vendor's plugin advertises in a mode the built-in catalog does not list: Cambricon's
# `--enable-device-type` (cambricon.com/mlu370, a resource per MLU type) and ROCm's `mixed` naming strategy
# (amd.com/cpx_nps4, a resource per partition mode). Left out and said unless a catalog lists them.
OTHER_MODE_RESOURCES = (
    (re.compile(r"^cambricon\.com/mlu\d+[0-9a-z-]*$"), "cambricon",
     "MLUs of Cambricon's device plugin with --enable-device-type (a resource per MLU type): list the resource "
     "under cambricon's resources in the accelerator catalog (--accelerator-catalog) to offer them"),
    (re.compile(r"^amd\.com/(spx|dpx|tpx|qpx|cpx)_nps\d+$"), "amd",
     "AMD compute partitions under the ROCm device plugin's mixed naming strategy (a resource per partition "
     "mode): list the resource under amd's resources in the accelerator catalog (--accelerator-catalog) to offer "
     "them as partition pools, or run the plugin with resource_naming_strategy single"),
)


class Sharing(StrEnum):
    """How the units of a pool's resource map to devices (reported with the pool)."""

    NONE = "None"  # one unit, one whole device
    MIG = "MIG"  # one unit, one hardware partition (NVIDIA MIG, Ascend vNPU): the contract's partition value
    TIME_SLICING = "TimeSlicing"  # `replicas` accesses to one device, no isolation
    MPS = "MPS"  # `replicas` equal partitions of one device's memory and compute
    HAMI = "HAMi"  # `split` slots of one device, memory and cores limited per container

    @property
    def serves_whole(self) -> bool:
        return self in (Sharing.NONE, Sharing.MIG, Sharing.HAMI)

    @property
    def serves_fractions(self) -> bool:
        return self is not Sharing.NONE


@dataclass(frozen=True, slots=True)
class DevicePlugin:
    """One catalog entry as discovery needs it: a resource, its vendor, the labels naming its product."""

    vendor: str
    resource: str
    product_labels: tuple[str, ...] = ()  # the first present one names the product
    memory_labels: tuple[str, ...] = ()  # memory per device: MiB as a number, or a quantity ("64G")
    default_product: str = ""  # when no product label is present (a plugin without a labeller)
    memory_unit: str = "Mi"  # the unit of a bare number in a memory label (Gi for AMD's vram)
    model_prefix: str = ""  # prepended to the product label's value to form the catalog's model name
    ai_cores: tuple[tuple[str, int], ...] = ()  # (model name, lower case; AI cores of one chip): catalog aiCores
    partition_label: str = ""  # the node label naming a compute partition mode (AMD's cpx_nps4): catalog sharing
    per_node: tuple[tuple[str, int], ...] = ()  # (model name or label value, lower case; most devices per node)

    def node_bound(self, product: str) -> int:
        """The most devices of `product` (the label's value) one node holds, 0 when the catalog does not say."""
        bounds = dict(self.per_node)
        return bounds.get(product.lower(), 0) or bounds.get(prefixed_model(self.model_prefix, product).lower(), 0)

    def chip_ai_cores(self, product: str) -> int:
        """The AI cores of one chip whose product label reads `product` (910B3: the catalog's Ascend910B3), by
        exact name only; 0 when the catalog gives that model none (a share is never guessed from a family)."""
        return dict(self.ai_cores).get(prefixed_model(self.model_prefix, product).lower(), 0)


@dataclass(frozen=True, slots=True)
class UnlabelledDevices:
    """Devices on a node whose model cannot be told: not offered (module docstring), counted for the operator."""

    node: str
    resource: str
    devices: int
    missing_label: str  # the label that would name them (the vendor's first product label)


@dataclass(frozen=True, slots=True)
class UnsupportedDevices:
    """Devices on a node in units the federator has no model of (module docstring): not offered, counted."""

    node: str
    resource: str
    devices: int  # units of `resource` (vNPUs, HAMi devices)
    what: str  # what they are, for the operator


def unsupported_kind(resource: str) -> str:
    """What a resource's units are when they are never a device plugin pool of their own name ("" when they
    may be): vNPU templates are offered by `_vnpu_groups` where the chip is known, HAMi Ascend devices never."""
    if ASCEND_VNPU.match(resource):
        return "Ascend vNPU partitions (a static vNPU template: a share of one chip's AI cores)"
    if ASCEND_HAMI.match(resource):
        return "HAMi Ascend devices (shared by memory)"
    return ""


@dataclass(frozen=True, slots=True)
class DeviceGroup:
    """The devices of one node that form (part of) one pool, and what its pods hold of them.

    `units` are the resource's units (devices, MIG instances, replicas or
    slots); `unit_milli` is how much of a whole device one unit is worth to a
    fractional replica (1000 for a device, 125 per memory eighth for MIG,
    1000/replicas for time-slicing, 1000/split for HAMi).
    """

    node: str
    vendor: str
    model: str  # the pool's model: the product label's value (MIG: the partition's product)
    resource: str  # what a pod requests ("" for DRA devices)
    selector: tuple[tuple[str, str], ...]  # node labels that pin a pod to such nodes
    sharing: Sharing
    devices: int  # physical devices (MIG: partitions)
    units: int  # allocatable units of `resource`
    unit_milli: int
    memory_mib: int = 0  # per device (MIG: per partition)
    family: str = ""  # the catalog's family of `model` (Ascend910B for Ascend910B3), reported with the pool
    used_units: int = 0
    used_milli: int = 0  # HAMi: memory/core shares held, in milli-devices
    # Kueue mode: free units the member's ClusterQueue has no quota left for (`kueue_quota.within_quota`), counted
    # in used_units too; the report says how many (AcceleratorPool.quota_held_accelerators).
    quota_held_units: int = 0
    dra_class: str = ""  # DRA: the DeviceClass to claim from
    dra_driver: str = ""
    # a partition's whole device: its resource (the taint its nodes carry: nvidia.com/gpu, huawei.com/Ascend310P)
    # and, for a vNPU, the chip's product (the label's 310P3), whose catalog family the pool reports
    parent_resource: str = ""
    parent_model: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.vendor, self.model)

    @property
    def free_units(self) -> int:
        return max(0, self.units - self.used_units)

    def free_devices(self) -> int:
        """Devices with nothing held on them (MIG: free partitions): the node's whole free devices."""
        if self.sharing in (Sharing.NONE, Sharing.MIG):
            return self.free_units
        if self.sharing is Sharing.HAMI:
            return min(self.free_units, max(0, self.devices * MILLI - self.used_milli) // MILLI)
        per = max(1, self.units // max(1, self.devices))
        return self.free_units // per

    def free_rest_milli(self) -> int:
        """The free milli-devices of one partly used device (0 < rest < 1000), or 0: the node's shared device."""
        if self.sharing in (Sharing.NONE, Sharing.MIG):
            return 0
        whole = self.free_devices()
        if self.sharing is Sharing.HAMI:
            rest = max(0, self.devices * MILLI - self.used_milli) - whole * MILLI
            return rest if self.free_units > whole and 0 < rest < MILLI else 0
        per = max(1, self.units // max(1, self.devices))
        return (self.free_units % per) * self.unit_milli


# -- reading labels and resources ---------------------------------------------


def quantity_int(raw: object) -> int:
    """A whole number of units from an allocatable/request value; 0 when absent or malformed."""
    if raw is None:
        return 0
    try:
        return to_milli(raw) // MILLI
    except QuantityError:
        return 0


def memory_mib(raw: object) -> int:
    """Memory per device from a label: a bare number is MiB (GFD's ``nvidia.com/gpu.memory``),
    a number with a unit is a quantity ("64G" from MindCluster, "192G" from AMD's labeller)."""
    text = str(raw or "").strip()
    if not text:
        return 0
    if text.isdigit():
        return int(text)
    match = re.match(r"^(\d+(?:\.\d+)?)\s*([KMGT])i?B?$", text, re.IGNORECASE)
    if not match:
        return 0
    scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[match.group(2).upper()]
    return int(float(match.group(1)) * scale)


def _first_label(labels: Mapping[str, str], keys: Sequence[str]) -> tuple[str, str]:
    for key in keys:
        value = labels.get(key)
        if value:
            return key, str(value)
    return "", ""


def _mig_eighths(profile_mib: int, parent_mib: int, profile: str) -> int:
    """A MIG partition's share of its GPU in memory eighths (at least one)."""
    if parent_mib > 0 and profile_mib > 0:
        return max(1, min(_MEMORY_EIGHTHS, round(profile_mib * _MEMORY_EIGHTHS / parent_mib)))
    match = re.match(r"^(\d+)g", profile)  # no memory labels: compute slices out of seven
    return max(1, min(_MEMORY_EIGHTHS, round(int(match.group(1)) * _MEMORY_EIGHTHS / 7))) if match else 1


# -- one node -------------------------------------------------------------------


def node_groups(node: Obj, plugins: Sequence[DevicePlugin]) -> list[DeviceGroup]:
    """The accelerator groups of one node that can be offered (usage zero; see `with_usage`)."""
    return [g for g in _scan(node, plugins) if isinstance(g, DeviceGroup)]


def unlabelled_devices(node: Obj, plugins: Sequence[DevicePlugin]) -> list[UnlabelledDevices]:
    """The devices of one node that are not offered because no label names their model."""
    return [g for g in _scan(node, plugins) if isinstance(g, UnlabelledDevices)]


def unsupported_devices(node: Obj, plugins: Sequence[DevicePlugin]) -> list[UnsupportedDevices]:
    """The devices of one node that are not offered because their units are not chips (module docstring):
    only for a vendor the catalog has (Huawei's), whether or not its catalog lists the resource; and a node counting
    more devices of a model than one node holds (`_beyond_bound`: AMD compute partitions whose mode no label says)."""
    meta, status = node.get("metadata") or {}, node.get("status") or {}
    allocatable: Mapping[str, Any] = status.get("allocatable") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    beyond = []
    for plugin in plugins:
        units = quantity_int(allocatable.get(plugin.resource))
        bound = _beyond_bound(plugin, units, labels)
        if bound:
            product = _first_label(labels, plugin.product_labels)[1]
            what = (f"{units} devices of {product} counted on one node, which holds at most {bound} (perNode in the "
                    f"accelerator catalog): partitions of them, whose mode no node label says"
                    + (f" (the node labeller writes it in {plugin.partition_label})" if plugin.partition_label
                       else ""))
            beyond.append(UnsupportedDevices(str(meta.get("name", "")), plugin.resource, units, what))
    listed = {p.resource for p in plugins}
    for resource, raw in sorted(allocatable.items()):
        count = quantity_int(raw)
        for pattern, vendor, kind in OTHER_MODE_RESOURCES:
            if count > 0 and str(resource) not in listed and pattern.match(str(resource)) and any(
                    p.vendor == vendor for p in plugins):
                beyond.append(UnsupportedDevices(str(meta.get("name", "")), str(resource), count, kind))
    if not any(p.vendor == "huawei" for p in plugins):
        return beyond
    chip = _first_label(labels, _huawei_labels(plugins))[1]
    huawei = next(p for p in plugins if p.vendor == "huawei")
    out = []
    for resource, raw in sorted(allocatable.items()):
        what = unsupported_kind(str(resource))
        count = quantity_int(raw)
        t = vnpu.template(str(resource))
        if t is not None and (not chip or t.unit_milli(huawei.chip_ai_cores(chip))):
            continue  # a partition pool (`_vnpu_groups`), or unlabelled
        if t is not None:
            model, cores = prefixed_model(huawei.model_prefix, chip), huawei.chip_ai_cores(chip)
            what = (f"Ascend vNPU partitions of {t.cores} AI cores on chip {chip}, whose AI cores the agent does "
                    f"not know, so it cannot say what share of a chip one is: give model {model} its aiCores in "
                    f"the accelerator catalog (--accelerator-catalog)") if not cores else (
                    f"Ascend vNPU partitions of {t.cores} AI cores on chip {chip}, which has {cores} (model "
                    f"{model}'s aiCores in the accelerator catalog): not a partition of that chip")
        if what and count > 0:
            out.append(UnsupportedDevices(str(meta.get("name", "")), str(resource), count, what))
    return beyond + out


def _partition_mode(plugin: DevicePlugin, labels: Mapping[str, str]) -> tuple[str, int]:
    """The node's compute partition mode as the label says it ("cpx_nps4") and the partitions per device; ("", 1)
    for whole devices (no label, SPX, or a value the agent does not know)."""
    raw = str(labels.get(plugin.partition_label, "")).strip().lower() if plugin.partition_label else ""
    match = _AMD_MODE.match(raw)
    if not match or match.group(1) == "spx":
        return "", 1
    return raw, AMD_PARTITIONS[match.group(1)]


def _beyond_bound(plugin: DevicePlugin, units: int, labels: Mapping[str, str]) -> int:
    """The catalog's bound on devices per node when `units` of whole devices exceed it, else 0."""
    if units <= 0 or _partition_mode(plugin, labels)[0]:
        return 0
    product = _first_label(labels, plugin.product_labels)[1]
    bound = plugin.node_bound(product) if product else 0
    return bound if units > bound > 0 else 0


def _huawei_labels(plugins: Sequence[DevicePlugin]) -> tuple[str, ...]:
    return next((p.product_labels for p in plugins if p.vendor == "huawei" and p.product_labels), ())


def _scan(node: Obj, plugins: Sequence[DevicePlugin]) -> list[DeviceGroup | UnlabelledDevices]:
    meta, status = node.get("metadata") or {}, node.get("status") or {}
    name = str(meta.get("name", ""))
    labels: Mapping[str, str] = meta.get("labels") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    allocatable: Mapping[str, Any] = status.get("allocatable") or {}
    groups: list[DeviceGroup | UnlabelledDevices] = []
    hami = annotations.get(HAMI_REGISTER_ANNOTATION)
    for plugin in plugins:
        if unsupported_kind(plugin.resource):  # a catalog that lists one: still not chips (unsupported_devices)
            continue
        units = quantity_int(allocatable.get(plugin.resource))
        if plugin.resource == NVIDIA_GPU and hami:
            group = _hami_group(name, plugin, hami, units, labels)
            if group is not None:
                groups.append(group)
                continue
        if units <= 0 or _beyond_bound(plugin, units, labels):
            continue
        groups.append(_plugin_group(name, plugin, units, labels))
    groups.extend(_mig_groups(name, allocatable, labels, plugins))
    groups.extend(_vnpu_groups(name, allocatable, labels, plugins))
    return groups


def _plugin_group(node: str, plugin: DevicePlugin, units: int,
                  labels: Mapping[str, str]) -> DeviceGroup | UnlabelledDevices:
    key, product = _first_label(labels, plugin.product_labels)
    if plugin.product_labels and not key:  # the vendor names products, but not this node's: no pin for a pod
        return UnlabelledDevices(node, plugin.resource, units, plugin.product_labels[0])
    product = product or plugin.default_product or UNKNOWN_MODEL
    selector = ((key, product),) if key else ()
    raw_memory = _first_label(labels, plugin.memory_labels)[1].strip()
    memory = memory_mib(raw_memory) * (1024 if raw_memory.isdigit() and plugin.memory_unit == "Gi" else 1)
    mode, parts = _partition_mode(plugin, labels)
    if mode:  # compute partitions counted as the resource's units: a partition pool, as MIG (module docstring)
        suffix = "-".join(part.upper() for part in mode.split("_"))
        return DeviceGroup(node=node, vendor=plugin.vendor, model=f"{product}-{suffix}", resource=plugin.resource,
                           selector=(*selector, (plugin.partition_label, str(labels.get(plugin.partition_label)))),
                           sharing=Sharing.MIG, devices=units, units=units, unit_milli=MILLI // parts,
                           memory_mib=memory // parts, parent_model=product)
    replicas = quantity_int(labels.get(NVIDIA_REPLICAS_LABEL)) if plugin.vendor == "nvidia" else 0
    renamed = plugin.resource == NVIDIA_SHARED_GPU
    if replicas > 1 or renamed:
        replicas = max(replicas, 1)
        strategy = str(labels.get(NVIDIA_SHARING_LABEL, "")).lower()
        sharing = Sharing.MPS if strategy == "mps" else Sharing.TIME_SLICING
        model = product if product.endswith(SHARED_SUFFIX) else f"{product}{SHARED_SUFFIX}"
        return DeviceGroup(node=node, vendor=plugin.vendor, model=model, resource=plugin.resource, selector=selector,
                           sharing=sharing, devices=max(1, units // replicas), units=units,
                           unit_milli=MILLI // replicas, memory_mib=memory)
    return DeviceGroup(node=node, vendor=plugin.vendor, model=product, resource=plugin.resource, selector=selector,
                       sharing=Sharing.NONE, devices=units, units=units, unit_milli=MILLI, memory_mib=memory)


def _hami_group(node: str, plugin: DevicePlugin, raw: str, units: int,
                labels: Mapping[str, str]) -> DeviceGroup | UnlabelledDevices | None:
    devices = parse_hami_register(raw)
    healthy = [d for d in devices if d.get("health", True)]
    if not healthy:
        return None
    key, product = _first_label(labels, plugin.product_labels)
    if plugin.product_labels and not key:  # HAMi's register names the type, but no node label pins a pod to it
        return UnlabelledDevices(node, plugin.resource, len(healthy), plugin.product_labels[0])
    if not product:  # HAMi's type is "NVIDIA-" + the NVML name ("NVIDIA-NVIDIA A100-SXM4-80GB")
        product = str(healthy[0].get("type", UNKNOWN_MODEL)).removeprefix("NVIDIA-").replace(" ", "-")
    slots = sum(int(d.get("count", 0) or 0) for d in healthy)
    split = max(1, slots // len(healthy))
    return DeviceGroup(node=node, vendor=plugin.vendor, model=product, resource=plugin.resource,
                       selector=((key, product),) if key else (), sharing=Sharing.HAMI, devices=len(healthy),
                       units=min(units, slots) if units else slots, unit_milli=max(1, MILLI // split),
                       memory_mib=min(int(d.get("devmem", 0) or 0) for d in healthy))


def parse_hami_register(raw: str) -> list[dict[str, Any]]:
    """HAMi's register annotation: a JSON list (HAMi >= 2.5) or the older ``id,count,mem,cores,type,numa,health:``."""
    text = raw.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            return []
        return [d for d in parsed if isinstance(d, dict)] if isinstance(parsed, list) else []
    out = []
    for entry in text.split(":"):
        items = entry.split(",")
        if len(items) < 7:
            continue
        try:
            out.append({"id": items[0], "count": int(items[1]), "devmem": int(items[2]), "devcore": int(items[3]),
                        "type": items[4], "health": items[6].strip().lower() == "true"})
        except ValueError:
            continue
    return out


def _mig_groups(node: str, allocatable: Mapping[str, Any], labels: Mapping[str, str],
                plugins: Sequence[DevicePlugin]) -> list[DeviceGroup | UnlabelledDevices]:
    nvidia = next((p for p in plugins if p.vendor == "nvidia"), None)
    if nvidia is None:
        return []
    parent_mib = memory_mib(labels.get(NVIDIA_MEMORY_LABEL))
    out: list[DeviceGroup | UnlabelledDevices] = []
    for resource, raw in allocatable.items():
        match = MIG_RESOURCE.match(str(resource))
        count = quantity_int(raw)
        if not match or count <= 0:
            continue
        profile = match.group(1)
        product = str(labels.get(f"{resource}.product") or "")
        if not product:  # the selector below is this label: without it a pod could never be placed, or pinned
            out.append(UnlabelledDevices(node, str(resource), count, f"{resource}.product"))
            continue
        mem = memory_mib(labels.get(f"{resource}.memory"))
        eighths = _mig_eighths(mem, parent_mib, profile)
        out.append(DeviceGroup(node=node, vendor=nvidia.vendor, model=product, resource=str(resource),
                               selector=((f"{resource}.product", product),), sharing=Sharing.MIG, devices=count,
                               units=count, unit_milli=eighths * MILLI // _MEMORY_EIGHTHS, memory_mib=mem,
                               parent_resource=NVIDIA_GPU))
    return out


def _vnpu_groups(node: str, allocatable: Mapping[str, Any], labels: Mapping[str, str],
                 plugins: Sequence[DevicePlugin]) -> list[DeviceGroup | UnlabelledDevices]:
    """Ascend static vNPU templates as partition pools, one per template and chip (`vnpu.py`); a chip whose
    AI cores are unknown is `unsupported_devices`' case."""
    huawei = next((p for p in plugins if p.vendor == "huawei"), None)
    if huawei is None:
        return []
    key, chip = _first_label(labels, _huawei_labels(plugins))
    out: list[DeviceGroup | UnlabelledDevices] = []
    for resource, raw in sorted(allocatable.items()):
        t = vnpu.template(str(resource))
        count = quantity_int(raw)
        if t is None or count <= 0:
            continue
        if not key:  # no chip label: nothing to pin a pod to this chip model, as for whole chips
            out.append(UnlabelledDevices(node, t.resource, count, (*_huawei_labels(plugins), "chip label")[0]))
            continue
        unit = t.unit_milli(huawei.chip_ai_cores(chip))
        if not unit:
            continue
        out.append(DeviceGroup(node=node, vendor=huawei.vendor, model=vnpu.pool_model(chip, t), resource=t.resource,
                               selector=((key, chip),), sharing=Sharing.MIG, devices=count, units=count,
                               unit_milli=unit, memory_mib=t.memory_mib(), parent_resource=t.chip_resource,
                               parent_model=chip))
    return out


# -- what pods hold -------------------------------------------------------------


def _container_amount(container: Obj, resource: str) -> int:
    res = container.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    return quantity_int(requests.get(resource, limits.get(resource)))


def pod_amount(pod: Obj, resource: str) -> int:
    """Units of an extended resource a pod holds (containers summed; an init container's peak if higher)."""
    spec = pod.get("spec") or {}
    total = sum(_container_amount(c, resource) for c in spec.get("containers") or [])
    init = max((_container_amount(c, resource) for c in spec.get("initContainers") or []), default=0)
    return max(total, init)


def _hami_milli(pod: Obj, group: DeviceGroup) -> int:
    """The share of GPUs a pod holds under HAMi: its cores or memory, whichever is larger, per slot."""
    slots = pod_amount(pod, group.resource)
    if not slots:
        return 0
    mem = pod_amount(pod, HAMI_MEMORY_RESOURCE)
    cores = pod_amount(pod, HAMI_CORES_RESOURCE)
    percent = pod_amount(pod, HAMI_MEMORY_PERCENT_RESOURCE)
    share = 0
    if mem and group.memory_mib:
        share = max(share, math.ceil(mem * MILLI / group.memory_mib))
    if percent:
        share = max(share, percent * 10)
    if cores:
        share = max(share, cores * 10)
    return slots * min(MILLI, share or MILLI)  # no memory or cores asked: HAMi gives the whole device


def with_usage(groups: Iterable[DeviceGroup], pods: Iterable[Obj]) -> list[DeviceGroup]:
    """The groups with what the (bound, running) pods on their nodes hold."""
    from dataclasses import replace

    by_node: dict[str, list[Obj]] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            by_node.setdefault(str(node), []).append(pod)
    out = []
    for g in groups:
        if g.dra_class:  # DRA usage comes from ResourceClaims (dra.py)
            out.append(g)
            continue
        on_node = by_node.get(g.node, [])
        used = sum(pod_amount(p, g.resource) for p in on_node)
        used_milli = sum(_hami_milli(p, g) for p in on_node) if g.sharing is Sharing.HAMI else 0
        out.append(replace(g, used_units=used, used_milli=used_milli))
    return out


__all__ = [
    "HAMI_CORES_RESOURCE", "HAMI_MEMORY_RESOURCE", "HAMI_REGISTER_ANNOTATION", "DeviceGroup", "DevicePlugin",
    "UNKNOWN_MODEL", "Sharing", "UnlabelledDevices", "UnsupportedDevices", "memory_mib", "node_groups",
    "parse_hami_register", "pod_amount", "quantity_int", "unlabelled_devices", "unsupported_devices",
    "unsupported_kind", "with_usage",
]
