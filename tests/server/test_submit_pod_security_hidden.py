"""Pod templates a workload hides from the pod security check at submit (red team).

A decoy: an outer mapping of the workload (the JobSet's own `spec`, a replicated Job's template) given a
`spec.containers` of its own was taken for the pod template and the walk stopped there, so the real templates
under it (privileged, hostPID) went unchecked; the member's API server prunes the unknown field without a word
and runs them. And a TrainJob's `spec.podSpecOverrides`, which the trainer merges into its runtime's pods,
was not read at all: a hostPath volume there reached the member's nodes."""

from __future__ import annotations

from typing import Any

import pytest
from server_support import Clock, MemoryStore, make

from federator.jobfile import parse_job
from federator.model import JobSpec
from federator.security.limits import Limits
from federator.security.podsecurity import PodSecurity, PodSecurityLevel
from federator.server.intake import SubmitError

PRIVILEGED_POD = {"spec": {"hostPID": True, "restartPolicy": "Never", "containers": [
    {"name": "w", "image": "llm:1", "securityContext": {"privileged": True}, "resources": {"limits": {"cpu": "1"}}}]}}


def _job(workload: dict[str, Any]) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "w"},
                      "spec": {"workload": workload}})


def _refused(spec: JobSpec) -> str:
    fed = make(MemoryStore(), Clock(), limits=Limits())
    with pytest.raises(SubmitError) as err:
        fed.submit(spec)
    assert not fed.jobs
    return str(err.value)


def jobset(decoy_at: str) -> dict[str, Any]:
    job_template: dict[str, Any] = {"spec": {"template": PRIVILEGED_POD}}
    spec: dict[str, Any] = {"replicatedJobs": [{"name": "workers", "template": job_template}]}
    if decoy_at == "jobset":
        spec["containers"] = []
    else:
        job_template["spec"]["containers"] = []
    return {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "spec": spec}


@pytest.mark.parametrize("decoy_at", ["jobset", "job-template"])
def test_a_decoy_containers_list_above_a_pod_template_does_not_hide_it(decoy_at: str) -> None:
    said = _refused(_job(jobset(decoy_at)))
    at = "spec.workload.spec.replicatedJobs[0].template.spec.template.spec"
    assert f"{at}.hostPID: not allowed" in said
    assert f"{at}.containers[0].securityContext.privileged: not allowed" in said


def trainjob(override: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "spec": {
        "runtimeRef": {"name": "torch-distributed"},
        "trainer": {"numNodes": 1, "resourcesPerNode": {"limits": {"cpu": "1"}}},
        "podSpecOverrides": [{"targetJobs": [{"name": "node"}], **override}]}}


def test_a_trainjobs_pod_spec_overrides_are_held_to_the_level() -> None:
    override = {"volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                "containers": [{"name": "node", "volumeMounts": [{"name": "root", "mountPath": "/host"}]}]}
    said = _refused(_job(trainjob(override)))
    assert said == ('spec.workload.spec.podSpecOverrides[0].volumes[0].hostPath: not allowed under pod security '
                    '"baseline"')


def test_an_override_of_env_and_mounts_is_not_asked_for_what_restricted_asks_of_whole_containers() -> None:
    """An override's containers carry env and mounts for the runtime's containers; they are not containers."""
    override = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
                "containers": [{"name": "node", "env": [{"name": "A", "value": "1"}]}]}
    fed = make(MemoryStore(), Clock(), limits=Limits(pod_security=PodSecurity(level=PodSecurityLevel.RESTRICTED)))
    assert fed.submit(_job(trainjob(override))).job_id
