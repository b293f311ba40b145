"""AMD MI300X compute partitions on a real member (vendqa61 V7, V1): kwok nodes labelled as ROCm's device plugin
and node labeller label them. A CPX node's 64 ``amd.com/gpu`` were 64 whole MI300X of 192 GiB; now they are a
partition pool (AMD-Instinct-MI300X-CPX-NPS4, worth 125m of a GPU, 24 GiB each), a placement on it asks for
partitions pinned to the CPX node, and a node whose 64 units come with no mode label is left out and counted,
never miscounted. Whole MI300X are reported under the catalog's name, AMD-Instinct-MI300X, and pinned by the
labeller's AMD_Instinct_MI300X_OAM.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest

from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.model import ClusterCapacity, JobId, JobKind, JobSpec, Placement, PlacementId, Resources

from kube_support import WORKLOADS, Testbed, member_bed
from support import ROOT, until

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402  (tests/testbed is not a package)

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

MEMBER = "member-amd"
PARTITION = "amd.com/compute-memory-partition"
NODES = [*vendors.amd_nodes("mi300x", 1), *vendors.amd_partitioned_nodes("mi300x-cpx", 1, mode="cpx_nps4"),
         *vendors.amd_partitioned_nodes("mi300x-nolabel", 1, mode="")]

bed = member_bed("amd-partitions", MEMBER, nodes={MEMBER: NODES})


def _backend(bed: Testbed) -> KubeBackend:
    return KubeBackend(KubeApi.connect(bed.cluster(MEMBER).kubeconfig), namespace=WORKLOADS, cluster=MEMBER,
                       sync_timeout=60)


def test_partitions_are_a_pool_of_their_own_and_an_unlabelled_partitioned_node_is_left_out(
        bed: Testbed, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[ClusterCapacity, dict[str, int]]:
        backend = _backend(bed)
        await backend.start(lambda *_, **__: None)
        try:
            return backend.capacity(), dict(backend.unsupported_accelerators)
        finally:
            await backend.stop()

    with caplog.at_level(logging.WARNING, logger="federator.agent.kube"):
        cap, unsupported = asyncio.run(main())
    got = {(p.accelerator_model, p.sharing, p.unit_milli, p.memory_mib, p.total_accelerators)
           for p in cap.accelerator_pools}
    assert got == {("AMD-Instinct-MI300X", "None", 0, 196608, 8),  # the whole GPUs only: not 8 + 64 + 64
                   ("AMD-Instinct-MI300X-CPX-NPS4", "MIG", 125, 24576, 64)}
    assert unsupported == {"amd.com/gpu": 64}  # mi300x-nolabel-0: 64 on a node that holds 8, mode unsaid
    said = [r.getMessage() for r in caplog.records if "mi300x-nolabel-0" in r.getMessage()]
    assert any("at most 8" in m and PARTITION in m for m in said), said


def test_a_placement_on_the_partition_pool_asks_partitions_pinned_to_the_partitioned_node(bed: Testbed) -> None:
    template = {"spec": {"containers": [{"name": "infer", "image": "busybox:1.36", "command": ["sleep", "1d"]}]}}
    spec = JobSpec(name="small", kind=JobKind.INFERENCE, replicas=2,
                   resources=Resources(cpu_milli=100, accelerator_milli=125), pod_template_json=json.dumps(template))
    placement = Placement(PlacementId("small-abc.g1.member-amd"), JobId("small-abc"), MEMBER, "east", 2,
                          "AMD-Instinct-MI300X-CPX-NPS4", 1, accelerator_vendor="amd",
                          accelerator_resource="amd.com/gpu", accelerator_milli=125)

    def free(cap: ClusterCapacity) -> dict[str, int]:
        return {p.accelerator_model: p.free_accelerators for p in cap.accelerator_pools}

    async def main() -> ClusterCapacity:
        backend = _backend(bed)
        await backend.start(lambda *_, **__: None)
        try:
            assert await backend.launch(placement, spec) is None
            await until(lambda: free(backend.capacity())["AMD-Instinct-MI300X-CPX-NPS4"] == 62, timeout=120)
            return backend.capacity()
        finally:
            await backend.stop()

    after = asyncio.run(main())
    pods = [p for p in json.loads(bed.kubectl(MEMBER, "get", "pods", "-n", WORKLOADS, "-o", "json").stdout)["items"]
            if p["spec"].get("nodeName")]
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["containers"][0]["resources"]["limits"] == {"amd.com/gpu": "1"}  # one partition
        assert pod["spec"]["nodeSelector"] == {"amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM",
                                               PARTITION: "cpx_nps4"}
        assert pod["spec"]["nodeName"] == "mi300x-cpx-0"
    assert free(after)["AMD-Instinct-MI300X"] == 8  # the whole GPUs untouched
    bed.kubectl(MEMBER, "delete", "deployments", "--all", "-n", WORKLOADS, "--wait=true")
