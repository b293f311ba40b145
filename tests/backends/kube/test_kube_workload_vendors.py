"""A brought workload (spec.workload) asking another vendor's devices runs on that vendor's pools.

Its containers name the device plugin resource (huawei.com/Ascend910, amd.com/gpu, ...): that is the
accelerator count of its pod sets and binds the job to the vendor, as the one-count form's resource does.
Before, only nvidia.com/gpu counted: an Ascend JobSet was a CPU-only job placed anywhere (and refused
outright with acceleratorModels).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from federator.backends.kube import accelerators
from federator.backends.kube.discovery import default_discovery
from federator.backends.kube.placement_launch import chosen_alternative
from federator.backends.kube.workloads import RenderOptions, build_workload
from federator.backends.kube.workloads.common import templates_at
from federator.jobfile import JobFileError, parse_job
from federator.jobfile_writing import spec_to_document
from federator.model import AcceleratorAlternative, JobId, Placement, PlacementId

ASCEND_NODE = {"metadata": {"name": "ascend-0", "labels": {
    "accelerator": "huawei-Ascend910", "huawei.com/npu.chip.name": "910B3",
    "node.kubernetes.io/npu.chip.name": "910B3", "huawei.com/npu.chip.memory": "64G"}},
    "status": {"allocatable": {"cpu": "192", "memory": "2Ti", "huawei.com/Ascend910": "8"}}}


def jobset(resources: dict[str, Any]) -> dict[str, Any]:
    pod = {"restartPolicy": "Never", "containers": [{"name": "trainer", "image": "trainer:cann8",
                                                     "resources": resources}]}
    return {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "pretrain"},
            "spec": {"replicatedJobs": [
                {"name": "driver", "template": {"spec": {"template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "d", "image": "d:1", "resources": {"requests": {"cpu": "1"}}}]}}}}},
                {"name": "workers", "template": {"spec": {"parallelism": 4, "completions": 4,
                                                          "template": {"spec": pod}}}}]}}


ASCEND = {"requests": {"cpu": "32", "memory": "256Gi", "huawei.com/Ascend910": 8},
          "limits": {"huawei.com/Ascend910": 8}}


def document(workload: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": "pretrain", "namespace": "default"},
            "spec": {"queue": "research", "workload": workload, **spec}}


def test_an_ascend_jobset_asks_for_ascend_devices_not_cpu_only() -> None:
    spec = parse_job(document(jobset(ASCEND), acceleratorModels=["Ascend910B"]))
    assert spec.replicas == 4  # the 4 NPU workers; the CPU driver is not an accelerator replica
    # bound to the resource itself: Huawei's plugin has one per product line (a 310P pool never serves it)
    assert spec.accelerators == (AcceleratorAlternative(8000, "Ascend910B", "huawei",
                                                        resource_name="huawei.com/Ascend910"),)
    assert spec.resources.cpu_milli == 32_000


def test_without_models_the_workloads_resource_still_binds_its_vendor() -> None:
    spec = parse_job(document(jobset(ASCEND)))
    assert spec.accelerators == (AcceleratorAlternative(8000, "", "huawei", resource_name="huawei.com/Ascend910"),)


@pytest.mark.parametrize("resource, vendor", [("amd.com/gpu", "amd"), ("cambricon.com/mlu", "cambricon"),
                                              ("hygon.com/dcu", "hygon")])
def test_every_catalog_vendors_resource_counts(resource: str, vendor: str) -> None:
    spec = parse_job(document(jobset({"limits": {resource: 8}})))
    assert [(a.milli, a.vendor) for a in spec.accelerators] == [(8000, vendor)]


def test_nvidia_gpus_with_an_ascend_model_are_refused_naming_the_resource_to_ask() -> None:
    with pytest.raises(JobFileError) as err:
        parse_job(document(jobset({"limits": {"nvidia.com/gpu": 8}}), acceleratorModels=["Ascend910B"]))
    assert "spec.acceleratorModels[0]" in str(err.value)
    assert "its containers must ask for huawei.com/Ascend910" in str(err.value)


def test_a_pod_asking_two_vendors_devices_is_refused() -> None:
    with pytest.raises(JobFileError) as err:
        parse_job(document(jobset({"limits": {"nvidia.com/gpu": 8, "huawei.com/Ascend910": 8}})))
    assert "two kinds of accelerator" in str(err.value)


def test_the_document_of_such_a_job_reads_back_the_same() -> None:
    """The federator re-reads every spec through its document (server/api_specs.checked): the derived
    alternatives must not come back as spec.accelerators, which spec.workload refuses."""
    for extra in ({"acceleratorModels": ["Ascend910B"]}, {}):
        spec = parse_job(document(jobset(ASCEND), **extra))
        assert parse_job(spec_to_document(spec)) == spec


def test_the_member_renders_it_on_the_ascend_pool_with_its_own_request() -> None:
    spec = parse_job(document(jobset(ASCEND), acceleratorModels=["Ascend910B"]))
    groups = default_discovery().groups([ASCEND_NODE], [])
    placement = Placement(placement_id=PlacementId("pretrain-1a2b.g1.member-c"), job_id=JobId("pretrain-1a2b"),
                          cluster="member-c", region="cn", replicas=4, accelerator_model="Ascend910B3",
                          generation=1, accelerator_vendor="huawei", accelerator_resource="huawei.com/Ascend910",
                          accelerator_milli=8000)
    spec = chosen_alternative(placement, spec)  # as KubeBackend.launch does
    group = accelerators.find_group(groups, model=placement.accelerator_model)
    assert group is not None
    request = accelerators.render(group, spec.resources.accelerator_milli)
    obj = build_workload(placement, spec, namespace="federator-workloads", options=RenderOptions(accelerator=request))
    driver, workers = templates_at(copy.deepcopy(obj), ["spec.replicatedJobs[0].template.spec.template",
                                                        "spec.replicatedJobs[1].template.spec.template"])
    pod = workers["spec"]
    assert pod["nodeSelector"] == {"huawei.com/npu.chip.name": "910B3"}
    assert {"key": "huawei.com/Ascend910", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["containers"][0]["resources"]["limits"] == {"huawei.com/Ascend910": 8}
    assert "nvidia.com/gpu" not in str(obj)
    assert "nodeSelector" not in driver["spec"]  # the CPU driver goes anywhere
