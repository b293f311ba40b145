"""Why a placement's workload failed: the member's doing (a pod disrupted) or the user's (a container exited).

A gang Job fails as a whole when one pod fails (`backoffLimit: 0`), and the
Job controller then says only "BackoffLimitExceeded: Job has reached the
specified backoff limit", a limit the user never set, naming no pod. A node
drain evicting one replica read exactly like the user's code crashing: the
placement was reported Failed and the job was over for good (found on the test
bed). Kubernetes marks a pod it stops for its own reasons with the condition
`DisruptionTarget` (docs: "Pod disruption conditions"), reason one of:

    PreemptionByScheduler    preempted for a pod of higher priority
    DeletionByTaintManager   a NoExecute taint it does not tolerate
    EvictionByEvictionAPI    the Eviction API (`kubectl drain`, descheduler)
    DeletionByPodGC          bound to a node that no longer exists
    TerminationByKubelet     node-pressure eviction, graceful node shutdown,
                             preemption by a system-critical pod

So the agent records the first fault of each placement's pods as its watch
sees them (`pod_fault`): a disruption, or a container that exited non-zero on
a pod nobody was deleting (a pod killed because it was being deleted, by the
Job controller ending the gang say, is a consequence, not a cause). A
workload that fails after a disruption was stopped by the cluster: reported
Cancelled, naming the pod, the node and the cause, and the federator queues
the job again. One that fails after a container's exit is Failed, naming the
pod and the exit code. A Job whose own podFailurePolicy (its author's) failed
it for a disrupted pod says so in its condition (`disrupted_job`), and is
Cancelled too.

Why the agent does not give the gang Job a podFailurePolicy (FailJob on
DisruptionTarget) to say it: with any podFailurePolicy the Job controller
counts a failed pod only once it reaches a terminal phase, so a pod stuck
terminating (its node unreachable; on the test bed, kwok nodes, where a
drained pod never terminated and the drain never ended) holds the rest of the
gang and its accelerators until pod garbage collection; without one the gang
fails as soon as the pod is terminating. The pod's DisruptionTarget
condition is set before the pod goes, and the agent's pod watch sees it.
What that misses: an agent restarted between the eviction and the Job's
failure reports Failed, with the Job's words. (Ignore would be worse: a
replacement pod cannot rejoin a rendezvous that began without it.)

A pod deleted first, with no DisruptionTarget (`kubectl delete pod` by the
member's operator, or a member controller that deletes pods), is the
member's doing too: the gang fails for it, not for the user's code, and was
reported Failed for good. So the first deletion of a placement's pods is a
fault of the member's (`deleted`), unless the workload ended itself first
for a rule of its author's (`activeDeadlineSeconds`: the Job controller
deletes the pods it ends, `ended_by_its_own_rule`). A deletion after a
container's exit is the consequence, as before: the exit was recorded first.

What the pod watch cannot see: the watch keeps only active pods (backend.py, `ACTIVE_PODS`, so a member's
thousands of finished pods are neither listed nor cached), and a pod that turns Failed leaves it with a
DELETED event carrying its state *before* (Running): its exit code never reached `pod_fault`. The first fault
the agent saw of a gang whose replica crashed was then the Job controller deleting the surviving replica,
"deleted in the member cluster", and the job was re-queued, that cluster avoided, again and again, never
failing and never naming the exit code (outside tester, F1). So when a workload fails and the agent saw no
fault or only a deletion, it reads the placement's pods once (one list by its placement label; the Job
controller keeps a failed pod until the Job goes) and `cause_among` picks what failed first: a container's exit
on a pod nobody was deleting, unless the deletion came strictly earlier (by their timestamps: a container's
`finishedAt`, a deletion's request, its `deletionTimestamp` less its grace period). A tie goes to the exit: the
Job controller deletes the rest of a gang within the second it sees a replica fail.

Pure: plain dicts (the API objects) in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

DISRUPTION_TARGET = "DisruptionTarget"

_DONE_BY = {
    "EvictionByEvictionAPI": "evicted from node {node}",
    "PreemptionByScheduler": "preempted on node {node}",
    "DeletionByTaintManager": "deleted from node {node} by the taint manager",
    "DeletionByPodGC": "deleted with node {node}, which is gone",
    "TerminationByKubelet": "terminated by the kubelet of node {node}",
}


@dataclass(frozen=True, slots=True)
class PodFault:
    """The first thing that went wrong with one of a placement's pods."""

    disruption: bool  # the member's doing (DisruptionTarget), not the user's code
    message: str
    deleted: bool = False  # a pod deleted with no DisruptionTarget: the member's, unless the workload's own rule
    at: float | None = None  # when (epoch seconds): a container's finishedAt, a deletion's request; None: unknown
    cause: str = ""  # a disruption's DisruptionTarget reason (EvictionByEvictionAPI, ...): the agent's stop reason


