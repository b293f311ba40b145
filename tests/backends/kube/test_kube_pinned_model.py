"""The agent never writes its pool's label over a template's own pin of it: the placement is refused, naming the
field (backends/kube/workloads/common.py `render_accelerators`, template_pins.py `conflicts`).

Outside QA new60 N1: a job of `acceleratorModels: [A100]` whose template pinned `nvidia.com/gpu.product:
NVIDIA-A100-SXM4-80GB` was placed on a 40 GB pool; the agent replaced the pin with NVIDIA-A100-SXM4-40GB and the
pod ran on the 40 GB card, unsaid. Submit now refuses such a pin; a job stored before (0.18.0 accepted them) is
refused by the member instead of run on another model, and the federator places it elsewhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federator.backends.kube.accelerators import render
from federator.backends.kube.devices import DeviceGroup, Sharing
from federator.backends.kube.workloads import RenderOptions, WorkloadError, build_workload
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources

PRODUCT = "nvidia.com/gpu.product"
A100_80, A100_40 = "NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-SXM4-40GB"


def _group(model: str, selector: tuple[tuple[str, str], ...] | None = None,
           sharing: Sharing = Sharing.NONE) -> DeviceGroup:
    return DeviceGroup(node="n", vendor="nvidia", model=model, resource="nvidia.com/gpu",
                       selector=((PRODUCT, model),) if selector is None else selector, sharing=sharing, devices=8,
                       units=8, unit_milli=1000)


def _placement(model: str) -> Placement:
    return Placement(placement_id=PlacementId("j.g1.m"), job_id=JobId("j"), cluster="m", region="r", replicas=1,
                     accelerator_model=model, generation=1)


def _native(selector: dict[str, str]) -> JobSpec:
    template = {"spec": {"nodeSelector": selector, "containers": [{"name": "t", "image": "t:1"}]}}
    return JobSpec(name="j", kind=JobKind.TRAINING, replicas=1, accelerator_models=("A100",),
                   resources=Resources(cpu_milli=1000, accelerator_milli=8000), pod_template_json=json.dumps(template))


def _jobset(selector: dict[str, str]) -> JobSpec:
    pod = {"nodeSelector": selector, "containers": [{"name": "t", "image": "t:1", "resources": {
        "requests": {"nvidia.com/gpu": "8"}, "limits": {"nvidia.com/gpu": "8"}}}]}
    workload = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "js"},
                "spec": {"replicatedJobs": [{"name": "w", "replicas": 1, "template": {"spec": {
                    "parallelism": 1, "completions": 1, "template": {"spec": pod}}}}]}}
    return JobSpec(name="j", kind=JobKind.TRAINING, replicas=1, accelerator_models=("A100",),
                   resources=Resources(cpu_milli=1000, accelerator_milli=8000), workload_json=json.dumps(workload))


def _build(spec: JobSpec, group: DeviceGroup) -> dict[str, Any]:
    return build_workload(_placement(group.model), spec, namespace="w",
                          options=RenderOptions(accelerator=render(group, 8000)))


@pytest.mark.parametrize("make, at", [
    (_native, "spec.template.spec"),
    (_jobset, "spec.workload.spec.replicatedJobs[0].template.spec.template.spec"),
], ids=["native", "jobset"])
def test_a_pin_of_another_value_is_refused_never_rewritten(make: Any, at: str) -> None:
    with pytest.raises(WorkloadError) as err:
        _build(make({PRODUCT: A100_80}), _group(A100_40))
    assert str(err.value) == (
        f"{at}.nodeSelector[{PRODUCT}]: pins the pods to '{A100_80}', but this placement's pool is pinned by "
        f"{PRODUCT}={A100_40}: the agent does not replace a template's own pin, so the placement is refused here; "
        "name the pinned model in spec.acceleratorModels so that placement honours it")


def test_a_pin_the_pool_carries_is_kept_and_other_labels_stay_the_users() -> None:
    job = _build(_native({PRODUCT: A100_80, "example.com/rack": "r1"}), _group(A100_80))
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {PRODUCT: A100_80, "example.com/rack": "r1"}


def test_a_mig_pool_leaves_the_parent_product_pin_alone() -> None:
    """A MIG pool is pinned by its profile's label: the parent product the template pins is not the agent's."""
    mig = "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"
    group = DeviceGroup(node="n", vendor="nvidia", model=mig, resource="nvidia.com/mig-1g.10gb",
                        selector=(("nvidia.com/mig-1g.10gb.product", mig),), sharing=Sharing.MIG, devices=7,
                        units=7, unit_milli=125, parent_resource="nvidia.com/gpu")
    spec = JobSpec(name="j", kind=JobKind.TRAINING, replicas=1, accelerator_models=("MIG-1g.10gb",),
                   resources=Resources(cpu_milli=1000, accelerator_milli=1000), pod_template_json=json.dumps(
                       {"spec": {"nodeSelector": {PRODUCT: "NVIDIA-H100-80GB-HBM3"},
                                 "containers": [{"name": "t", "image": "t:1"}]}}))
    job = build_workload(_placement(mig), spec, namespace="w", options=RenderOptions(accelerator=render(group, 1000)))
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {PRODUCT: "NVIDIA-H100-80GB-HBM3",
                                                               "nvidia.com/mig-1g.10gb.product": mig}


def test_a_trainjobs_own_override_pin_is_not_overridden_by_the_agents() -> None:
    """The agent appends its override (the pool's label) after the user's, and the trainer merges them in order."""
    workload = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": {"name": "t"},
                "spec": {"runtimeRef": {"name": "torch-distributed"},
                         "trainer": {"numNodes": 1, "resourcesPerNode": {"limits": {"nvidia.com/gpu": "8"}}},
                         "podSpecOverrides": [{"targetJobs": [{"name": "node"}], "nodeSelector": {PRODUCT: A100_80}}]}}
    spec = JobSpec(name="j", kind=JobKind.TRAINING, replicas=1, accelerator_models=("A100",),
                   resources=Resources(accelerator_milli=8000), workload_json=json.dumps(workload))
    with pytest.raises(WorkloadError) as err:
        _build(spec, _group(A100_40))
    assert str(err.value).startswith(f"spec.workload.spec.podSpecOverrides[0].nodeSelector[{PRODUCT}]: pins the "
                                     f"pods to '{A100_80}', but this placement's pool is pinned by")
    job = _build(spec, _group(A100_80))
    assert [o.get("nodeSelector") for o in job["spec"]["podSpecOverrides"]] == [{PRODUCT: A100_80}] * 2
