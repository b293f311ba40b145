"""How a replica asks Kubernetes for the accelerators of the pool its placement chose: pure functions.

The scheduler chose a pool (vendor, model) and a per-replica amount in
milli-devices; the agent found the pool's devices on its nodes (`devices.py`,
`dra.py`). This module turns the pair into what goes into a pod:

* a device plugin's extended resource (limits = requests) and the product
  label as a node selector, plus a toleration for the resource-named taint
  vendors put on accelerator nodes;
* for a hardware partition (MIG, Ascend vNPU), one partition
  (``nvidia.com/mig-3g.40gb: 1``, ``huawei.com/Ascend310P-2c: 1``) per
  fractional replica, or N partitions for N "devices" of that profile, and a
  toleration of the whole device's resource-named taint too;
* for time-slicing/MPS, the replicas that add up to the fraction;
* for HAMi, one slot plus ``nvidia.com/gpumem`` (MiB) and ``nvidia.com/gpucores``
  (percent) for a fraction, N slots for N whole GPUs;
* for DRA, no extended resource at all: a ResourceClaimTemplate asking the
  DeviceClass for N devices whose product attribute is the pool's, which the
  pod references and kube-scheduler allocates.

A request the pool cannot serve (a fraction of a whole-device-only pool) is a
`RenderError` naming what is missing; the scheduler should never send one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from federator.backends.kube.devices import (
    HAMI_CORES_RESOURCE,
    HAMI_MEMORY_RESOURCE,
    DeviceGroup,
    Sharing,
)
from federator.model import MILLI

CLAIM_NAME = "accelerators"  # the pod's name for its DRA claim, and the claim request's name
CLAIM_TEMPLATE_SUFFIX = "-accelerators"

Obj = dict[str, Any]


class RenderError(ValueError):
    """The placement asks the pool for something its devices cannot give; the message says what."""


@dataclass(frozen=True, slots=True)
class AcceleratorRequest:
    """What one replica's pod needs to get its accelerators."""

    limits: Mapping[str, str] = field(default_factory=dict)  # extended resources (requests = limits)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[str, ...] = ()  # taint keys to tolerate (NoSchedule)
    claim: Obj | None = None  # DRA: the ResourceClaimTemplate's spec.spec
    claim_template_name: str = ""  # DRA: the template the pods reference (the agent names it per placement)

    @property
    def uses_dra(self) -> bool:
        return self.claim is not None


def find_group(groups: Iterable[DeviceGroup], *, model: str, vendor: str = "") -> DeviceGroup | None:
    """A discovered group of the pool (vendor, model), the one with most free devices."""
    matching = [g for g in groups if g.model == model and (not vendor or g.vendor == vendor)]
    return max(matching, key=lambda g: (g.free_devices(), g.free_rest_milli()), default=None)


def _fraction(milli: int) -> str:
    return f"{milli}m of a device" if milli < MILLI else f"{milli / MILLI:g} devices"


