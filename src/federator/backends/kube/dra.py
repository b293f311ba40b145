"""Accelerators advertised through Dynamic Resource Allocation (``resource.k8s.io/v1``): pure functions.

A DRA driver publishes its devices in ResourceSlices (one pool per node for
node-local devices, each device with typed attributes and capacities), an
admin or the driver defines DeviceClasses, and kube-scheduler allocates
ResourceClaims against them, writing the chosen devices into the claim's
``status.allocation``. So the devices of a node are the devices of the newest
generation of its pools, and the used ones are those some claim's allocation
names. Which drivers are accelerators, and which attribute names the product
and which capacity the memory, is catalog data (`DraDriver`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federator.backends.kube.devices import DeviceGroup, Sharing, memory_mib
from federator.model import MILLI, QuantityError, to_bytes

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DraDriver:
    """One catalog entry for a DRA driver: its vendor, the DeviceClass to claim from, the attributes to read."""

    driver: str  # e.g. gpu.nvidia.com
    vendor: str
    device_class: str  # the DeviceClass a claim names (often the driver's name)
    product_attribute: str = "productName"
    memory_capacity: str = "memory"
    type_attribute: str = "type"  # only devices whose type is `device_type` are accelerators ("" = all)
    device_type: str = "gpu"


def _attribute(device: Obj, driver: str, name: str) -> Any:
    """An attribute's value: unqualified names live in the driver's domain (KEP-4381)."""
    attrs: Mapping[str, Any] = device.get("attributes") or {}
    value = attrs.get(name) or attrs.get(f"{driver}/{name}")
    if not isinstance(value, Mapping):
        return None
    for kind in ("string", "int", "bool", "version"):
        if kind in value:
            return value[kind]
    return None


def _capacity_mib(device: Obj, name: str) -> int:
    raw = ((device.get("capacity") or {}).get(name) or {}).get("value")
    if raw is None:
        return 0
    try:
        return to_bytes(raw) // (1024 * 1024)
    except QuantityError:
        return memory_mib(raw)


def model_of(product: str) -> str:
    """A pool model from a DRA product name, in the form GPU feature discovery labels use
    ("NVIDIA H100 80GB HBM3" -> "NVIDIA-H100-80GB-HBM3"), so both paths name one model alike."""
    return "-".join(str(product).split())


def current_slices(slices: Iterable[Obj]) -> list[Obj]:
    """Only the newest generation of every (driver, pool): older slices are being replaced."""
    newest: dict[tuple[str, str], int] = {}
    items = list(slices)
    for s in items:
        spec = s.get("spec") or {}
        key = (str(spec.get("driver", "")), str((spec.get("pool") or {}).get("name", "")))
        newest[key] = max(newest.get(key, 0), int((spec.get("pool") or {}).get("generation", 0) or 0))
    return [s for s in items if int(((s.get("spec") or {}).get("pool") or {}).get("generation", 0) or 0)
            == newest[(str((s.get("spec") or {}).get("driver", "")),
                       str(((s.get("spec") or {}).get("pool") or {}).get("name", "")))]]


def allocated_devices(claims: Iterable[Obj]) -> set[tuple[str, str, str]]:
    """(driver, pool, device) of every device some ResourceClaim holds."""
    out = set()
    for claim in claims:
        allocation = (claim.get("status") or {}).get("allocation") or {}
        for r in (allocation.get("devices") or {}).get("results") or []:
            out.add((str(r.get("driver", "")), str(r.get("pool", "")), str(r.get("device", ""))))
    return out


def dra_groups(slices: Iterable[Obj], claims: Iterable[Obj], drivers: Sequence[DraDriver],
               device_classes: Iterable[str] | None = None) -> list[DeviceGroup]:
    """One group per (node, product) of node-local accelerator devices, with the allocated ones counted used.

    A driver whose DeviceClass does not exist in the cluster is skipped: no
    claim could name it. `device_classes=None` skips that check.
    """
    known = None if device_classes is None else set(device_classes)
    by_driver = {d.driver: d for d in drivers if known is None or d.device_class in known}
    used = allocated_devices(claims)
    acc: dict[tuple[str, str, str], dict[str, Any]] = {}
    for s in current_slices(slices):
        spec = s.get("spec") or {}
        drv = by_driver.get(str(spec.get("driver", "")))
        node = spec.get("nodeName")
        if drv is None or not node:
            continue  # not an accelerator driver, or devices not local to one node
        pool = str((spec.get("pool") or {}).get("name", ""))
        for device in spec.get("devices") or []:
            if drv.type_attribute and _attribute(device, drv.driver, drv.type_attribute) != drv.device_type:
                continue
            product = _attribute(device, drv.driver, drv.product_attribute)
            if not product:
                continue
            entry = acc.setdefault((str(node), drv.driver, str(product)),
                                   {"devices": 0, "used": 0, "memory": _capacity_mib(device, drv.memory_capacity)})
            entry["devices"] += 1
            if (drv.driver, pool, str(device.get("name", ""))) in used:
                entry["used"] += 1
    out = []
    for (node, driver, product), e in sorted(acc.items()):
        drv = by_driver[driver]
        attr = drv.product_attribute if "/" in drv.product_attribute else f"{driver}/{drv.product_attribute}"
        out.append(DeviceGroup(node=node, vendor=drv.vendor, model=model_of(product), resource="",
                               selector=((attr, product),), sharing=Sharing.NONE, devices=e["devices"],
                               units=e["devices"], unit_milli=MILLI, memory_mib=e["memory"], used_units=e["used"],
                               dra_class=drv.device_class, dra_driver=driver))
    return out


__all__ = ["DraDriver", "allocated_devices", "current_slices", "dra_groups", "model_of"]
