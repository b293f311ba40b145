"""The member's agent finds every pod template of what it would create (red team): a decoy `spec.containers`
above the real templates (which the member's API server prunes) hid them from the agent's own level, and a
TrainJob's `spec.podSpecOverrides` (merged into the runtime's pods) were never read."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.workloads.jobset import JobSetAdapter
from federator.backends.kube.workloads.kubeflow import TrainJobAdapter
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources

from kube_fakes import RecordingApi, started_backend


def backend(api: RecordingApi) -> KubeBackend:
    b = started_backend(api)
    for adapter in (JobSetAdapter(), TrainJobAdapter()):
        b.served[adapter.key] = adapter
    return b


def launch(workload: dict[str, Any]) -> tuple[str | None, RecordingApi]:
    """A job stored by a federator at privileged (or before its level was raised), launched on member-a."""
    api = RecordingApi()
    spec = JobSpec(name="w", kind=JobKind.TRAINING, replicas=1, resources=Resources(cpu_milli=1000),
                   workload_json=json.dumps(workload))
    placement = replace(Placement(PlacementId("w-abc.g1.member-a"), JobId("w-abc"), "member-a", "east", 1, "", 1))
    return asyncio.run(backend(api).launch(placement, spec)), api


def test_a_decoy_containers_list_does_not_hide_a_jobsets_privileged_pods_from_the_member() -> None:
    pod = {"spec": {"restartPolicy": "Never", "containers": [{
        "name": "w", "image": "llm:1", "securityContext": {"privileged": True},
        "resources": {"limits": {"cpu": "1"}}}]}}
    why, api = launch({"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "spec": {
        "containers": [], "replicatedJobs": [{"name": "workers", "template": {"spec": {"template": pod}}}]}})
    assert api.created == []
    assert why is not None and "spec.replicatedJobs[0].template.spec.template.spec.containers[0].securityContext." \
                               "privileged: not allowed" in why


def test_a_hostpath_volume_in_a_trainjobs_pod_spec_overrides_is_refused_by_the_member() -> None:
    why, api = launch({"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "spec": {
        "runtimeRef": {"name": "torch-distributed"},
        "trainer": {"numNodes": 1, "resourcesPerNode": {"limits": {"cpu": "1"}}},
        "podSpecOverrides": [{"targetJobs": [{"name": "node"}],
                              "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}]}})
    assert api.created == []
    assert why is not None and "spec.podSpecOverrides[0].volumes[0].hostPath: not allowed" in why
