"""A brought workload (spec.workload) placed on a partition pool asks the partition, as a native job's pods do.

Vendor QA vendqa61 V4: an LWS asking `huawei.com/Ascend910: 1` with `acceleratorModels: [vNPU-5c.1cpu.16g]` was
placed on the 5c vNPU pool and billed a quarter chip, but its pods kept `huawei.com/Ascend910: 1` and ran on whole
chips (the partitions booked while free); a Deployment asking `nvidia.com/gpu: 1` on a MIG pool stayed Pending for
ever. The agent now writes the pool's resource over each container's own device ask, the count per container kept
(backends/kube/workloads/common.py `render_accelerators`); an ask it cannot write so is refused naming the field.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest

from federator.backends.kube import accelerators
from federator.backends.kube.devices import DeviceGroup, Sharing
from federator.backends.kube.discovery import default_discovery
from federator.backends.kube.placement_launch import chosen_alternative
from federator.backends.kube.workloads import RenderOptions, WorkloadError, build_workload
from federator.backends.kube.workloads.common import templates_at
from federator.jobfile import parse_job
from federator.model import JobId, Placement, PlacementId

from support import ROOT

VNPU_NODE = {"metadata": {"name": "ascend-vnpu-0", "labels": {
    "accelerator": "huawei-Ascend910", "huawei.com/npu.chip.name": "910B3", "huawei.com/npu.chip.memory": "64G"}},
    "status": {"allocatable": {"cpu": "192", "memory": "2Ti", "huawei.com/Ascend910": "6",
                               "huawei.com/Ascend910-5c.1cpu.16g": "4", "huawei.com/Ascend910-10c.3cpu.32g": "2"}}}
MIG_NODE = {"metadata": {"name": "mig-0", "labels": {
    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8", "nvidia.com/gpu.memory": "81559",
    "nvidia.com/mig.capable": "true", "nvidia.com/mig.strategy": "mixed",
    "nvidia.com/mig-1g.10gb.product": "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", "nvidia.com/mig-1g.10gb.count": "14",
    "nvidia.com/mig-1g.10gb.memory": "9856"}},
    "status": {"allocatable": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "0", "nvidia.com/mig-1g.10gb": "14"}}}


def _container(name: str, resource: str, count: int) -> dict[str, Any]:
    return {"name": name, "image": "serve:1", "resources": {"requests": {"cpu": "8", resource: count},
                                                            "limits": {resource: count}}}


def lws(resource: str, leader: int = 1, worker: int = 1) -> dict[str, Any]:
    return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "serve"},
            "spec": {"replicas": 1, "leaderWorkerTemplate": {
                "size": 2, "leaderTemplate": {"spec": {"containers": [_container("leader", resource, leader)]}},
                "workerTemplate": {"spec": {"containers": [_container("worker", resource, worker)]}}}}}


def deployment(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "serve"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "serve"}},
                     "template": {"metadata": {"labels": {"app": "serve"}}, "spec": {"containers": list(containers)}}}}


LWS_TEMPLATES = ["spec.leaderWorkerTemplate.leaderTemplate", "spec.leaderWorkerTemplate.workerTemplate"]


def _render(workload: dict[str, Any], model: str, nodes: list[dict[str, Any]], pool: str,
            group: DeviceGroup | None = None, kind: str = "inference") -> dict[str, Any]:
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": "serve", "namespace": "default"},
                      "spec": {"kind": kind, "workload": workload, "acceleratorModels": [model]}})
    spec = chosen_alternative(placement := Placement(
        placement_id=PlacementId("serve-1a2b.g1.m"), job_id=JobId("serve-1a2b"), cluster="m", region="r",
        replicas=spec.replicas, accelerator_model=pool, generation=1), spec)  # as KubeBackend.launch does
    if group is None:
        group = accelerators.find_group(default_discovery().groups(nodes, []), model=pool)
    assert group is not None, default_discovery().groups(nodes, [])
    request = accelerators.render(group, spec.resources.accelerator_milli)  # as PlacementLaunch._accelerator does
    return build_workload(placement, spec, namespace="w", options=RenderOptions(accelerator=request))


def test_a_brought_lws_on_a_vnpu_pool_asks_the_vnpu_not_the_whole_chip() -> None:
    obj = _render(lws("huawei.com/Ascend910"), "vNPU-5c.1cpu.16g", [VNPU_NODE], "Ascend910B3-vNPU-5c.1cpu.16g")
    for template in templates_at(copy.deepcopy(obj), LWS_TEMPLATES):
        pod = template["spec"]
        res = pod["containers"][0]["resources"]
        assert res["limits"] == {"huawei.com/Ascend910-5c.1cpu.16g": 1}  # replaced, not added beside
        assert res["requests"] == {"cpu": "8", "huawei.com/Ascend910-5c.1cpu.16g": 1}
        assert pod["nodeSelector"] == {"huawei.com/npu.chip.name": "910B3"}
        assert {t["key"] for t in pod["tolerations"]} == {"huawei.com/Ascend910", "huawei.com/Ascend910-5c.1cpu.16g"}


def test_a_brought_deployment_on_a_mig_pool_asks_the_mig_profile_keeping_each_containers_count() -> None:
    obj = _render(deployment(_container("srv", "nvidia.com/gpu", 2), {"name": "log", "image": "log:1"}),
                  "MIG-1g.10gb", [MIG_NODE], "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb")
    srv, log = obj["spec"]["template"]["spec"]["containers"]
    assert srv["resources"]["limits"] == {"nvidia.com/mig-1g.10gb": 2}
    assert srv["resources"]["requests"] == {"cpu": "8", "nvidia.com/mig-1g.10gb": 2}
    assert "resources" not in log


def _dra_group() -> DeviceGroup:
    return DeviceGroup(node="dra-0", vendor="nvidia", model="NVIDIA-H200", resource="",
                       selector=(("gpu.nvidia.com/productName", "NVIDIA H200"),), sharing=Sharing.NONE, devices=8,
                       units=8, unit_milli=1000, dra_class="gpu.nvidia.com", dra_driver="gpu.nvidia.com")


def test_on_a_dra_member_the_one_device_container_references_the_claim_instead_of_the_device_resource() -> None:
    obj = _render(deployment(_container("srv", "nvidia.com/gpu", 2)), "H200", [], "NVIDIA-H200", _dra_group())
    pod = obj["spec"]["template"]["spec"]
    (srv,) = pod["containers"]
    assert srv["resources"] == {"requests": {"cpu": "8"}, "claims": [{"name": accelerators.CLAIM_NAME}]}
    assert [c["name"] for c in pod["resourceClaims"]] == [accelerators.CLAIM_NAME]


def test_an_ask_the_pool_cannot_take_is_refused_naming_the_field() -> None:
    two = deployment(_container("a", "nvidia.com/gpu", 1), _container("b", "nvidia.com/gpu", 1))
    with pytest.raises(WorkloadError) as err:
        _render(two, "H200", [], "NVIDIA-H200", _dra_group())
    assert err.value.field == "spec.workload.spec.template.spec.containers[0].resources.requests[nvidia.com/gpu]"
    assert "ask them all on one container" in str(err.value)


def trainjob(resource: str, count: int = 1) -> dict[str, Any]:
    return {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": {"name": "tune"},
            "spec": {"runtimeRef": {"name": "torch-distributed"},
                     "trainer": {"numNodes": 2, "resourcesPerNode": {"requests": {resource: count},
                                                                     "limits": {resource: count}}}}}


@pytest.mark.parametrize(("resource", "model", "nodes", "pool", "asked_as"), [
    ("huawei.com/Ascend910", "vNPU-5c.1cpu.16g", [VNPU_NODE], "Ascend910B3-vNPU-5c.1cpu.16g",
     "huawei.com/Ascend910-5c.1cpu.16g"),
    ("nvidia.com/gpu", "MIG-1g.10gb", [MIG_NODE], "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", "nvidia.com/mig-1g.10gb")])
def test_a_trainjob_on_a_partition_pool_is_refused_at_launch_naming_resources_per_node(
        resource: str, model: str, nodes: list[dict[str, Any]], pool: str, asked_as: str) -> None:
    """Its runtime makes the pods from resourcesPerNode, which the agent does not rewrite: on the vNPU node they
    could run on two of its whole chips while the 5c pool was billed; on the MIG node they stayed Pending."""
    with pytest.raises(WorkloadError) as err:
        _render(trainjob(resource), model, nodes, pool, kind="training")
    assert err.value.field == "spec.workload.spec.trainer.resourcesPerNode"
    assert f"asks {resource}, but this placement's pool {pool} is asked as {asked_as}" in str(err.value)
    assert "suits whole-device pools only" in str(err.value)


def test_a_trainjob_on_whole_chips_of_a_partitioned_node_still_renders() -> None:
    obj = _render(trainjob("huawei.com/Ascend910", 2), "Ascend910B3", [VNPU_NODE], "Ascend910B3", kind="training")
    (override,) = obj["spec"]["podSpecOverrides"]
    assert override["nodeSelector"] == {"huawei.com/npu.chip.name": "910B3"}
    assert obj["spec"]["trainer"]["resourcesPerNode"]["limits"] == {"huawei.com/Ascend910": 2}


def test_a_trainjob_on_amd_compute_partitions_renders_its_own_ask() -> None:
    """A CPX MI300X counts its partitions as amd.com/gpu, as the trainer asks: nothing to rewrite, the node
    selector takes the pods to the partitioned node."""
    sys.path.insert(0, str(ROOT / "tests" / "testbed"))
    import vendors  # noqa: PLC0415  (tests/testbed is not a package)
    nodes = [spec.manifest() for spec in vendors.amd_partitioned_nodes("c", 1, mode="cpx_nps4")]
    for node in nodes:
        node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    obj = _render(trainjob("amd.com/gpu", 8), "MI300X-CPX", nodes, "AMD-Instinct-MI300X-CPX-NPS4", kind="training")
    (override,) = obj["spec"]["podSpecOverrides"]
    assert override["nodeSelector"]["amd.com/compute-memory-partition"] == "cpx_nps4"
    assert obj["spec"]["trainer"]["resourcesPerNode"]["limits"] == {"amd.com/gpu": 8}
