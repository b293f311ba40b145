"""A gang replica's crash that follows a peer's node going silent is the member's fault, not the user's code.

The ranks of a training gang wait on each other in every collective. When one replica's node stops answering
(power, a kernel panic, its NIC: the kubelet goes quiet, the node turns NotReady with the unreachable taint) the
member keeps that pod "Running" for the 300 s toleration, but the other ranks' collectives time out (pretraining
teams set short NCCL/gloo timeouts to fail fast) and they exit non-zero. That exit came first, so the gang's Job
failed "for the user's code": the agent reported the placement Failed, `pod p-0 on node h100-0: container main
exited with code 1`, and a run past `--early-failure-seconds` was over for good, while a node deleted or a pod
evicted under the same gang is re-queued (pod_faults.py, gang_health.py). Outside pretraining QA, P1.

So a container's exit (a `PodFault` that is not a disruption) is taken as the member's doing when, at the exit,
another pod of the same placement was bound to a node that had stopped answering (NotReady or unreachable since
no later than the exit) or that is gone: the placement is ended as stopped by the cluster, naming the node and
then the crash, and the federator queues the job again. A node that went silent only after the crash is not
blamed: the user's code failed first. The price: a replica that crashes for its own reasons while a peer's node
happens to be silent is run again (and would then fail on its own).

Pure: plain dicts (the API objects) in, values out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from federator.backends.kube.gang_health import node_unready
from federator.backends.kube.pod_faults import PodFault, api_seconds

NODE_SILENT = "NodeNotReady"
"""The cause (`PodFault.cause`) of a crash blamed on a silent node; stops.py counts it as a node lost."""


def blamed_on_a_silent_node(fault: PodFault, pods: Iterable[Mapping[str, Any]],
                            nodes: Mapping[str, Mapping[str, Any]], *, gone: Collection[str] = ()) -> PodFault:
    """`fault` as the member's doing when a pod of `pods` (the placement's) sat on a node of `nodes` (name ->
    Node, the agent's watch) that had stopped answering by the time of `fault` (or on a node in `gone`, seen
    deleted); else `fault` unchanged. Disruptions and deletions are the member's already: unchanged."""
    if fault.disruption:
        return fault
    for pod in pods:
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if not node:
            continue
        name = str((pod.get("metadata") or {}).get("name", ""))
        if node in gone:
            said = f"node {node} was deleted under pod {name}"
        elif node in nodes:
            unready, since = node_unready(nodes[node])
            began = api_seconds(since)
            if not unready or (began is not None and fault.at is not None and began > fault.at):
                continue  # answering, or silent only after the crash: the crash was the code's own
            said = f"node {node} stopped answering (NotReady{' since ' + since if since else ''}) under pod {name}"
        else:
            continue
        return PodFault(True, f"{said}; then {fault.message}, as a rank does when a peer goes silent",
                        at=fault.at, cause=NODE_SILENT)
    return fault


__all__ = ["NODE_SILENT", "blamed_on_a_silent_node"]
