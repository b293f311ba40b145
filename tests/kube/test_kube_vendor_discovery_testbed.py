"""What the Kubernetes agent offers of a multi-vendor member's nodes, on a real API server (the outside QA's
multi-vendor provider round, V2 and V3).

V2: Huawei's static vNPU templates (`huawei.com/Ascend310P-2c`) and HAMi's Ascend devices (`huawei.com/Ascend910B3`)
got no pool, no warning and no count; listed in a catalog file, each vNPU became a whole chip of the plain 310P
pool. HAMi's Ascend devices are now left out, said once per node and counted in
`federator_agent_unsupported_accelerators`; the vNPUs are partition pools, one per template and chip, as MIG
profiles are (`Ascend310P3-vNPU-2c`, sharing MIG, worth 2 of the chip's 8 AI cores), and a placement on one asks
for the template's resource, once per replica.
V3: Cambricon, Hygon and Gaudi nodes were all pool MLU, DCU or Gaudi; their pools are named by the labels their
vendors' labellers set, so catalog models match.

The nodes are kwok nodes of a test bed member, carrying the resources and labels the vendors' plugins publish; the
agent's backend runs in the test's process against the member's real kube-apiserver.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import pytest

from federator.agent.metrics import AgentMetrics
from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.discovery import Discovery
from federator.catalog import builtin_catalog, load_catalog_file, use_catalog_file
from federator.model import ClusterCapacity, JobId, JobKind, JobSpec, Placement, PlacementId, Resources

from kube_support import WORKLOADS, Testbed, member_bed
from support import ROOT, until

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
from testbed import NodeSpec  # noqa: E402  (tests/testbed is not a package)

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

MEMBER = "member-a"
CHIP = "huawei.com/npu.chip.name"
NODES = [
    NodeSpec("p310-0", "", 0, extended={"huawei.com/Ascend310P": "4"},
             labels={"accelerator": "huawei-Ascend310P", CHIP: "310P3"}),
    NodeSpec("vnpu-0", "", 0, extended={"huawei.com/Ascend310P-2c": "8", "huawei.com/Ascend310P-4c": "2"},
             labels={"accelerator": "huawei-Ascend310P", CHIP: "310P3"}),
    # A2 chips cut by templates that name their memory (910B1: 24 AI cores, in the catalog since 0.13.0), and a
    # chip whose AI cores the built-in catalog does not give (910B4-1): only an operator's catalog file does
    NodeSpec("vnpu-910b3-0", "", 0, extended={"huawei.com/Ascend910-5c.1cpu.16g": "4"},
             labels={"accelerator": "huawei-Ascend910", CHIP: "910B3"}),
    NodeSpec("vnpu-910b1-0", "", 0, extended={"huawei.com/Ascend910-6c.1cpu.16g": "4"},
             labels={"accelerator": "huawei-Ascend910", CHIP: "910B1"}),
    NodeSpec("vnpu-910b41-0", "", 0, extended={"huawei.com/Ascend910-10c.3cpu.32g": "2"},
             labels={"accelerator": "huawei-Ascend910", CHIP: "910B4-1"}),
    NodeSpec("hami-910b3-0", "", 0, extended={"huawei.com/Ascend910B3": "8", "huawei.com/Ascend910B3-memory": "524288"},
             labels={"accelerator": "huawei-Ascend910", CHIP: "910B3"}),
    NodeSpec("mlu-0", "", 0, extended={"cambricon.com/mlu": "8"}, labels={"Model": "MLU370-X8"}),
    NodeSpec("mlu-bare-0", "", 0, extended={"cambricon.com/mlu": "8"}),
    NodeSpec("dcu-0", "", 0, extended={"hygon.com/dcu": "8"}, labels={"hygon.com/dcu.name": "K100_AI"}),
    NodeSpec("gaudi-0", "", 0, extended={"habana.ai/gaudi": "8"}, labels={"habana.ai/device.type": "GAUDI3"}),
]
# What the QA's operator wrote to reach the vNPUs: it made them whole chips of the 310P3 pool.
VNPU_CATALOG = "vendors:\n  huawei:\n    resources: [huawei.com/Ascend310P-2c, huawei.com/Ascend310P-4c]\n"
# An operator's catalog file giving a chip the release does not know its AI cores (`aiCores`, a model's field).
CHIP_CATALOG = ("vendors:\n  huawei:\n    models:\n"
                "      - {name: Ascend910B4-1, memoryMiB: 65536, family: Ascend910B, aiCores: 20}\n")


bed = member_bed("vendor-discovery", MEMBER, nodes={MEMBER: NODES})


def _capacity(bed: Testbed, discovery: Discovery | None = None) -> tuple[ClusterCapacity, KubeBackend]:
    async def main() -> tuple[ClusterCapacity, KubeBackend]:
        api = KubeApi.connect(bed.cluster(MEMBER).kubeconfig)
        backend = KubeBackend(api, namespace=WORKLOADS, cluster=MEMBER, sync_timeout=60, discovery=discovery)
        await backend.start(lambda *_, **__: None)
        try:
            return backend.capacity(), backend
        finally:
            await backend.stop()

    return asyncio.run(main())


def test_hami_ascend_devices_are_said_and_counted_never_chips(
        bed: Testbed, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="federator.agent.kube"):
        cap, backend = _capacity(bed)
    pools = {p.accelerator_model: p for p in cap.accelerator_pools}
    assert pools["Ascend310P3"].allocatable_accelerators == 4  # the plain chips only
    assert not any(m.startswith("Ascend910B3") and "vNPU" not in m for m in pools)  # HAMi's devices: no pool
    assert dict(backend.unsupported_accelerators) == {
        "huawei.com/Ascend910-10c.3cpu.32g": 2, "huawei.com/Ascend910B3": 8}
    said = [r.getMessage() for r in caplog.records if "not offered to the federator, which has no model" in
            r.getMessage()]
    assert any("hami-910b3-0 has 8 huawei.com/Ascend910B3" in m and "HAMi" in m for m in said), said
    assert any("vnpu-910b41-0 has 2 huawei.com/Ascend910-10c.3cpu.32g" in m and "chip 910B4-1" in m and
               "give model Ascend910B4-1 its aiCores" in m for m in said), said
    metrics = AgentMetrics(cluster=MEMBER, region="east")
    metrics.unsupported(backend.unsupported_accelerators)
    assert metrics.registry.get_sample_value("federator_agent_unsupported_accelerators",
                                             {"resource": "huawei.com/Ascend910B3"}) == 8

    path = tmp_path / "vnpu.yaml"  # the catalog route: vNPUs are never chips of the plain pool
    path.write_text(VNPU_CATALOG)
    cap, backend = _capacity(bed, Discovery.from_catalog(builtin_catalog().merged(load_catalog_file(path))))
    pools = {p.accelerator_model: p for p in cap.accelerator_pools}
    assert pools["Ascend310P3"].allocatable_accelerators == 4
    assert pools["Ascend310P3-vNPU-2c"].allocatable_accelerators == 8


def test_vnpu_templates_are_partition_pools_worth_their_share_of_the_chips_ai_cores(bed: Testbed) -> None:
    cap, _ = _capacity(bed)
    got = {(p.accelerator_model, p.family, p.sharing, p.unit_milli, p.resource_name, p.memory_mib,
            p.allocatable_accelerators) for p in cap.accelerator_pools if "vNPU" in p.accelerator_model}
    assert got == {
        ("Ascend310P3-vNPU-2c", "Ascend310P", "MIG", 250, "huawei.com/Ascend310P-2c", 0, 8),
        ("Ascend310P3-vNPU-4c", "Ascend310P", "MIG", 500, "huawei.com/Ascend310P-4c", 0, 2),
        ("Ascend910B3-vNPU-5c.1cpu.16g", "Ascend910B", "MIG", 250, "huawei.com/Ascend910-5c.1cpu.16g", 16384, 4),
        ("Ascend910B1-vNPU-6c.1cpu.16g", "Ascend910B", "MIG", 250, "huawei.com/Ascend910-6c.1cpu.16g", 16384, 4)}
    # what the agent counts among the member's accelerators: whole-device equivalents, 8 x 250m + 2 x 500m + ...
    pools = {p.accelerator_model: p for p in cap.accelerator_pools}
    assert pools["Ascend310P3-vNPU-2c"].accelerator_milli_of(8) == 2000


def test_a_chip_named_only_in_the_operators_catalog_gets_its_vnpus_offered(bed: Testbed, tmp_path: Path) -> None:
    """The agent started with an operator's catalog file (`--accelerator-catalog`, read by use_catalog_file as the
    agent command does) that gives 910B4-1's model its AI cores offers that chip's templates as a partition pool
    worth 10 of its 20 cores, no longer left out; without the file they are left out, said and counted."""
    path = tmp_path / "chips.yaml"
    path.write_text(CHIP_CATALOG)
    try:
        use_catalog_file(path)
        cap, backend = _capacity(bed)  # the backend's default discovery: the process's catalog, the file's too
    finally:
        use_catalog_file(None)
    got = {(p.accelerator_model, p.family, p.sharing, p.unit_milli, p.resource_name, p.memory_mib,
            p.allocatable_accelerators) for p in cap.accelerator_pools if p.accelerator_model.startswith("Ascend910B4")}
    assert got == {("Ascend910B4-1-vNPU-10c.3cpu.32g", "Ascend910B", "MIG", 500, "huawei.com/Ascend910-10c.3cpu.32g",
                    32768, 2)}
    assert dict(backend.unsupported_accelerators) == {"huawei.com/Ascend910B3": 8}  # HAMi's only: not chips
    _, without = _capacity(bed)
    assert dict(without.unsupported_accelerators)["huawei.com/Ascend910-10c.3cpu.32g"] == 2


def test_a_placement_on_a_vnpu_pool_asks_for_one_template_per_replica_pinned_to_the_chip(bed: Testbed) -> None:
    template = {"spec": {"containers": [{"name": "infer", "image": "busybox:1.36", "command": ["sleep", "1d"]}]}}
    spec = JobSpec(name="ocr", kind=JobKind.INFERENCE, replicas=3,
                   resources=Resources(cpu_milli=100, accelerator_milli=250), pod_template_json=json.dumps(template))
    placement = Placement(PlacementId("ocr-abc.g1.member-a"), JobId("ocr-abc"), MEMBER, "east", 3,
                          "Ascend310P3-vNPU-2c", 1, accelerator_vendor="huawei",
                          accelerator_resource="huawei.com/Ascend310P-2c", accelerator_milli=250)

    def pods() -> list[dict]:  # type: ignore[type-arg]
        out = bed.kubectl(MEMBER, "get", "pods", "-n", WORKLOADS, "-l", "federator.io/placement-id", "-o", "json")
        return [p for p in json.loads(out.stdout)["items"] if p["spec"].get("nodeName")]

    def free(cap: ClusterCapacity) -> dict[str, int]:
        return {p.accelerator_model: p.free_accelerators for p in cap.accelerator_pools}

    async def main() -> ClusterCapacity:
        api = KubeApi.connect(bed.cluster(MEMBER).kubeconfig)
        backend = KubeBackend(api, namespace=WORKLOADS, cluster=MEMBER, sync_timeout=60)
        await backend.start(lambda *_, **__: None)
        try:
            assert free(backend.capacity())["Ascend310P3-vNPU-2c"] == 8
            assert await backend.launch(placement, spec) is None
            await until(lambda: free(backend.capacity())["Ascend310P3-vNPU-2c"] == 5, timeout=120)  # pods bound
            return backend.capacity()
        finally:
            await backend.stop()

    after = asyncio.run(main())
    assert len(pods()) == 3
    for pod in pods():
        (container,) = pod["spec"]["containers"]
        assert container["resources"]["limits"] == {"huawei.com/Ascend310P-2c": "1"}
        assert pod["spec"]["nodeSelector"] == {CHIP: "310P3"}
        assert pod["spec"]["nodeName"] == "vnpu-0"
        tolerated = {t.get("key") for t in pod["spec"].get("tolerations", [])}
        assert {"huawei.com/Ascend310P", "huawei.com/Ascend310P-2c"} <= tolerated
    assert free(after)["Ascend310P3-vNPU-4c"] == 2 and free(after)["Ascend310P3"] == 4  # nothing else taken
    bed.kubectl(MEMBER, "delete", "deployments", "--all", "-n", WORKLOADS, "--wait=true")


def test_cambricon_hygon_and_gaudi_pools_carry_their_labellers_model(bed: Testbed) -> None:
    cap, backend = _capacity(bed)
    got = {(p.vendor, p.accelerator_model, p.family, p.memory_mib, p.allocatable_accelerators)
           for p in cap.accelerator_pools if p.vendor in ("cambricon", "hygon", "intel")}
    assert got == {("cambricon", "MLU370-X8", "", 49152, 8), ("hygon", "DCU-K100_AI", "DCU-K100", 65536, 8),
                   ("intel", "Gaudi3", "", 131072, 8)}
    assert dict(backend.unlabelled_accelerators) == {"cambricon.com/mlu": 8}  # mlu-bare-0: said, not pool MLU
