"""The member's capacity as the agent reports it: free accelerators per pool, held to the quotas that apply.

Why a module of its own: the report is what the federator places against, and it is assembled from several
guards: the nodes and active pods the informers cache (capacity.py counts them), the accelerators the vendors'
discovery and DRA find (a device no label names the model of, or in units that are not chips, is left out and
said: unlabelled.py, unsupported.py), Kueue's ClusterQueue quota in Kueue mode and the provider's ResourceQuotas
(no more free than they would admit, on the nodes that can run work), and which placements the report counts as
holding their resources already (`_accounted`: the federator reserves the others itself, and fences a listed
placement it does not consider current). A launch reads it too, to refuse a gang the member plainly cannot hold
now (placement_launch.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from federator.backends.kube.api import Obj
from federator.backends.kube.capacity import cluster_capacity, node_usable, pod_holds_resources
from federator.backends.kube.devices import DeviceGroup
from federator.backends.kube.kueue_quota import within_quota
from federator.backends.kube.left_out import left_out_of
from federator.backends.kube.model_clash import one_pool_per_model
from federator.backends.kube.placement_state import PlacementState
from federator.model import ClusterCapacity


class CapacityReport(PlacementState):
    """The capacity report (`capacity`) and what it leaves out."""

    def capacity(self, *, leaving: Collection[str] = ()) -> ClusterCapacity:
        """The member's capacity now; `leaving`: placements whose pods count as gone already (cancelled here, their
        pods still terminating)."""
        self._sequence += 1
        pods = [p for p in self.pods.cache.values() if not leaving or self._placement_of_pod(p) not in leaving]
        groups = self.device_groups(pods)
        self.unlabelled.seen(self.discovery.unlabelled(self.nodes.cache.values()))  # not offered: said, counted
        self.unsupported.seen(self.discovery.unsupported(self.nodes.cache.values()))  # the same
        resources = {g.resource for g in groups if g.resource}
        left = self.gang.quota_left(resources)
        namespace_room = self.quotas.room(resources)
        usable = self._usable_nodes() if left is not None or namespace_room else set()
        if left is not None:  # Kueue mode: no more free than the ClusterQueue would admit, on the nodes that can
            # run work and that one of its flavors runs on
            nodes = list(self.nodes.cache.values())
            groups = within_quota(groups, left, usable, self.gang.quota_nodes(resources, nodes),
                                  self.gang.quota_flavors(resources, nodes))
        if namespace_room:  # a ResourceQuota's room, held the same way (on top of Kueue's, where both apply)
            groups = within_quota(groups, namespace_room, usable)
        cap = cluster_capacity(self.nodes.cache.values(), pods,
                               tolerated_taints=self.tolerated_taints, sequence=self._sequence,
                               placement_ids=self._accounted(pods), discovery=self.discovery, groups=groups)
        kept, clashing = one_pool_per_model(cap.accelerator_pools)  # one pool per model name (model_clash.py)
        unsupported = dict(self.unsupported.by_resource)
        for resource, devices in self.clashes.seen(kept, clashing).items():
            unsupported[resource] = unsupported.get(resource, 0) + devices
        left_out = left_out_of({"unlabelled": dict(self.unlabelled.by_resource),  # shown at the federator too
                                "unsupported": unsupported})
        return replace(cap, accelerator_pools=kept, workload_kinds=frozenset(self.served), left_out=left_out)

    @property
    def unlabelled_accelerators(self) -> Mapping[str, int]:
        """Per resource, the devices left out of the last report because no label names their model."""
        return self.unlabelled.by_resource

    @property
    def unsupported_accelerators(self) -> Mapping[str, int]:
        """Per resource, the devices left out of the last report because their units are not chips (vNPU)."""
        return self.unsupported.by_resource

    def device_groups(self, pods: Sequence[dict[str, Any]] | None = None) -> list[DeviceGroup]:
        """The accelerators of every node now: what the capacity report counts and a launch renders."""
        return self.dra.groups(self.discovery, list(self.nodes.cache.values()),
                               list(self.pods.cache.values()) if pods is None else list(pods))

    def _usable_nodes(self) -> set[str]:
        """The nodes a replica can land on now (Ready, not cordoned, no taint the agent does not tolerate)."""
        taints = self.tolerated_taints | self.discovery.resources
        return {str((n.get("metadata") or {}).get("name", "")) for n in self.nodes.cache.values()
                if not node_usable(n, taints)}

    def _accounted(self, pods: Iterable[Obj]) -> frozenset[str]:
        """Active placements whose pods all hold node resources already, of `pods`: those the report counts.

        The capacity report counts these; the federator reserves the others itself,
        and fences (cancels) any listed placement it does not consider current. A pod
        counts as the report's resources do (`pod_holds_resources`: bound, and not
        Succeeded or Failed; not on a node seen deleted, which the report no longer has:
        outside provider QA F2), and only among the pods the report counts (not those of
        placements leaving): a placement listed while its pods hold nothing contradicts
        the report, and the federator says so (server/consistency.py).
        """
        bound: dict[str, int] = {}
        for pod in pods:
            pid = self._placement_of_pod(pod)
            if pid and pod_holds_resources(pod) and (pod.get("spec") or {}).get("nodeName") not in self._nodes_gone:
                bound[pid] = bound.get(pid, 0) + 1
        finished = {pid for pid, (phase, _) in self._phases.items() if phase.is_terminal}
        return frozenset(pid for pid, n in bound.items() if n >= self._replicas(pid) and pid not in finished)
