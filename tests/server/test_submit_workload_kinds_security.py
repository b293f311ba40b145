"""What a workload kind makes of its own fields, and what would reach into another job on a shared member, refused
at submit naming the field (red team): a RayJob's autoscaler as a privileged container of the head pod, its head
Service exposed beyond the cluster, a Kubeflow job's system priority class, a pod's own scheduler; and, at every
level, a controller's labels in a pod template, Kueue's labels, a Service's external IPs, a RayJob's
clusterSelector."""

from __future__ import annotations

from typing import Any

import pytest
from server_support import Clock, MemoryStore, make

from federator.jobfile import parse_job
from federator.model import JobSpec
from federator.security.limits import Limits
from federator.security.podsecurity import PodSecurity, PodSecurityLevel
from federator.server.intake import SubmitError

PRIVILEGED = Limits(pod_security=PodSecurity(level=PodSecurityLevel.PRIVILEGED))
POD = {"spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "llm:1",
                                                          "resources": {"limits": {"cpu": "1"}}}]}}
RAY = "spec.workload.spec.rayClusterSpec"


def rayjob(**cluster: Any) -> dict[str, Any]:
    head = {"rayStartParams": {}, "template": {"spec": {"containers": [
        {"name": "ray-head", "image": "rayproject/ray:2.9.0", "resources": {"limits": {"cpu": "1"}}}]}}}
    head.update(cluster.pop("head", {}))
    spec = {"entrypoint": "python x.py", "rayClusterSpec": {"headGroupSpec": head, **cluster}}
    spec.update(spec["rayClusterSpec"].pop("job", {}))
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "spec": spec}


def jobset(pod: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "spec": {"replicatedJobs": [
        {"name": "w", "template": {"spec": {"template": pod}}}]}}


def pytorchjob(**policy: Any) -> dict[str, Any]:
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": {
        "runPolicy": {"schedulingPolicy": policy}, "pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": POD}}}}


def labelled(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"labels": labels or {}, "annotations": annotations or {}}, **POD}


def _job(workload: dict[str, Any] | None = None, **spec: Any) -> JobSpec:
    body = {"workload": workload} if workload else {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}}
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "w"},
                      "spec": {**body, **spec}})


def _refused(spec: JobSpec, limits: Limits | None = None) -> str:
    fed = make(MemoryStore(), Clock(), limits=limits or Limits())
    with pytest.raises(SubmitError) as err:
        fed.submit(spec)
    assert not fed.jobs
    return str(err.value)


def _accepted(spec: JobSpec, limits: Limits | None = None) -> None:
    assert make(MemoryStore(), Clock(), limits=limits or Limits()).submit(spec).job_id


AUTOSCALER = {"securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}}
BY_LEVEL = [
    ("autoscaler-privileged", _job(rayjob(enableInTreeAutoscaling=True, autoscalerOptions=AUTOSCALER)),
     f"{RAY}.autoscalerOptions.securityContext.privileged: not allowed under pod security \"baseline\""),
    ("head-load-balancer", _job(rayjob(head={"serviceType": "LoadBalancer"})),
     f"{RAY}.headGroupSpec.serviceType: not allowed under pod security \"baseline\" ('LoadBalancer'"),
    ("head-service-node-port", _job(rayjob(head={"headService": {"spec": {"type": "NodePort"}}})),
     f"{RAY}.headGroupSpec.headService.spec.type: not allowed"),
    ("pytorch-system-priority", _job(pytorchjob(priorityClass="system-node-critical")),
     "spec.workload.spec.runPolicy.schedulingPolicy.priorityClass: not allowed under pod security \"baseline\" "
     "('system-node-critical' is for the cluster's own pods"),
    ("scheduler-name", _job(template={"spec": {"schedulerName": "volcano", "containers": [{"name": "m"}]}}),
     "spec.template.spec.schedulerName: not allowed under pod security \"baseline\" ('volcano'"),
]


@pytest.mark.parametrize(("spec", "said"), [(s, w) for _, s, w in BY_LEVEL], ids=[i for i, _, _ in BY_LEVEL])
def test_a_kinds_own_fields_are_refused_at_baseline_and_privileged_allows_them(spec: JobSpec, said: str) -> None:
    assert said in _refused(spec)
    _accepted(spec, PRIVILEGED)


ANY_LEVEL = [
    ("ray-label-in-jobset", _job(jobset(labelled({"ray.io/cluster": "theirs", "ray.io/node-type": "head"}))),
     "spec.workload.spec.replicatedJobs[0].template.spec.template.metadata.labels[ray.io/cluster]: is KubeRay's"),
    ("jobset-label-in-template", _job(template=labelled({"jobset.sigs.k8s.io/jobset-name": "theirs"})),
     "spec.template.metadata.labels[jobset.sigs.k8s.io/jobset-name]: is the JobSet controller's"),
    ("lws-annotation", _job(template=labelled(annotations={"leaderworkerset.sigs.k8s.io/size": "4"})),
     "spec.template.metadata.annotations[leaderworkerset.sigs.k8s.io/size]: is the LeaderWorkerSet controller's"),
    ("job-controller-uid", _job(template=labelled({"batch.kubernetes.io/controller-uid": "u"})),
     "spec.template.metadata.labels[batch.kubernetes.io/controller-uid]: is the Job controller's"),
    ("training-operator", _job(jobset(labelled({"training.kubeflow.org/job-name": "theirs"}))),
     "labels[training.kubeflow.org/job-name]: is the training operator's"),
    ("trainer", _job(template=labelled({"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"})),
     "labels[trainer.kubeflow.org/trainjob-ancestor-step]: is Kubeflow Trainer's"),
    ("kueue-queue-on-workload", _job({**jobset(POD), "metadata": {"labels": {"kueue.x-k8s.io/queue-name": "x"}}}),
     "spec.workload.metadata.labels[kueue.x-k8s.io/queue-name]: is Kueue's"),
    ("kueue-priority-on-pods", _job(template=labelled({"kueue.x-k8s.io/priority-class": "top"})),
     "spec.template.metadata.labels[kueue.x-k8s.io/priority-class]: is Kueue's"),
    ("external-ips", _job(rayjob(head={"headService": {"spec": {"externalIPs": ["10.0.0.10"]}}})),
     f"{RAY}.headGroupSpec.headService.spec.externalIPs: not allowed in a job: a Service's external IPs"),
    ("cluster-selector", _job(rayjob(job={"clusterSelector": {"ray.io/cluster": "theirs"}})),
     "spec.workload.spec.clusterSelector: not allowed in a job"),
    ("ray-priority-on-workload", _job({**rayjob(), "metadata": {"labels": {
        "ray.io/priority-class-name": "system-node-critical"}}}),
     "spec.workload.metadata.labels[ray.io/priority-class-name]: is KubeRay's"),
    ("managed-by-jobset", _job({**jobset(POD), "spec": {**jobset(POD)["spec"],
                                                       "managedBy": "kueue.x-k8s.io/multikueue"}}),
     "spec.workload.spec.managedBy: not allowed in a job: it hands the workload to another controller"),
    ("managed-by-nested-job", _job({"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "spec": {
        "replicatedJobs": [{"name": "w", "template": {"spec": {"managedBy": "example.com/other",
                                                               "template": POD}}}]}}),
     "spec.workload.spec.replicatedJobs[0].template.spec.managedBy: not allowed in a job"),
    ("alternative", _job(template=POD, accelerators=[{"model": "A100", "count": 1,
                                                      "template": labelled({"ray.io/node-type": "head"})}]),
     "spec.accelerators[0].template.metadata.labels[ray.io/node-type]: is KubeRay's"),
]


