"""The agent's discovery comes from the accelerator catalog (built in + the operator's file): pool
names are the catalog's model names with their family, and a new vendor's device plugin or DRA
driver is added by a catalog file, not code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from federator.backends.kube.capacity import cluster_capacity
from federator.backends.kube.discovery import Discovery
from federator.catalog import builtin_catalog, load_catalog_file

from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402  (tests/testbed is not a package)

from testbed import NodeSpec  # noqa: E402

OPERATOR_FILE = """\
vendors:
  acme:
    # A vendor the built-in catalog does not know: its device plugin, product label and DRA driver.
    resources: [acme.example/npu]
    productLabel: acme.example/npu.product
    memoryLabel: acme.example/npu.memory
    memoryUnit: Gi
    modelPrefix: Acme-
    dra:
      - {driver: npu.acme.example, productAttribute: model, memoryCapacity: vram, typeAttribute: ""}
    models:
      - {name: Acme-X1, memoryMiB: 65536, family: Acme-X}
"""


def _node(spec: NodeSpec) -> dict[str, Any]:
    node = spec.manifest()
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return node


def _discovery(tmp_path: Path | None = None) -> Discovery:
    cat = builtin_catalog()
    if tmp_path is not None:
        (tmp_path / "catalog.yaml").write_text(OPERATOR_FILE)
        cat = cat.merged(load_catalog_file(tmp_path / "catalog.yaml"))
    return Discovery.from_catalog(cat)


def test_an_ascend_pool_is_named_as_the_catalog_names_the_chip_with_its_family() -> None:
    nodes = [_node(s) for s in vendors.ascend_nodes("a", 2)]
    (g, _) = _discovery().groups(nodes, [])
    assert (g.vendor, g.model, g.family, g.resource, g.memory_mib) == (
        "huawei", "Ascend910B3", "Ascend910B", "huawei.com/Ascend910", 65536)
    assert g.selector == (("huawei.com/npu.chip.name", "910B3"),)  # pods are pinned by the label's own value
    (pool,) = cluster_capacity(nodes, [], discovery=_discovery()).accelerator_pools
    assert (pool.accelerator_model, pool.family, pool.vendor, pool.total_accelerators) == (
        "Ascend910B3", "Ascend910B", "huawei", 16)


def test_an_ascend_node_with_only_the_deprecated_chip_label_is_still_read() -> None:
    node = _node(vendors.ascend_nodes("a", 1)[0])
    for key in ("huawei.com/npu.chip.name", "huawei.com/npu.chip.memory"):
        del node["metadata"]["labels"][key]
    (g,) = _discovery().groups([node], [])
    assert (g.model, g.family, g.memory_mib) == ("Ascend910B3", "Ascend910B", 65536)
    assert g.selector == (("node.kubernetes.io/npu.chip.name", "910B3"),)


def test_models_the_catalog_does_not_list_keep_the_label_and_get_no_family() -> None:
    groups = {g.model: g for s in vendors.vendor_fleet(("nvidia", "amd", "mig")).values()
              for g in _discovery().groups([_node(n) for n in s], [])}
    # AMD's labeller value is a labelValue of the catalog's AMD-Instinct-MI300X (vendqa61 V1): named so
    assert set(groups) == {"NVIDIA-H100-80GB-HBM3", "AMD-Instinct-MI300X", "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb",
                           "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb"}
    assert {g.family for g in groups.values()} == {""}


def test_a_node_without_its_vendors_product_label_is_not_a_pool_but_unlabelled() -> None:
    """Not pool "Ascend910": its pods could not be pinned off the labelled 910B nodes (F3)."""
    node = _node(vendors.ascend_nodes("a", 1)[0])
    node["metadata"]["labels"] = {}
    assert _discovery().groups([node], []) == []
    (u,) = _discovery().unlabelled([node])
    assert (u.resource, u.devices, u.missing_label) == ("huawei.com/Ascend910", 8, "huawei.com/npu.chip.name")


def test_cambricon_hygon_and_gaudi_pools_are_named_by_their_labellers_labels() -> None:
    """Outside QA, V3: every such node was pool MLU, DCU or Gaudi, so a job naming a catalog model of them
    (MLU370-X8, Gaudi3) waited for ever beside idle devices. The labels are the vendors' own: Cambricon's node
    labeller `Model`, Hygon's `hygon.com/dcu.name`, Gaudi feature discovery's `habana.ai/device.type`."""
    nodes = [_node(NodeSpec("mlu-0", "", 0, extended={"cambricon.com/mlu": "8"}, labels={"Model": "MLU370-X8"})),
             _node(NodeSpec("dcu-0", "", 0, extended={"hygon.com/dcu": "8"},
                            labels={"hygon.com/dcu.name": "K100_AI"})),
             _node(NodeSpec("gaudi-0", "", 0, extended={"habana.ai/gaudi": "8"},
                            labels={"habana.ai/device.type": "GAUDI3"}))]
    got = [(g.vendor, g.model, g.family, g.memory_mib, g.selector) for g in _discovery().groups(nodes, [])]
    assert got == [("cambricon", "MLU370-X8", "", 49152, (("Model", "MLU370-X8"),)),
                   ("hygon", "DCU-K100_AI", "DCU-K100", 65536, (("hygon.com/dcu.name", "K100_AI"),)),
                   ("intel", "Gaudi3", "", 131072, (("habana.ai/device.type", "GAUDI3"),))]
    bare = _node(NodeSpec("mlu-1", "", 0, extended={"cambricon.com/mlu": "8"}))
    assert _discovery().groups([bare], []) == []  # no pool MLU its pods could not be pinned to (F3)
    (u,) = _discovery().unlabelled([bare])
    assert (u.resource, u.devices, u.missing_label) == ("cambricon.com/mlu", 8, "Model")


def test_a_vendor_that_labels_no_product_gets_its_default_model_pinned_by_the_resource(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("vendors:\n  metax:\n    resources: [metax-tech.com/gpu]\n    defaultModel: MetaX-GPU\n")
    merged = builtin_catalog().merged(load_catalog_file(path))
    node = _node(NodeSpec("mx-0", "", 0, extended={"metax-tech.com/gpu": "8"}))
    (g,) = Discovery.from_catalog(merged).groups([node], [])
    assert (g.model, g.selector, g.resource) == ("MetaX-GPU", (), "metax-tech.com/gpu")


def test_an_operators_catalog_file_adds_a_vendors_device_plugin(tmp_path: Path) -> None:
    node = _node(NodeSpec("acme-0", "", 0, extended={"acme.example/npu": "8"},
                          labels={"acme.example/npu.product": "X1", "acme.example/npu.memory": "64"}))
    assert _discovery().groups([node], []) == []  # the built-in catalog does not know the vendor
    (g,) = _discovery(tmp_path).groups([node], [])
    assert (g.vendor, g.model, g.family, g.resource, g.devices, g.memory_mib) == (
        "acme", "Acme-X1", "Acme-X", "acme.example/npu", 8, 65536)
    assert g.selector == (("acme.example/npu.product", "X1"),)
    assert "acme.example/npu" in _discovery(tmp_path).resources  # its taint is tolerated like the others'


def _slice(node: str, driver: str, devices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": f"{node}-{driver}"},
            "spec": {"driver": driver, "nodeName": node, "pool": {"name": node, "generation": 1,
                                                                  "resourceSliceCount": 1}, "devices": devices}}


def test_dra_drivers_come_from_the_catalog(tmp_path: Path) -> None:
    nvidia = [d.manifest() for d in vendors.dra_gpu_nodes("d", 1, gpus=4)[0].dra_devices]
    acme = [{"name": f"npu-{i}", "attributes": {"model": {"string": "X1"}},
                 "capacity": {"vram": {"value": "64Gi"}}} for i in range(2)]
    slices = [_slice("d-0", "gpu.nvidia.com", nvidia), _slice("i-0", "npu.acme.example", acme)]
    nodes = [_node(NodeSpec("d-0", "", 0)), _node(NodeSpec("i-0", "", 0))]
    builtin = _discovery().groups(nodes, [], slices=slices)
    assert [(g.vendor, g.model, g.dra_class, g.devices) for g in builtin] == [
        ("nvidia", "NVIDIA-H100-80GB-HBM3", "gpu.nvidia.com", 4)]
    extended = _discovery(tmp_path).groups(nodes, [], slices=slices)
    assert [(g.vendor, g.model, g.family, g.dra_class, g.devices, g.memory_mib) for g in extended] == [
        ("nvidia", "NVIDIA-H100-80GB-HBM3", "", "gpu.nvidia.com", 4, 81559),
        ("acme", "Acme-X1", "Acme-X", "npu.acme.example", 2, 65536)]
    assert extended[1].selector == (("npu.acme.example/model", "X1"),)


def test_the_agents_catalog_file_reaches_the_capacity_it_reports(tmp_path: Path) -> None:
    """`federator agent --accelerator-catalog FILE` sets the process's catalog; the backend's
    default discovery is built from it."""
    from federator.catalog import use_catalog_file

    (tmp_path / "catalog.yaml").write_text(OPERATOR_FILE)
    node = _node(NodeSpec("acme-0", "", 0, extended={"acme.example/npu": "8"},
                          labels={"acme.example/npu.product": "X1"}))
    try:
        use_catalog_file(tmp_path / "catalog.yaml")
        (pool,) = cluster_capacity([node], []).accelerator_pools
        assert (pool.vendor, pool.accelerator_model, pool.family, pool.resource_name) == (
            "acme", "Acme-X1", "Acme-X", "acme.example/npu")
    finally:
        use_catalog_file(None)
    assert cluster_capacity([node], []).accelerator_pools == ()
