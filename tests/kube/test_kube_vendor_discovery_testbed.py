"""What the Kubernetes agent offers of a multi-vendor member's nodes, on a real API server (the outside QA's
multi-vendor provider round, V2 and V3).

V2: Huawei's static vNPU templates (`huawei.com/Ascend310P-2c`) and HAMi's Ascend devices (`huawei.com/Ascend910B3`)
got no pool, no warning and no count; listed in a catalog file, each vNPU became a whole chip of the plain 310P
pool. They are now left out, said once per node and counted in `federator_agent_unsupported_accelerators`.
V3: Cambricon, Hygon and Gaudi nodes were all pool MLU, DCU or Gaudi; their pools are named by the labels their
vendors' labellers set, so catalog models match.

The nodes are kwok nodes of a test bed member, carrying the resources and labels the vendors' plugins publish; the
agent's backend runs in the test's process against the member's real kube-apiserver.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from federator.agent.metrics import AgentMetrics
from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.discovery import Discovery
from federator.catalog import builtin_catalog, load_catalog_file
from federator.model import ClusterCapacity

from kube_support import WORKLOADS, Testbed
from support import ROOT

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
    NodeSpec("hami-910b3-0", "", 0, extended={"huawei.com/Ascend910B3": "8", "huawei.com/Ascend910B3-memory": "524288"},
             labels={"accelerator": "huawei-Ascend910", CHIP: "910B3"}),
    NodeSpec("mlu-0", "", 0, extended={"cambricon.com/mlu": "8"}, labels={"Model": "MLU370-X8"}),
    NodeSpec("mlu-bare-0", "", 0, extended={"cambricon.com/mlu": "8"}),
    NodeSpec("dcu-0", "", 0, extended={"hygon.com/dcu": "8"}, labels={"hygon.com/dcu.name": "K100_AI"}),
    NodeSpec("gaudi-0", "", 0, extended={"habana.ai/gaudi": "8"}, labels={"habana.ai/device.type": "GAUDI3"}),
]
# What the QA's operator wrote to reach the vNPUs: it made them whole chips of the 310P3 pool.
VNPU_CATALOG = "vendors:\n  huawei:\n    resources: [huawei.com/Ascend310P-2c, huawei.com/Ascend310P-4c]\n"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    tb = Testbed.start(tmp_path_factory.mktemp("vendor-discovery-bed"), members=(MEMBER,), nodes={MEMBER: NODES})
    try:
        tb.kubectl(MEMBER, "create", "namespace", WORKLOADS)
        yield tb
    finally:
        tb.stop()


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


def test_vnpus_and_hami_ascend_devices_are_said_and_counted_never_chips(
        bed: Testbed, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="federator.agent.kube"):
        cap, backend = _capacity(bed)
    pools = {p.accelerator_model: p for p in cap.accelerator_pools}
    assert pools["Ascend310P3"].allocatable_accelerators == 4  # the plain chips only
    assert not any("910B3" in m for m in pools)  # HAMi's devices: no pool
    assert dict(backend.unsupported_accelerators) == {
        "huawei.com/Ascend310P-2c": 8, "huawei.com/Ascend310P-4c": 2, "huawei.com/Ascend910B3": 8}
    said = [r.getMessage() for r in caplog.records if "not offered to the federator, which has no model" in
            r.getMessage()]
    assert any("vnpu-0 has 8 huawei.com/Ascend310P-2c" in m and "vNPU" in m for m in said), said
    assert any("hami-910b3-0 has 8 huawei.com/Ascend910B3" in m and "HAMi" in m for m in said), said
    metrics = AgentMetrics(cluster=MEMBER, region="east")
    metrics.unsupported(backend.unsupported_accelerators)
    assert metrics.registry.get_sample_value("federator_agent_unsupported_accelerators",
                                             {"resource": "huawei.com/Ascend310P-2c"}) == 8

    path = tmp_path / "vnpu.yaml"  # the catalog route: still not chips
    path.write_text(VNPU_CATALOG)
    cap, backend = _capacity(bed, Discovery.from_catalog(builtin_catalog().merged(load_catalog_file(path))))
    pools = {p.accelerator_model: p for p in cap.accelerator_pools}
    assert pools["Ascend310P3"].allocatable_accelerators == 4
    assert backend.unsupported_accelerators["huawei.com/Ascend310P-2c"] == 8


def test_cambricon_hygon_and_gaudi_pools_carry_their_labellers_model(bed: Testbed) -> None:
    cap, backend = _capacity(bed)
    got = {(p.vendor, p.accelerator_model, p.family, p.memory_mib, p.allocatable_accelerators)
           for p in cap.accelerator_pools if p.vendor in ("cambricon", "hygon", "intel")}
    assert got == {("cambricon", "MLU370-X8", "", 49152, 8), ("hygon", "DCU-K100_AI", "DCU-K100", 65536, 8),
                   ("intel", "Gaudi3", "", 131072, 8)}
    assert dict(backend.unlabelled_accelerators) == {"cambricon.com/mlu": 8}  # mlu-bare-0: said, not pool MLU
