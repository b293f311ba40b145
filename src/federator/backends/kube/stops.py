"""What the member's SRE sees when the agent stops one of its placements for a reason of its own.

The agent deletes a gang's workload when the gang timed out, broke, was disrupted or lost a node, and when the
federator cancels it; the reason was only in the agent's log, and the workload just disappeared from
`kubectl get jobs` (outside provider QA F8). So each such stop is:

* a Kubernetes Event (type Warning, except a cancel from the federator) on the workload object, or on its
  namespace when the object is gone already, written before the delete goes out, so `kubectl describe` and
  `kubectl get events` on the member say why (the agent's RBAC grants `events create` in its namespaces since
  agent chart 0.4.6; an Event that cannot be written is logged and dropped, as events.py does);
* one count of `federator_agent_placements_stopped_total{reason}` (agent/metrics.py), so a provider can alert on
  federated gangs its cluster killed.

`StopReason` is the bounded label: `evicted` (a drain, the taint manager, the kubelet), `preempted` (the
scheduler, for a pod of higher priority), `node_lost` (a node deleted under a pod), `pod_deleted` (a pod deleted by the
member with no disruption condition), `gang_timeout` (never whole in time), `gang_broken` (whole once, then not
for the gang timeout), `create_forbidden` (the member refused to create its pods: a quota, a LimitRange, an admission
webhook; create_refusals.py), `cancelled` (the federator's order).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from federator.backends.kube.events import EventRecorder
from federator.backends.kube.pod_faults import PodFault
from federator.timestamps import utc_seconds

COMPONENT = "federator-agent"


class StopReason(StrEnum):
    EVICTED = "evicted"
    PREEMPTED = "preempted"
    NODE_LOST = "node_lost"
    POD_DELETED = "pod_deleted"
    GANG_TIMEOUT = "gang_timeout"
    GANG_BROKEN = "gang_broken"
    CREATE_FORBIDDEN = "create_forbidden"
    CANCELLED = "cancelled"


EVENT_REASONS: Mapping[StopReason, str] = {
    StopReason.EVICTED: "FederatorEvicted",
    StopReason.PREEMPTED: "FederatorPreempted",
    StopReason.NODE_LOST: "FederatorNodeLost",
    StopReason.POD_DELETED: "FederatorPodDeleted",
    StopReason.GANG_TIMEOUT: "FederatorGangTimeout",
    StopReason.GANG_BROKEN: "FederatorGangBroken",
    StopReason.CREATE_FORBIDDEN: "FederatorCreateForbidden",
    StopReason.CANCELLED: "FederatorCancelled",
}
"""The Event's reason per stop: CamelCase, as Kubernetes' own (`FailedScheduling`), prefixed so a member's SRE
can select the agent's (`kubectl get events --field-selector reason=FederatorGangBroken`)."""

_BY_DISRUPTION = {
    "PreemptionByScheduler": StopReason.PREEMPTED,
    "DeletionByPodGC": StopReason.NODE_LOST,
    "NodeNotReady": StopReason.NODE_LOST,  # a crash after a peer's node went silent (silent_nodes.py)
}


def fault_reason(fault: PodFault) -> StopReason:
    """The stop reason of a member's fault (pod_faults.py): its DisruptionTarget reason, or a plain deletion."""
    if fault.deleted:
        return StopReason.POD_DELETED
    return _BY_DISRUPTION.get(fault.cause, StopReason.EVICTED)


def stop_event(reason: StopReason, message: str, *, workload: Mapping[str, Any] | None, namespace: str,
               placement_id: str, now: float, instance: str) -> dict[str, Any]:
    """A core v1 Event on the placement's workload, or on its namespace when the workload is gone."""
    meta = (workload or {}).get("metadata") or {}
    if workload is not None and meta.get("name"):
        involved = {"apiVersion": workload.get("apiVersion", ""), "kind": workload.get("kind", ""),
                    "namespace": namespace, "name": meta["name"], **({"uid": meta["uid"]} if meta.get("uid") else {})}
        prefix = str(meta["name"])
    else:
        involved = {"apiVersion": "v1", "kind": "Namespace", "name": namespace}
        prefix = namespace
    stamp = utc_seconds(now)
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{prefix[:200]}.", "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "federator"},
                     "annotations": {"federator.io/placement-id": placement_id}},
        "involvedObject": involved,
        "reason": EVENT_REASONS[reason], "message": f"placement {placement_id}: {message}"[:1024],
        "type": "Normal" if reason is StopReason.CANCELLED else "Warning",
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT, "reportingInstance": instance[:128],
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


class StopNotices:
    """Counts each stop (`on_stopped`, the agent's metric) and writes its Event (`recorder`, None: no Events)."""

    def __init__(self, recorder: EventRecorder | None, *, instance: str = COMPONENT,
                 clock: Callable[[], float] = time.time) -> None:
        self.recorder = recorder
        self.instance = instance
        self.clock = clock
        self.on_stopped: Callable[[str], None] = lambda _reason: None

    def stopped(self, reason: StopReason, placement_id: str, message: str, *,
                workload: Mapping[str, Any] | None, namespace: str) -> None:
        self.on_stopped(reason.value)
        if self.recorder is not None and namespace:
            self.recorder.record(stop_event(reason, message, workload=workload, namespace=namespace,
                                            placement_id=placement_id, now=self.clock(), instance=self.instance))

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()


__all__ = ["EVENT_REASONS", "StopNotices", "StopReason", "fault_reason", "stop_event"]
