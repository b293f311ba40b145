"""A brought workload placed on a partition pool runs on the partitions, under the real LWS controller and
kube-scheduler (vendor QA vendqa61 V4).

The member has whole Ascend 910B3 chips, one 910B3 node cut into static vNPUs (4 x 5c.1cpu.16g), and an H100 node in
MIG mixed strategy. A LeaderWorkerSet asking `huawei.com/Ascend910: 1` per pod with `acceleratorModels:
[vNPU-5c.1cpu.16g]`, placed on the 5c pool, ran its pods on whole chips (the template's ask kept), and a Deployment
asking `nvidia.com/gpu: 1` with `[MIG-1g.10gb]` stayed Pending for ever on the MIG node. The agent now writes the
pool's partition resource over each pod's own ask, as it does for a native job."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from typing import Any

import pytest

from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.jobfile import parse_job
from federator.model import JobId, Placement, PlacementId

from kube_support import WORKLOADS, Testbed, member_bed, workload_pods
from support import ROOT, until

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402

pytestmark = [pytest.mark.kube, pytest.mark.timeout(900)]

MEMBER = "member-a"
LLM, SRV = "llm-1.g1.member-a", "srv-1.g1.member-a"  # the placements' ids
VNPU = "huawei.com/Ascend910-5c.1cpu.16g"
MIG = "nvidia.com/mig-1g.10gb"
_whole = vendors.ascend_nodes("ascend-910b", 1)
_vnpu = [replace(n, extended={**n.extended, VNPU: "4"}) for n in vendors.ascend_nodes("ascend-vnpu", 1, npus=2)]
NODES = [*_whole, *_vnpu, *vendors.mig_nodes("h100-mig", 1, {"1g.10gb": 14})]


def _container(name: str, resource: str) -> dict[str, Any]:
    return {"name": name, "image": "serve:1", "resources": {"requests": {"cpu": "1", resource: 1},
                                                            "limits": {resource: 1}}}


LWS = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "llm"},
       "spec": {"replicas": 1, "leaderWorkerTemplate": {
           "size": 2, "leaderTemplate": {"spec": {"containers": [_container("leader", "huawei.com/Ascend910")]}},
           "workerTemplate": {"spec": {"containers": [_container("worker", "huawei.com/Ascend910")]}}}}}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "srv"},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "srv"}},
                       "template": {"metadata": {"labels": {"app": "srv"}},
                                    "spec": {"containers": [_container("srv", "nvidia.com/gpu")]}}}}

bed = member_bed("partition-workloads", MEMBER, nodes={MEMBER: NODES}, controllers={MEMBER: ("lws",)})


def _job(name: str, workload: dict[str, Any], model: str) -> Any:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "namespace": "default"},
                      "spec": {"workload": workload, "acceleratorModels": [model]}})


def test_a_brought_lws_and_deployment_on_partition_pools_run_on_the_partitions(bed: Testbed) -> None:
    def pods_of(pid: str) -> list[dict[str, Any]]:
        return [p for p in workload_pods(bed, MEMBER)
                if p["metadata"].get("annotations", {}).get("federator.io/placement-id") == pid]

    def running(pid: str, count: int) -> bool:
        pods = pods_of(pid)
        return len(pods) == count and all((p.get("status") or {}).get("phase") == "Running" for p in pods)

    async def main() -> None:
        api = KubeApi.connect(bed.cluster(MEMBER).kubeconfig)
        backend = KubeBackend(api, namespace=WORKLOADS, cluster=MEMBER, sync_timeout=60, discovery_interval=1)
        await backend.start(lambda *a, **k: None)
        try:
            await until(lambda: "LeaderWorkerSet.leaderworkerset.x-k8s.io" in backend.served, timeout=60)
            pools = {p.accelerator_model for p in backend.capacity().accelerator_pools}
            assert {"Ascend910B3-vNPU-5c.1cpu.16g", "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"} <= pools, pools
            for pid, name, workload, model, pool, vendor in (
                    (LLM, "llm", LWS, "vNPU-5c.1cpu.16g", "Ascend910B3-vNPU-5c.1cpu.16g", "huawei"),
                    (SRV, "srv", DEPLOYMENT, "MIG-1g.10gb", "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb",
                     "nvidia")):
                spec = _job(name, workload, model)
                placement = Placement(PlacementId(pid), JobId(name), MEMBER, "east", spec.replicas, pool, 1,
                                      accelerator_vendor=vendor)
                assert await backend.launch(placement, spec) is None
            await until(lambda: len(pods_of(LLM)) == 2 and len(pods_of(SRV)) == 2, timeout=120)
            for pid, resource in ((LLM, VNPU), (SRV, MIG)):
                for pod in pods_of(pid):  # before: huawei.com/Ascend910 (whole chips), nvidia.com/gpu (Pending)
                    res = pod["spec"]["containers"][0]["resources"]
                    assert res["limits"] == {resource: "1"}, json.dumps(res)  # replaced, not added beside
            await until(lambda: running(LLM, 2) and running(SRV, 2), timeout=120)
        finally:
            await backend.stop()

    asyncio.run(main())
    assert {p["spec"]["nodeName"] for p in pods_of(LLM)} == {"ascend-vnpu-0"}  # not the whole chips' node
    assert {p["spec"]["nodeName"] for p in pods_of(SRV)} == {"h100-mig-0"}
