"""A member cluster's resource model from its Nodes and Pods: a pure function.

What kube-scheduler would count: a node offers its allocatable resources if it
is Ready, not cordoned and carries no NoSchedule/NoExecute taint the
federator's workloads do not tolerate; every non-terminated pod bound to it
holds its effective requests (max of the init containers' and the sum of the
containers', plus overhead). The result is the same `ClusterCapacity` the
simulated backend builds (`backends/sim/nodes.py`): per accelerator pool
(vendor, model), how many usable nodes have 0, 1, 2, ... devices free; which
devices a node has is `discovery.py`'s business (device plugins by the vendor
catalog, MIG, time-slicing, HAMi, DRA).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federator.backends.kube.devices import UNKNOWN_MODEL, DeviceGroup
from federator.backends.kube.discovery import Discovery, default_discovery
from federator.backends.kube.pools import pools
from federator.model import MILLI, ClusterCapacity, QuantityError, Resources, to_bytes, to_milli
from federator.model.node_room import node_room_of
from federator.model.resources import parse_quantity

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
#: Taints the federator's workloads tolerate (they ask for GPUs, so the GPU taint is expected).
DEFAULT_TOLERATED_TAINTS: frozenset[str] = frozenset({GPU_RESOURCE})

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node as the resource model sees it."""

    name: str
    accelerator_model: str  # "" for a node without accelerators; UNKNOWN_MODEL when no label names it
    usable: bool
    why_not: str  # "" when usable
    allocatable: Resources
    capacity_accelerators: int  # whole devices in status.capacity, of any vendor (was capacity_gpus)
    used: Resources

    @property
    def free(self) -> Resources:
        a, u = self.allocatable, self.used
        return Resources(max(0, a.cpu_milli - u.cpu_milli), max(0, a.memory_bytes - u.memory_bytes),
                         max(0, a.accelerator_milli - u.accelerator_milli))

    @property
    def free_accelerators(self) -> int:
        return self.free.accelerator_milli // 1000


def _quantity(raw: object, *, memory: bool = False) -> int:
    if raw is None:
        return 0
    try:
        return to_bytes(raw) if memory else to_milli(raw)
    except QuantityError:
        try:  # finer than the unit ("100u" CPU is 0.1 milli-cores): round up, as the scheduler does
            return to_bytes(math.ceil(parse_quantity(raw) * (1 if memory else MILLI)))
        except QuantityError:  # not a quantity (the API server would not have taken it), or past an int64
            return 0


def resources_of(amounts: Mapping[str, Any] | None) -> Resources:
    amounts = amounts or {}
    return Resources(cpu_milli=_quantity(amounts.get("cpu")),
                     memory_bytes=_quantity(amounts.get("memory"), memory=True),
                     accelerator_milli=_quantity(amounts.get(GPU_RESOURCE)))


def _container_requests(container: Obj) -> Resources:
    res = container.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    # A resource with a limit and no request is requested at its limit (the API server's defaulting).
    return resources_of({k: requests.get(k, limits.get(k)) for k in ("cpu", "memory", GPU_RESOURCE)})


def _max(a: Resources, b: Resources) -> Resources:
    return Resources(
        max(a.cpu_milli, b.cpu_milli),
        max(a.memory_bytes, b.memory_bytes),
        max(a.accelerator_milli, b.accelerator_milli),
    )


def pod_requests(pod: Obj) -> Resources:
    """What a pod holds on its node: max(sum of containers, each init container) + overhead.

    Restartable init containers (sidecars) run alongside the containers, so they add to the sum.
    """
    spec = pod.get("spec") or {}
    total = Resources()
    sidecars = Resources()
    init_peak = Resources()
    for c in spec.get("initContainers") or []:
        r = _container_requests(c)
        if c.get("restartPolicy") == "Always":
            sidecars = sidecars + r
        else:
            init_peak = _max(init_peak, sidecars + r)
    for c in spec.get("containers") or []:
        total = total + _container_requests(c)
    return _max(total + sidecars, init_peak) + resources_of(spec.get("overhead"))


def pod_holds_resources(pod: Obj) -> bool:
    """Bound to a node and not terminated (Succeeded/Failed pods release what they held)."""
    phase = (pod.get("status") or {}).get("phase")
    return bool((pod.get("spec") or {}).get("nodeName")) and phase not in ("Succeeded", "Failed")