@pytest.mark.parametrize(("spec", "said"), [(s, w) for _, s, w in ANY_LEVEL], ids=[i for i, _, _ in ANY_LEVEL])
def test_what_reaches_into_another_job_is_refused_at_every_level(spec: JobSpec, said: str) -> None:
    assert said in _refused(spec)
    assert said in _refused(spec, PRIVILEGED)


@pytest.mark.parametrize("spec", [
    _job(rayjob(enableInTreeAutoscaling=True, autoscalerOptions={"env": [{"name": "A", "value": "1"}]},
                head={"serviceType": "ClusterIP"})),
    _job(template=labelled({"app.kubernetes.io/managed-by": "helm", "app": "train"},
                           {"alpha.jobset.sigs.k8s.io/exclusive-topology": "rack",
                            "kueue.x-k8s.io/podset-required-topology": "rack"})),
    _job(template={"spec": {"runtimeClassName": "nvidia", "schedulerName": "default-scheduler",
                            "containers": [{"name": "m"}]}}),
], ids=["rayjob-autoscaler", "own-labels-and-topology", "runtime-class"])
def test_what_an_ordinary_job_sets_is_accepted(spec: JobSpec) -> None:
    _accepted(spec)


def test_a_multikueue_jobset_is_told_where_its_queue_and_priority_go() -> None:
    """Outside QA, teams from MultiKueue, M1: every JobSet of theirs carries Kueue's queue and priority labels; the
    refusal said only that the labels were Kueue's, so the team learnt that its manifest was wrong, not what to
    write instead."""
    said = _refused(_job({**jobset(POD), "metadata": {"labels": {"kueue.x-k8s.io/queue-name": "team-a-lq",
                                                                 "kueue.x-k8s.io/priority-class": "high"}}}))
    assert ("spec.workload.metadata.labels[kueue.x-k8s.io/queue-name]: is Kueue's: the queue and priority a member "
            "admits a workload by are its operator's and its agent's to pick; leave it out: the queue a job counts "
            "against is spec.queue (`federator get queues` lists yours), and a member's Kueue LocalQueue is its "
            "agent's (--kueue-queue)") in said
    assert ("spec.workload.metadata.labels[kueue.x-k8s.io/priority-class]: is Kueue's: the queue and priority a "
            "member admits a workload by are its operator's and its agent's to pick; leave it out: a job's order and "
            "what it may preempt are spec.priority and spec.preemptible") in said
    pod_label = _refused(_job(template=labelled({"kueue.x-k8s.io/pod-group-name": "g"})))
    assert "labels[kueue.x-k8s.io/pod-group-name]: is Kueue's: the queue and priority" in pod_label
    assert "pick; leave it out" in pod_label
