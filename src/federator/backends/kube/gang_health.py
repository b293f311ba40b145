"""Whether a placement's replicas run now, read from its pods and their nodes, not from its launch.

A gang Job fails as a whole when a replica fails, so the agent learned of a disrupted gang from the Job's failure
(pod_faults.py). A workload whose controller restarts it instead never fails: a JobSet with
`failurePolicy.maxRestarts` recreates its Jobs after a drain, one pod bound again on 8 accelerators and the other
Pending for ever (no room left), and the placement read "Running, 2/2, 2 replicas running" with nothing in the
agent's log (outside provider QA F13). Nor does a node that stops answering change a pod's phase: every node of
a member NotReady, its gang read "Running 2/2 ready" through the 300 s taint toleration (F10). And a node deleted
under a gang leaves its pod bound to a node that no longer exists until pod garbage collection removes it: the
agent listed the placement as holding the pool's accelerators, which the report no longer had (F2), and blamed
the replica on the healthy node once the Job controller deleted it (F1).

So each change to a placement's pods (or to a node under them) is read here, purely:

* `replica_health`: how many pods run, how many of those are ready (a running pod on a node that is gone or not
  Ready serves nothing and holds up a rendezvous), which wait and why (the scheduler's message), which are bound
  to a node that was deleted;
* `gang_broken`: why a gang that was whole is not any more: some pods hold nodes while others cannot run. The
  backend ends it once that has lasted the gang timeout (gang.py, `GangGuard.broken`): a partial gang holds
  accelerators and runs nothing;
* `node_lost`: a pod bound to a node the agent saw deleted: the gang cannot be whole again, ended at once;
* `unready_note`: the words a placement's message gets while replicas sit on NotReady nodes.

Pure: plain dicts (the API objects) in, values out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

UNREACHABLE_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
"""The taints the node lifecycle controller puts on a node whose kubelet stopped answering."""


@dataclass(frozen=True, slots=True)
class ReplicaHealth:
    """What a placement's pods say now."""

    running: int  # pods in phase Running
    ready: int  # of those, on a node that exists and is Ready, and not saying Ready False themselves
    bound: int  # pods holding a node (bound, on a node that still exists)
    waiting: tuple[str, ...]  # pods not bound to a node (Pending), by name
    waiting_why: str  # the scheduler's message of the first of them that has one ("" if none)
    lost: tuple[tuple[str, str], ...]  # (pod, node) bound to a node that no longer exists
    unready_nodes: tuple[str, ...]  # nodes, sorted, under running pods that are NotReady or unreachable
    unready_pods: int  # running pods on those nodes
    unready_since: str  # the earliest of those nodes' Ready transition ("" if not known)


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def node_unready(node: Mapping[str, Any]) -> tuple[bool, str]:
    """(whether the node is NotReady or unreachable, since when: its Ready condition's lastTransitionTime)."""
    ready = next((c for c in (node.get("status") or {}).get("conditions") or []
                  if isinstance(c, Mapping) and c.get("type") == "Ready"), None)
    since = str((ready or {}).get("lastTransitionTime") or "")
    if ready is None or ready.get("status") != "True":
        return True, since
    tainted = any(t.get("key") in UNREACHABLE_TAINTS for t in (node.get("spec") or {}).get("taints") or [])
    return tainted, since if tainted else ""


def _pod_unready(pod: Mapping[str, Any]) -> bool:
    return any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "False"
               for c in (pod.get("status") or {}).get("conditions") or [])


def replica_health(pods: Iterable[Mapping[str, Any]], nodes: Mapping[str, Mapping[str, Any]], *,
                   gone: Collection[str] = ()) -> ReplicaHealth:
    """Read `pods` (active pods of one placement) against `nodes` (name -> Node, as the agent's watch has them).
    A pod bound to a node in `gone` (the agent saw it deleted) holds nothing: it is lost. A node missing from
    `nodes` but not seen deleted (a watch not caught up with a node just added) says nothing either way."""
    running = ready = bound = 0
    waiting: list[str] = []
    why = ""
    lost: list[tuple[str, str]] = []
    unready_nodes: set[str] = set()
    unready_pods = 0
    since = ""
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            continue
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if not node:
            waiting.append(_name(pod))
            if not why:
                why = next((str(c.get("message")) for c in (pod.get("status") or {}).get("conditions") or []
                            if isinstance(c, Mapping) and c.get("type") == "PodScheduled"
                            and c.get("status") == "False" and c.get("message")), "")
            continue
        if node in gone:
            lost.append((_name(pod), node))
            continue
        bound += 1
        if phase != "Running":
            continue
        running += 1
        unready, at = node_unready(nodes[node]) if node in nodes else (False, "")
        if unready:
            unready_nodes.add(node)
            unready_pods += 1
            since = min(since, at) if since and at else since or at
        elif not _pod_unready(pod):
            ready += 1
    return ReplicaHealth(running=running, ready=ready, bound=bound, waiting=tuple(waiting), waiting_why=why,
                         lost=tuple(lost), unready_nodes=tuple(sorted(unready_nodes)), unready_pods=unready_pods,
                         unready_since=since)


def node_lost(health: ReplicaHealth, gone: Collection[str]) -> str:
    """Why the gang is lost for good ("" if it is not): a pod of it bound to a node the agent saw deleted. Named
    by that pod and node, not by the replica the workload's controller deletes next on a healthy node (F1)."""
    lost = [(pod, node) for pod, node in health.lost if node in gone]
    if not lost:
        return ""
    pod, node = lost[0]
    more = f"; {len(lost)} pods lost in all ({', '.join(p for p, _ in lost)})" if len(lost) > 1 else ""
    return f"node {node} was deleted under pod {pod}, which is lost with it{more}"


def gang_broken(health: ReplicaHealth, want: int) -> str:
    """Why a gang that was whole is not whole now ("" while it is, or while none of it holds a node): some of its
    pods hold nodes while others are not running, waiting for a node or bound to one that is gone."""
    if not health.bound or not (health.waiting or health.lost):
        return ""
    missing = len(health.waiting) + len(health.lost)
    parts = []
    if health.waiting:
        parts.append(f"{len(health.waiting)} pending" + (f": {health.waiting_why}" if health.waiting_why else ""))
    if health.lost:
        parts.append(f"{len(health.lost)} on a node that is gone ({', '.join(n for _, n in health.lost)})")
    return f"{missing} of {max(want, health.bound + missing)} pods not running ({'; '.join(parts)})"


def unready_note(health: ReplicaHealth) -> str:
    """"; 1 of 2 replicas on a NotReady node (member-a-h100-0) since T" while running replicas sit on nodes that
    stopped answering ("" when none do). Kubernetes keeps such pods Running for the taint toleration (300 s by
    default), and they run nothing the job can use."""
    if not health.unready_pods:
        return ""
    noun = "node" if len(health.unready_nodes) == 1 else "nodes"
    since = f" since {health.unready_since}" if health.unready_since else ""
    return (f"; {health.unready_pods} of {health.running} running replicas on a NotReady {noun} "
            f"({', '.join(health.unready_nodes)}){since}")


__all__ = ["UNREACHABLE_TAINTS", "ReplicaHealth", "gang_broken", "node_lost", "node_unready", "replica_health",
           "unready_note"]