def node_usable(node: Obj, tolerated_taints: frozenset[str] = DEFAULT_TOLERATED_TAINTS) -> str:
    """"" if new pods may land on the node, else why not."""
    spec, status = node.get("spec") or {}, node.get("status") or {}
    if spec.get("unschedulable"):
        return "cordoned"
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        return "not Ready"
    for taint in spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and taint.get("key") not in tolerated_taints:
            return f"tainted {taint.get('key')}:{taint.get('effect')}"
    return ""


def node_views(nodes: Iterable[Obj], pods: Iterable[Obj], *,
               tolerated_taints: frozenset[str] = DEFAULT_TOLERATED_TAINTS,
               model_label: str = GPU_PRODUCT_LABEL) -> list[NodeView]:
    """Each node with its model (`model_label`'s value), whether the federator's pods may run there and why not,
    and what its pods hold: the rows the resource model is built from (the one-count accelerator form)."""
    used: dict[str, Resources] = {}
    for pod in pods:
        if pod_holds_resources(pod):
            node = pod["spec"]["nodeName"]
            used[node] = used.get(node, Resources()) + pod_requests(pod)
    views = []
    for node in nodes:
        meta, status = node.get("metadata") or {}, node.get("status") or {}
        name = str(meta.get("name"))
        allocatable = resources_of(status.get("allocatable"))
        capacity_accelerators = resources_of(status.get("capacity")).accelerator_milli // 1000
        model = ""
        if capacity_accelerators or allocatable.accelerator_milli:
            model = str((meta.get("labels") or {}).get(model_label) or UNKNOWN_MODEL)
        why = node_usable(node, tolerated_taints)
        views.append(NodeView(name, model, not why, why, allocatable, capacity_accelerators,
                              used.get(name, Resources())))
    return views


def cluster_capacity(nodes: Iterable[Obj], pods: Iterable[Obj], *,
                     tolerated_taints: frozenset[str] = DEFAULT_TOLERATED_TAINTS,
                     model_label: str = GPU_PRODUCT_LABEL, sequence: int = 0,
                     placement_ids: frozenset[str] = frozenset(), discovery: Discovery | None = None,
                     slices: Iterable[Obj] = (), claims: Iterable[Obj] = (),
                     device_classes: Sequence[str] | None = None,
                     groups: Sequence[DeviceGroup] | None = None) -> ClusterCapacity:
    """The resource model of a cluster from its Node and Pod objects (as the API server sends them).

    Accelerator pools come from `discovery` (device plugins by the catalog, MIG,
    time-slicing, HAMi, DRA slices and claims); `groups` passes groups already
    computed from the same objects.
    """
    nodes = list(nodes)
    pods = [p for p in pods if pod_holds_resources(p)]
    discovery = discovery or default_discovery()
    tolerated = tolerated_taints | discovery.resources
    views = node_views(nodes, pods, tolerated_taints=tolerated, model_label=model_label)
    usable = [v for v in views if v.usable]
    if groups is None:
        groups = discovery.groups(nodes, pods, slices=slices, claims=claims, device_classes=device_classes)
    return ClusterCapacity(
        accelerator_pools=pools(groups, {v.name for v in usable},
                        {v.name: (v.free.cpu_milli, v.free.memory_bytes) for v in usable}),
        cpu_milli_allocatable=sum(v.allocatable.cpu_milli for v in usable),
        cpu_milli_free=sum(v.free.cpu_milli for v in usable),
        memory_bytes_allocatable=sum(v.allocatable.memory_bytes for v in usable),
        memory_bytes_free=sum(v.free.memory_bytes for v in usable),
        node_cpu_milli_free_max=max((v.free.cpu_milli for v in usable), default=0),
        node_memory_bytes_free_max=max((v.free.memory_bytes for v in usable), default=0),
        node_room=node_room_of((v.free.cpu_milli, v.free.memory_bytes) for v in usable),
        largest_node_cpu_milli=max((v.allocatable.cpu_milli for v in views), default=0),  # usable or not, as
        largest_node_memory_bytes=max((v.allocatable.memory_bytes for v in views), default=0),  # a pool's largest
        sequence=sequence,
        placement_ids=placement_ids,
    )


__all__ = [
    "DEFAULT_TOLERATED_TAINTS", "GPU_PRODUCT_LABEL", "GPU_RESOURCE", "NodeView", "cluster_capacity", "node_usable",
    "node_views", "pod_holds_resources", "pod_requests", "resources_of",
]