def _conditions(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in (pod.get("status") or {}).get("conditions") or [] if isinstance(c, Mapping)]


def api_seconds(stamp: Any) -> float | None:
    """An API timestamp ("2026-12-05T10:00:05Z") in epoch seconds, None when absent or unreadable."""
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() if stamp else None
    except ValueError:
        return None


def _deletion_requested(meta: Mapping[str, Any]) -> float | None:
    """When the pod's deletion was asked for: its deletionTimestamp is that moment plus the grace period."""
    due = api_seconds(meta.get("deletionTimestamp"))
    return None if due is None else due - float(meta.get("deletionGracePeriodSeconds") or 0)


def pod_fault(pod: Mapping[str, Any]) -> PodFault | None:
    """The fault this state of a pod shows, if any: a disruption, or a container of it that exited non-zero
    while nobody was deleting the pod."""
    meta = pod.get("metadata") or {}
    name = str(meta.get("name", ""))
    node = str((pod.get("spec") or {}).get("nodeName") or "?")
    for c in _conditions(pod):
        if c.get("type") == DISRUPTION_TARGET and c.get("status") == "True":
            reason = str(c.get("reason") or "")
            done = _DONE_BY.get(reason, "disrupted on node {node}").format(node=node)
            return PodFault(True, f"pod {name} {done} ({DISRUPTION_TARGET}: {reason or 'no reason given'})",
                            cause=reason)
    if meta.get("deletionTimestamp"):  # stopped because it was being deleted: what deleted it is the cause
        return PodFault(True, f"pod {name} on node {node} was deleted in the member cluster", deleted=True,
                        at=_deletion_requested(meta))
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        ended = ((cs or {}).get("state") or {}).get("terminated") or {}
        code = ended.get("exitCode")
        if code:
            why = f" ({ended['reason']})" if ended.get("reason") else ""
            return PodFault(False, f"pod {name} on node {node}: container {cs.get('name')} exited with code "
                                   f"{code}{why}", at=api_seconds(ended.get("finishedAt")))
    if status.get("phase") == "Failed":
        why = ": ".join(str(s) for s in (status.get("reason"), status.get("message")) if s)
        return PodFault(False, f"pod {name} on node {node} failed{': ' + why if why else ''}")
    return None


def cause_among(seen: PodFault | None, pods: Iterable[Mapping[str, Any]]) -> PodFault | None:
    """What failed a workload, given the fault its watch `seen` first (None, or a deletion: callers read the pods
    only then) and its pods as read once it failed: the earliest container exit on a pod nobody was deleting,
    unless `seen` is a deletion known to be strictly earlier (a member's operator deleted a replica, and another
    crashed for want of it); else `seen`."""
    exits = [f for pod in pods if (f := pod_fault(pod)) is not None and not f.disruption]
    if not exits or (seen is not None and not seen.deleted):
        return seen
    first = min(exits, key=lambda f: (f.at is None, f.at or 0.0))  # unknown times last, else in the pods' order
    if seen is not None and seen.at is not None and first.at is not None and seen.at < first.at:
        return seen
    return first


def disrupted_job(job: Mapping[str, Any]) -> str:
    """The Job controller's words when a Job's own podFailurePolicy failed it for a disrupted pod ("Pod
    ns/name has condition DisruptionTarget matching FailJob rule at index 0"), else ""."""
    for c in _conditions(job):
        if c.get("type") in ("Failed", "FailureTarget") and c.get("status") == "True" \
                and c.get("reason") == "PodFailurePolicy" and DISRUPTION_TARGET in str(c.get("message") or ""):
            return str(c.get("message"))
    return ""


OWN_RULES = ("DeadlineExceeded",)
"""Reasons a workload gives for ending itself by its author's rule (activeDeadlineSeconds), deleting its pods."""


def ended_by_its_own_rule(workload: Mapping[str, Any]) -> bool:
    """Whether the workload says it ended for a rule of its author's, so its pods' deletion is its doing."""
    return any(c.get("type") in ("Failed", "FailureTarget") and c.get("status") == "True"
               and c.get("reason") in OWN_RULES for c in _conditions(workload))


__all__ = ["DISRUPTION_TARGET", "PodFault", "api_seconds", "cause_among", "disrupted_job", "ended_by_its_own_rule",
           "pod_fault"]
