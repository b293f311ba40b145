"""The member's agent holds what a workload kind makes of its own fields to its own level, and refuses at every
level what would reach into another job in its namespace, before it creates anything (red team: a RayJob's
privileged autoscaler and LoadBalancer head, a JobSet pod labelled as another job's Ray head, reached a member)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.workloads.jobset import JobSetAdapter
from federator.backends.kube.workloads.ray import RayJobAdapter
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources
from federator.security.podsecurity import PodSecurity, PodSecurityLevel

from kube_fakes import RecordingApi, started_backend

RAY = "spec.rayClusterSpec"
POD = {"spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "llm:1",
                                                          "resources": {"limits": {"cpu": "1"}}}]}}


def rayjob(**cluster: Any) -> dict[str, Any]:
    head = {"rayStartParams": {}, "template": {"spec": {"containers": [
        {"name": "ray-head", "image": "rayproject/ray:2.9.0", "resources": {"limits": {"cpu": "1"}}}]}}}
    head.update(cluster.pop("head", {}))
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "spec": {"entrypoint": "python x.py",
                                                                  "rayClusterSpec": {"headGroupSpec": head, **cluster}}}


def jobset(pod: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "spec": {"replicatedJobs": [
        {"name": "w", "template": {"spec": {"template": pod}}}]}}


def backend(api: RecordingApi, **kw: Any) -> KubeBackend:
    b = started_backend(api, **kw)
    for adapter in (JobSetAdapter(), RayJobAdapter()):
        b.served[adapter.key] = adapter
    return b


def launch(workload: dict[str, Any], **kw: Any) -> tuple[str | None, RecordingApi]:
    """A job stored by a federator at privileged (or before these rules), launched on member-a."""
    api = RecordingApi()
    spec = JobSpec(name="w", kind=JobKind.TRAINING, replicas=1, resources=Resources(cpu_milli=1000),
                   workload_json=json.dumps(workload))
    placement = Placement(PlacementId("w-abc.g1.member-a"), JobId("w-abc"), "member-a", "east", 1, "", 1)
    return asyncio.run(backend(api, **kw).launch(placement, spec)), api


def test_a_privileged_autoscaler_is_refused_by_the_members_baseline() -> None:
    why, api = launch(rayjob(enableInTreeAutoscaling=True, autoscalerOptions={"securityContext": {
        "privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}}))
    assert api.created == []
    assert why is not None and why.startswith("member-a refuses by its pod security level baseline: "
                                              f"{RAY}.autoscalerOptions.securityContext.privileged: not allowed")
    assert f"{RAY}.autoscalerOptions.securityContext.capabilities.add[0]" in why


def test_a_head_service_beyond_the_cluster_is_refused_by_the_members_baseline() -> None:
    why, api = launch(rayjob(head={"serviceType": "LoadBalancer", "headService": {"spec": {"type": "NodePort"}}}))
    assert api.created == []
    assert why is not None and f"{RAY}.headGroupSpec.serviceType: not allowed" in why
    assert f"{RAY}.headGroupSpec.headService.spec.type: not allowed" in why
    assert "federator agent --pod-security privileged" in why


def test_another_jobs_controller_labels_are_refused_by_a_privileged_member_too() -> None:
    pod = {"metadata": {"labels": {"ray.io/cluster": "theirs", "ray.io/node-type": "head"}}, **POD}
    why, api = launch(jobset(pod), pod_security=PodSecurity(level=PodSecurityLevel.PRIVILEGED))
    assert api.created == []
    assert why == ("member-a refuses what no pod security level allows: spec.replicatedJobs[0].template.spec."
                   "template.metadata.labels[ray.io/cluster]: is KubeRay's: its head Service and autoscaler find a "
                   "Ray cluster's pods by it, and a pod carrying another job's would be taken for one of that job's "
                   "pods; spec.replicatedJobs[0].template.spec.template.metadata.labels[ray.io/node-type]: is "
                   "KubeRay's: its head Service and autoscaler find a Ray cluster's pods by it, and a pod carrying "
                   "another job's would be taken for one of that job's pods")


def test_external_ips_and_a_cluster_selector_are_refused_by_a_privileged_member() -> None:
    job = rayjob(head={"headService": {"spec": {"externalIPs": ["10.0.0.10"]}}})
    job["spec"]["clusterSelector"] = {"ray.io/cluster": "theirs"}
    why, api = launch(job, pod_security=PodSecurity(level=PodSecurityLevel.PRIVILEGED))
    assert api.created == []
    assert why is not None and f"{RAY}.headGroupSpec.headService.spec.externalIPs: not allowed in a job" in why
    assert "spec.clusterSelector: not allowed in a job" in why


def test_the_agents_own_kueue_label_is_not_taken_for_the_jobs() -> None:
    why, api = launch(jobset(POD), kueue_queue="federated")
    assert why is None
    assert [o["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] for o in api.created] == ["federated"]
    why, api = launch({**jobset(POD), "metadata": {"labels": {"kueue.x-k8s.io/queue-name": "other"}}},
                      kueue_queue="federated")
    assert api.created == []
    assert why is not None and "metadata.labels[kueue.x-k8s.io/queue-name]: is Kueue's" in why
