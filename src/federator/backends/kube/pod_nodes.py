"""Which nodes a placement's replicas run on (JobUpdate.nodes), read from its pods' `spec.nodeName`.

Why: the federator picks preemption victims per node (scheduler/nodevictims.py): a replica needs one node's
room, and a capacity report counts nodes by free accelerators without naming them. Without the nodes of the
running work it can only guess (pessimistically) what stopping a set of victims frees on one node, and an outside
QA saw a priority-1000 8-GPU job never get in on a cluster packed with 1-GPU jobs. The simulated agent said its
nodes; the Kubernetes agent said none, so on real members preemption stayed a guess.

What counts: a pod of the placement bound to a node (`spec.nodeName`) and holding it (not Succeeded or Failed,
as the capacity report counts), not being deleted (its replica is leaving: a replacement elsewhere is the one
to count) and not on a node seen deleted (the report no longer has that node). The contract's bounds
(agent.proto, JobUpdate.nodes): a list whose replicas add up to more than the placement's is ignored by the
federator, and more than 1024 entries refuse the whole update, so such a list is not sent at all (an update
without entries keeps what was said). Kubernetes node names are DNS subdomains, within the contract's names.

Which pods are replicas: the federator's, the pods of the pod sets that ask for accelerators (workloads/common.py
`needs`; all pods of CPU-only work), which Placement.replicas counts. A workload with a CPU-only pod beside its
accelerator pods runs more pods than that: a LeaderWorkerSet's CPU leader (a router), a JobSet's launcher or driver
replicatedJob, a PyTorchJob's CPU Master, a RayJob's CPU head (and KubeRay's submitter pod), a TrainJob runtime's
initializer or MPI launcher. Counted, their nodes added up to more than the placement's replicas and the federator
ignored the whole list, so preemption on such a member stayed a guess. So the rule is the federator's, read off
the pods themselves whatever their kind (`replica_pods`): when any of the placement's pods asks for an accelerator
(a resource of a catalog vendor's domain on a container, or the agent's DRA claim), only the pods that ask count;
when none does, every pod counts. One rule for every kind, with no kind's labels to know (a kind added later is
counted right too).

When: the agent re-sends the last list with every update of the placement (agent/agent.py); the backend sends
an update when the list changes (`PodNodes.changed`: a pod bound, or moved), and only then, so a pod's status
churn costs nothing, and answers `nodes_of` for the re-sync of an agent that restarted (its cache was empty).

Pure apart from `PodNodes`, which remembers what was said.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from federator.backends.kube.accelerators import CLAIM_NAME
from federator.backends.kube.capacity import pod_holds_resources
from federator.podtemplates import containers_of
from federator.template_accelerators import is_accelerator_resource

MAX_NODE_ENTRIES = 1024  # agent.proto, JobUpdate.nodes: more refuses the update as malformed

NodeList = tuple[tuple[str, int], ...]
"""(node name, replicas there), sorted by node name: the same pods give the same list."""


def node_replicas(pods: Iterable[Mapping[str, Any]], replicas: int, *, gone: Collection[str] = ()) -> NodeList:
    """The placement's bound replicas per node, of its `pods`; () when none is bound, or when the list would be
    one the federator ignores or refuses (more replicas than the placement's `replicas`, too many nodes)."""
    counts: dict[str, int] = {}
    for pod in pods:
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if not pod_holds_resources(pod) or (pod.get("metadata") or {}).get("deletionTimestamp") or node in gone:
            continue
        counts[node] = counts.get(node, 0) + 1
    if sum(counts.values()) > replicas or len(counts) > MAX_NODE_ENTRIES:
        return ()
    return tuple(sorted(counts.items()))


def asks_accelerators(pod: Mapping[str, Any]) -> bool:
    """Whether a pod asks for an accelerator: a container (or init container) requesting or limiting an accelerator
    resource (template_accelerators.is_accelerator_resource), or the agent's DRA claim on the pod."""
    spec = pod.get("spec") or {}
    claims = spec.get("resourceClaims")
    if isinstance(claims, list) and any(isinstance(c, Mapping) and c.get("name") == CLAIM_NAME for c in claims):
        return True
    for _, _, container in containers_of(spec, ("containers", "initContainers")):
        resources = container.get("resources")
        for part in ("requests", "limits"):
            amounts = resources.get(part) if isinstance(resources, Mapping) else None
            if isinstance(amounts, Mapping) and any(is_accelerator_resource(str(name)) for name in amounts):
                return True
    return False


def replica_pods(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Of a placement's `pods`, those the federator counts as its replicas (see the module): the pods that ask for
    an accelerator when any does (the CPU-only ones beside them are not replicas), else every pod (CPU-only
    work)."""
    pods = list(pods)
    asking = [p for p in pods if asks_accelerators(p)]
    return asking or pods


class PodNodes:
    """The node list last said per placement, so a changed one is news and an unchanged one is not."""

    def __init__(self) -> None:
        self._said: dict[str, NodeList] = {}

    def changed(self, placement_id: str, nodes: NodeList) -> bool:
        """Whether `nodes` is worth an update: some replica is bound and the list differs from the last said."""
        return bool(nodes) and nodes != self._said.get(placement_id)

    def said(self, placement_id: str, nodes: NodeList) -> None:
        if nodes:
            self._said[placement_id] = nodes

    def of(self, placement_id: str) -> NodeList:
        """The last list said for the placement (() if none)."""
        return self._said.get(placement_id, ())

    def forget(self, placement_id: str) -> None:
        self._said.pop(placement_id, None)


__all__ = ["MAX_NODE_ENTRIES", "NodeList", "PodNodes", "asks_accelerators", "node_replicas",
           "replica_pods"]
