"""What no pod security level lets a job do: reach into another tenant's workloads on a shared member.

The Pod Security Standards guard a member's nodes from a pod; these rules
guard one organisation's workloads from another's in the namespace they
share on a member. The workload controllers there find their pods, and the
Services in front of them, by labels: a pod template carrying `ray.io/cluster`
or `jobset.sigs.k8s.io/jobset-name` of another job makes its pods endpoints of
that job's head or headless Service, and they receive its traffic. Kueue
reads its queue and priority from labels too, which the agent sets (Kueue
mode) or the provider does. A Service's `externalIPs` intercepts traffic to
those addresses cluster-wide (CVE-2020-8554), and a RayJob's `clusterSelector`
runs the job's code on a Ray cluster already running there, another job's.

So whatever the level (`privileged` included), the federator refuses these at
submit (`server/templates.owned_problems`) and each agent refuses them before
it creates anything (`backends/kube`), naming the field and whose it is. The
agent's own keys (`podtemplates.AGENT_KEYS`) are refused at submit apart: the
agent stamps them on what it renders, so it cannot refuse them itself.

Pure: plain dicts in, (field, problem) pairs out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.security.podsecurity import mappings, pod_templates

# Label prefixes a controller selects its pods by (its Services, its own bookkeeping), and whose they are.
CONTROLLER_LABELS: tuple[tuple[str, str], ...] = (
    ("ray.io/", "KubeRay's: its head Service and autoscaler find a Ray cluster's pods by it"),
    ("jobset.sigs.k8s.io/", "the JobSet controller's: its headless Service finds a JobSet's pods by it"),
    ("leaderworkerset.sigs.k8s.io/", "the LeaderWorkerSet controller's: it finds a group's pods by it"),
    ("batch.kubernetes.io/", "the Job controller's: it finds a Job's pods by it"),
    ("training.kubeflow.org/", "the training operator's: its Services find a job's pods by it"),
    ("trainer.kubeflow.org/", "Kubeflow Trainer's: it finds a TrainJob's pods by it"),
)
# Annotation prefixes a controller writes on the pods it makes and reads back (the JobSet and LeaderWorkerSet
# webhooks place pods by them). `alpha.jobset.sigs.k8s.io/exclusive-topology` and Kueue's topology requests
# are a job's to ask, and other prefixes.
CONTROLLER_ANNOTATIONS: tuple[tuple[str, str], ...] = (
    ("jobset.sigs.k8s.io/", "the JobSet controller's: it marks the pods it makes with it"),
    ("leaderworkerset.sigs.k8s.io/", "the LeaderWorkerSet controller's: it marks the pods it makes with it"),
    ("batch.kubernetes.io/", "the Job controller's: it marks the pods it makes with it"),
)
_METADATA = frozenset({"metadata"})  # an object's labels are read from its node, not walked as nodes of their own
_TAIL = ", and a pod carrying another job's would be taken for one of that job's pods"
# Kueue's labels, on any object of a job (the workload, a Job template inside it, a pod template): Kueue admits a
# workload by its queue and priority labels, and takes pods labelled so for its own (its pod integration). Every
# JobSet of a team coming from MultiKueue carries the first two, so their refusal names where each goes here
# (outside QA, teams from MultiKueue, M1: the team learnt only that the label was wrong).
_KUEUE_WHY = "Kueue's: the queue and priority a member admits a workload by are its operator's and its agent's to pick"
KUEUE_LABELS = (
    ("kueue.x-k8s.io/queue-name", f"{_KUEUE_WHY}; leave it out: the queue a job counts against is spec.queue "
                                  "(`federator get queues` lists yours), and a member's Kueue LocalQueue is its "
                                  "agent's (--kueue-queue)"),
    ("kueue.x-k8s.io/priority-class", f"{_KUEUE_WHY}; leave it out: a job's order and what it may preempt are "
                                      "spec.priority and spec.preemptible"),
    ("kueue.x-k8s.io/", f"{_KUEUE_WHY}; leave it out"),
)
# Labels on a workload object itself that a controller acts on: KubeRay takes a Ray cluster's scheduler and
# priority class from `ray.io/scheduler-name` and `ray.io/priority-class-name` (a system class would preempt
# whatever runs on the node, as the pod field `priorityClassName` would, which the Pod Security check refuses).
WORKLOAD_LABELS = (("ray.io/", "KubeRay's: it picks a Ray cluster's scheduler and priority class by it"),)


def problems(obj: object, at: str, *, template: bool = False) -> list[tuple[str, str]]:
    """(field, problem) for what `obj` may not carry at any level: a workload object, or (`template`) a pod
    template (`{metadata, spec}`), as a job gives it; `at` is its path ("" for a rendered workload)."""
    prefix = f"{at}." if at else ""
    found: list[tuple[str, str]] = []
    templates = [(at, obj)] if template else [(f"{prefix}{p}" if p else at, t) for p, t in pod_templates(obj)]
    for where, pod in templates:
        meta = _mapping(_mapping(pod).get("metadata"))
        where = f"{where}.metadata" if where else "metadata"
        found += _keys(meta.get("labels"), f"{where}.labels", CONTROLLER_LABELS, _TAIL)
        found += _keys(meta.get("annotations"), f"{where}.annotations", CONTROLLER_ANNOTATIONS, _TAIL)
    for where, node in mappings(obj, at, skip=_METADATA):
        own = node.get("metadata")
        if isinstance(own, Mapping):
            found += _keys(own.get("labels"), f"{where}.metadata.labels" if where else "metadata.labels",
                           KUEUE_LABELS + (WORKLOAD_LABELS if node is obj and not template else ()))
        if (where == "spec" or where.endswith(".spec")) and node.get("managedBy"):
            found.append((f"{where}.managedBy", "not allowed in a job: it hands the workload to another controller "
                                                "than the member's own (MultiKueue on a member would send it to "
                                                "clusters the federator did not choose); leave it out"))
        for key in ("headService", "serveService"):  # the Services KubeRay makes from a Service spec of the job's
            ips = _mapping(_mapping(node.get(key)).get("spec")).get("externalIPs")
            if ips:
                found.append((f"{where}.{key}.spec.externalIPs" if where else f"{key}.spec.externalIPs",
                              "not allowed in a job: a Service's external IPs take the traffic every pod of the "
                              "cluster sends to those addresses (CVE-2020-8554)"))
    spec = _mapping(_mapping(obj).get("spec"))
    if not template and _mapping(obj).get("kind") == "RayJob" and spec.get("clusterSelector"):
        found.append((f"{prefix}spec.clusterSelector", "not allowed in a job: it runs the job on a Ray cluster already "
                                                       "running in the member's namespace, another job's; give "
                                                       "rayClusterSpec"))
    return found


def _keys(value: object, at: str, owners: tuple[tuple[str, str], ...], tail: str = "") -> list[tuple[str, str]]:
    found = []
    for key in sorted(value) if isinstance(value, Mapping) else ():
        whose = next((why for start, why in owners if str(key).startswith(start)), "")
        if whose:
            found.append((f"{at}[{key}]", f"is {whose}{tail}"))
    return found


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


__all__ = ["CONTROLLER_ANNOTATIONS", "CONTROLLER_LABELS", "KUEUE_LABELS", "WORKLOAD_LABELS", "problems"]
