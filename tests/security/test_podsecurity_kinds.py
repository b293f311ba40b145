"""What a workload kind turns into pods and Services of its own, checked like a pod template's fields (red team):
a Ray cluster's autoscaler (a container KubeRay adds to the head pod) and head Service, a Kubeflow job's
scheduling policy, a pod's own scheduler, and a TrainJob's `podTemplateOverrides`."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from federator.security.podsecurity import PodSecurity, PodSecurityLevel, check_object

BASELINE = PodSecurity()
RESTRICTED = PodSecurity(level=PodSecurityLevel.RESTRICTED)
PRIVILEGED = PodSecurity(level=PodSecurityLevel.PRIVILEGED)
HARDENED = {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"},
            "capabilities": {"drop": ["ALL"]}}
RAY = "spec.rayClusterSpec"


def rayjob(**cluster: Any) -> dict[str, Any]:
    head = {"rayStartParams": {}, "template": {"spec": {"containers": [
        {"name": "ray-head", "image": "rayproject/ray:2.9.0", "securityContext": HARDENED}]}}}
    head.update(cluster.pop("head", {}))
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "spec": {"entrypoint": "python x.py",
                                                                  "rayClusterSpec": {"headGroupSpec": head, **cluster}}}


def pytorchjob(**policy: Any) -> dict[str, Any]:
    pod = {"spec": {"containers": [{"name": "pytorch", "image": "llm:1"}]}}
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": {
        "runPolicy": {"schedulingPolicy": policy}, "pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": pod}}}}


def jobset(**pod: Any) -> dict[str, Any]:
    return {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "spec": {"replicatedJobs": [{
        "name": "w", "template": {"spec": {"template": {"spec": {"containers": [{"name": "w"}], **pod}}}}}]}}


PRIVILEGED_AUTOSCALER = {"securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}}
BASELINE_REFUSALS = [
    ("autoscaler-privileged", rayjob(enableInTreeAutoscaling=True, autoscalerOptions=PRIVILEGED_AUTOSCALER),
     [f"{RAY}.autoscalerOptions.securityContext.privileged",
      f"{RAY}.autoscalerOptions.securityContext.capabilities.add[0]"]),
    ("autoscaler-privileged-even-when-off", rayjob(autoscalerOptions=PRIVILEGED_AUTOSCALER),
     [f"{RAY}.autoscalerOptions.securityContext.privileged",
      f"{RAY}.autoscalerOptions.securityContext.capabilities.add[0]"]),
    ("autoscaler-unconfined", rayjob(autoscalerOptions={"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
     [f"{RAY}.autoscalerOptions.securityContext.seccompProfile.type"]),
    ("head-service-type", rayjob(head={"serviceType": "LoadBalancer"}), [f"{RAY}.headGroupSpec.serviceType"]),
    ("head-service-nodeport", rayjob(head={"serviceType": "NodePort"}), [f"{RAY}.headGroupSpec.serviceType"]),
    ("head-service-spec", rayjob(head={"headService": {"spec": {"type": "ExternalName", "externalName": "x.io"}}}),
     [f"{RAY}.headGroupSpec.headService.spec.type"]),
    ("head-ingress", rayjob(head={"enableIngress": True}), [f"{RAY}.headGroupSpec.enableIngress"]),
    ("rayservice-serve-service",
     {"apiVersion": "ray.io/v1", "kind": "RayService", "spec": {
         "serveService": {"spec": {"type": "LoadBalancer"}}, "rayClusterConfig": rayjob()["spec"]["rayClusterSpec"]}},
     ["spec.serveService.spec.type"]),
    ("scheduling-policy-priority", pytorchjob(priorityClass="system-node-critical"),
     ["spec.runPolicy.schedulingPolicy.priorityClass"]),
    ("scheduling-policy-queue", pytorchjob(queue="provider-reserved"), ["spec.runPolicy.schedulingPolicy.queue"]),
    ("scheduler-name", jobset(schedulerName="volcano"),
     ["spec.replicatedJobs[0].template.spec.template.spec.schedulerName"]),
    ("trainjob-template-override-host-path",
     {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "spec": {"podTemplateOverrides": [
         {"targetJobs": [{"name": "node"}], "spec": {"hostPID": True, "volumes": [{"name": "r", "hostPath": {
             "path": "/"}}]}}]}},  # no containers: not a pod template, and so not read at all before
     ["spec.podTemplateOverrides[0].spec.hostPID", "spec.podTemplateOverrides[0].spec.volumes[0].hostPath"]),
]


@pytest.mark.parametrize(("obj", "fields"), [(o, f) for _, o, f in BASELINE_REFUSALS],
                         ids=[i for i, _, _ in BASELINE_REFUSALS])
def test_baseline_refuses_what_a_kind_makes_of_its_own_fields(obj: dict[str, Any], fields: list[str]) -> None:
    found = check_object(obj, policy=BASELINE)
    assert [v.field for v in found] == fields
    assert all(v.problem.startswith('not allowed under pod security "baseline"') for v in found)
    assert {v.field for v in check_object(obj, policy=RESTRICTED)} >= set(fields)
    assert check_object(obj, policy=PRIVILEGED) == []


def test_an_autoscalers_capability_is_named_with_the_flag_that_allows_it() -> None:
    found = check_object(rayjob(enableInTreeAutoscaling=True, autoscalerOptions={"securityContext": {
        "capabilities": {"add": ["IPC_LOCK"]}}}), policy=BASELINE)
    assert [(v.field, v.capability) for v in found] == [
        (f"{RAY}.autoscalerOptions.securityContext.capabilities.add[0]", "IPC_LOCK")]
    assert "federator serve --allow-capability IPC_LOCK" in found[0].problem
    ipc = PodSecurity(allowed_capabilities=frozenset({"IPC_LOCK"}))
    assert check_object(rayjob(enableInTreeAutoscaling=True, autoscalerOptions={"securityContext": {
        "capabilities": {"add": ["IPC_LOCK"]}}}), policy=ipc) == []


@pytest.mark.parametrize("ok", [
    rayjob(), rayjob(head={"serviceType": "ClusterIP", "headService": {"spec": {"type": "ClusterIP"}}}),
    rayjob(enableInTreeAutoscaling=True, autoscalerOptions={"env": [{"name": "A", "value": "1"}],
                                                           "resources": {"limits": {"cpu": "1"}}}),
    pytorchjob(priorityClass="high", minAvailable=2), jobset(schedulerName="default-scheduler"),
    jobset(runtimeClassName="nvidia")], ids=["plain", "cluster-ip", "autoscaler-env", "own-priority",
                                             "default-scheduler", "runtime-class"])
def test_baseline_accepts_what_an_ordinary_job_of_each_kind_sets(ok: dict[str, Any]) -> None:
    assert check_object(ok, policy=BASELINE) == []


def test_restricted_holds_the_autoscaler_to_what_it_holds_the_head_pods_containers() -> None:
    """KubeRay's own autoscaler container sets no securityContext: under restricted, autoscalerOptions must."""
    bare = [v.field for v in check_object(rayjob(enableInTreeAutoscaling=True), policy=RESTRICTED)]
    at = f"{RAY}.autoscalerOptions.securityContext"
    assert bare == [f"{at}.allowPrivilegeEscalation", f"{at}.runAsNonRoot", f"{at}.seccompProfile.type",
                    f"{at}.capabilities.drop"]
    assert check_object(rayjob(enableInTreeAutoscaling=True, autoscalerOptions={"securityContext": HARDENED}),
                        policy=RESTRICTED) == []
    assert check_object(rayjob(), policy=RESTRICTED) == []  # no autoscaler: nothing asked of it
    pod_wide = rayjob(enableInTreeAutoscaling=True, autoscalerOptions={"securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}})
    pod_wide["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["securityContext"] = {
        "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert check_object(pod_wide, policy=RESTRICTED) == []


def test_the_template_override_is_not_held_to_what_restricted_asks_of_whole_pods() -> None:
    """An override's containers carry env and mounts merged into the runtime's; the runtime meets restricted."""
    override = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "spec": {"podTemplateOverrides": [
        {"targetJobs": [{"name": "node"}], "spec": {"containers": [{"name": "node", "env": [{"name": "A"}]}]}}]}}
    assert check_object(override, policy=RESTRICTED) == []
    assert check_object(copy.deepcopy(override), policy=BASELINE) == []