def render(group: DeviceGroup, milli: int) -> AcceleratorRequest:
    """The accelerators of one replica asking `milli` milli-devices of `group`'s pool."""
    if milli <= 0:
        return AcceleratorRequest()
    whole, fractional = milli // MILLI, milli % MILLI != 0
    selector = {k: v for k, v in group.selector}
    if group.dra_class:
        if fractional:
            raise RenderError(f"{group.model} devices come from DRA driver {group.dra_driver}, which shares no "
                              f"device: a replica of {_fraction(milli)} needs time-slicing, HAMi or MIG")
        return AcceleratorRequest(claim=claim_spec(group, whole))
    tolerate = (group.resource,)
    if group.sharing is Sharing.NONE:
        if fractional:
            raise RenderError(f"{group.model} ({group.resource}) is offered only as whole devices: a replica of "
                              f"{_fraction(milli)} needs time-slicing, HAMi or MIG")
        return AcceleratorRequest({group.resource: str(whole)}, selector, tolerate)
    if group.sharing is Sharing.MIG:  # a hardware partition: an NVIDIA MIG instance or an Ascend vNPU
        if fractional and milli > group.unit_milli:
            raise RenderError(f"one {group.model} partition is {group.unit_milli}m of a device, less than the "
                              f"{milli}m a replica asks")
        parent = (group.parent_resource,) if group.parent_resource else ()
        return AcceleratorRequest({group.resource: str(max(1, whole))}, selector, (*parent, *tolerate))
    if group.sharing is Sharing.HAMI:
        if not fractional:
            return AcceleratorRequest({group.resource: str(whole)}, selector, tolerate)
        limits = {group.resource: "1", HAMI_CORES_RESOURCE: str(math.ceil(milli / 10))}
        if group.memory_mib:
            limits[HAMI_MEMORY_RESOURCE] = str(math.ceil(group.memory_mib * milli / MILLI))
        return AcceleratorRequest(limits, selector, tolerate)
    # time-slicing / MPS: replicas are accesses, not devices
    if not fractional:
        raise RenderError(f"{group.model} ({group.resource}) is time-sliced: it gives shares of a GPU, not "
                          f"{whole} whole GPU{'s' if whole > 1 else ''}")
    replicas = max(1, math.ceil(milli / max(1, group.unit_milli)))
    return AcceleratorRequest({group.resource: str(replicas)}, selector, ("nvidia.com/gpu", *tolerate))


def _cel_string(value: str) -> str:
    return json.dumps(value)  # a CEL double-quoted string literal: same escapes as JSON for what we emit


def claim_spec(group: DeviceGroup, count: int) -> Obj:
    """The ``spec`` of a ResourceClaimTemplate (``resource.k8s.io/v1``) for `count` devices of the group's product."""
    selectors = [{"cel": {"expression": f"device.attributes[{_cel_string(attr.split('/', 1)[0])}]"
                                        f".{attr.split('/', 1)[1]} == {_cel_string(value)}"}}
                 for attr, value in group.selector if "/" in attr]
    exactly: Obj = {"deviceClassName": group.dra_class, "allocationMode": "ExactCount", "count": count}
    if selectors:
        exactly["selectors"] = selectors
    return {"spec": {"devices": {"requests": [{"name": CLAIM_NAME, "exactly": exactly}]}}}


def claim_template(name: str, namespace: str, request: AcceleratorRequest, *, labels: Mapping[str, str],
                   annotations: Mapping[str, str]) -> Obj:
    """The ResourceClaimTemplate a DRA placement's pods reference (owned by the workload once it exists)."""
    if request.claim is None:
        raise ValueError("not a DRA request")
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels),
                         "annotations": dict(annotations)},
            "spec": request.claim}


def apply(pod: Obj, container: Obj | None, request: AcceleratorRequest) -> None:
    """Merge a replica's accelerators into a pod spec and its main container (in place).

    Without a container (a pod-spec override of a brought workload) only the
    node selector, tolerations and claim go in."""
    if request.limits and container is not None:
        resources = container.setdefault("resources", {})
        resources["requests"] = {**(resources.get("requests") or {}), **request.limits}
        resources["limits"] = {**(resources.get("limits") or {}), **request.limits}
    if request.node_selector:
        pod["nodeSelector"] = {**(pod.get("nodeSelector") or {}), **request.node_selector}
    if request.tolerations:
        tolerations = list(pod.get("tolerations") or [])
        for key in dict.fromkeys(request.tolerations):
            if not any(t.get("key") == key for t in tolerations):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoSchedule"})
        pod["tolerations"] = tolerations
    if request.claim is not None:
        claims = [c for c in pod.get("resourceClaims") or [] if c.get("name") != CLAIM_NAME]
        pod["resourceClaims"] = [*claims, {"name": CLAIM_NAME,
                                           "resourceClaimTemplateName": request.claim_template_name}]
        if container is not None:
            resources = container.setdefault("resources", {})
            refs = [c for c in resources.get("claims") or [] if c.get("name") != CLAIM_NAME]
            resources["claims"] = [*refs, {"name": CLAIM_NAME}]


__all__ = [
    "CLAIM_NAME", "CLAIM_TEMPLATE_SUFFIX", "AcceleratorRequest", "RenderError", "apply", "claim_spec",
    "claim_template", "find_group", "render",
]
