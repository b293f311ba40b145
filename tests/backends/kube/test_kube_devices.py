"""Accelerator discovery from Nodes and ResourceSlices, on nodes labelled as the real device plugins label them.

The nodes come from tests/testbed/vendors.py, the same builders the test bed
uses, so these unit tests and the end-to-end tests read identical objects.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from federator.backends.kube.devices import (
    DeviceGroup,
    DevicePlugin,
    Sharing,
    memory_mib,
    node_groups,
    parse_hami_register,
    with_usage,
)
from federator.backends.kube.dra import DraDriver, current_slices, dra_groups, model_of

from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402  (tests/testbed is not a package)

from testbed import NodeSpec  # noqa: E402

PLUGINS = (
    DevicePlugin("nvidia", "nvidia.com/gpu", ("nvidia.com/gpu.product",), ("nvidia.com/gpu.memory",)),
    DevicePlugin("nvidia", "nvidia.com/gpu.shared", ("nvidia.com/gpu.product",), ("nvidia.com/gpu.memory",)),
    DevicePlugin("huawei", "huawei.com/Ascend910", ("huawei.com/npu.chip.name", "node.kubernetes.io/npu.chip.name"),
                 ("huawei.com/npu.chip.memory", "mind-cluster/npu-chip-memory")),
    DevicePlugin("amd", "amd.com/gpu", ("amd.com/gpu.product-name",), ("amd.com/gpu.vram",)),
)
DRA = (DraDriver("gpu.nvidia.com", "nvidia", "gpu.nvidia.com"),)


def _node(spec: NodeSpec) -> dict[str, Any]:
    node = spec.manifest()
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return node


def _pod(node: str, limits: dict[str, Any], phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"name": f"p-{node}-{len(limits)}"}, "spec": {"nodeName": node, "containers": [
        {"name": "c", "resources": {"limits": limits}}]}, "status": {"phase": phase}}


def _only(groups: list[DeviceGroup]) -> DeviceGroup:
    assert len(groups) == 1, groups
    return groups[0]


def test_whole_nvidia_gpus_form_a_pool_named_by_the_gfd_product_label() -> None:
    (spec,) = vendors.vendor_fleet(("nvidia",))["nvidia"]
    g = _only(node_groups(_node(spec), PLUGINS))
    assert (g.vendor, g.model, g.resource, g.sharing) == ("nvidia", "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu",
                                                         Sharing.NONE)
    assert (g.devices, g.units, g.memory_mib, g.free_devices(), g.free_rest_milli()) == (8, 8, 81559, 8, 0)
    assert g.selector == (("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),)


def test_ascend_910b_reads_the_mindcluster_chip_name_and_memory() -> None:
    spec = vendors.ascend_nodes("a", 1)[0]
    g = _only(node_groups(_node(spec), PLUGINS))
    assert (g.vendor, g.model, g.resource, g.devices, g.memory_mib) == ("huawei", "910B3", "huawei.com/Ascend910",
                                                                        8, 64 * 1024)
    assert g.selector == (("huawei.com/npu.chip.name", "910B3"),)


def test_ascend_node_with_only_the_deprecated_labels_is_still_read() -> None:
    node = _node(vendors.ascend_nodes("a", 1)[0])
    for key in ("huawei.com/npu.chip.name", "huawei.com/npu.chip.memory"):
        del node["metadata"]["labels"][key]
    g = _only(node_groups(node, PLUGINS))
    assert (g.model, g.memory_mib, g.selector) == ("910B3", 65536, (("node.kubernetes.io/npu.chip.name", "910B3"),))


def test_amd_mi300x_from_the_node_labeller() -> None:
    g = _only(node_groups(_node(vendors.amd_nodes("m", 1)[0]), PLUGINS))
    assert (g.vendor, g.model, g.resource, g.devices, g.memory_mib) == ("amd", "AMD_Instinct_MI300X_OAM",
                                                                        "amd.com/gpu", 8, 192 * 1024)


def test_mig_profiles_are_groups_of_their_own_worth_memory_eighths() -> None:
    groups = {g.model: g for g in node_groups(_node(vendors.mig_nodes("m", 1, {"1g.10gb": 14, "3g.40gb": 4})[0]),
                                              PLUGINS)}
    assert set(groups) == {"NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb"}
    small, big = groups["NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"], groups["NVIDIA-H100-80GB-HBM3-MIG-3g.40gb"]
    assert (small.resource, small.sharing, small.devices, small.unit_milli) == ("nvidia.com/mig-1g.10gb",
                                                                                Sharing.MIG, 14, 125)
    assert (big.resource, big.devices, big.unit_milli) == ("nvidia.com/mig-3g.40gb", 4, 500)
    assert big.selector == (("nvidia.com/mig-3g.40gb.product", "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb"),)


@pytest.mark.parametrize("renamed", [False, True], ids=["nvidia.com/gpu", "renamed-gpu.shared"])
def test_time_sliced_gpus_are_replicas_that_serve_only_fractions(renamed: bool) -> None:
    spec = vendors.time_sliced_nodes("t", 1, gpus=4, replicas=4, renamed=renamed)[0]
    g = _only(node_groups(_node(spec), PLUGINS))
    assert (g.model, g.sharing, g.devices, g.units, g.unit_milli) == ("NVIDIA-L4-SHARED", Sharing.TIME_SLICING, 4,
                                                                      16, 250)
    assert g.resource == ("nvidia.com/gpu.shared" if renamed else "nvidia.com/gpu")
    assert not g.sharing.serves_whole and g.sharing.serves_fractions
    used = _only(with_usage([g], [_pod(spec.name, {g.resource: 5})]))
    assert (used.free_devices(), used.free_rest_milli()) == (2, 750)  # 11 replicas left: 2 GPUs + 3 of a third


def test_hami_devices_come_from_the_register_annotation_and_share_by_memory_and_cores() -> None:
    spec = vendors.hami_nodes("h", 1, gpus=4, split=10)[0]
    g = _only(node_groups(_node(spec), PLUGINS))
    assert (g.model, g.sharing, g.devices, g.units, g.memory_mib) == ("NVIDIA-A100-SXM4-80GB", Sharing.HAMI, 4, 40,
                                                                      81920)
    pods = [_pod(spec.name, {"nvidia.com/gpu": 1, "nvidia.com/gpumem": 40960}),  # half a GPU by memory
            _pod(spec.name, {"nvidia.com/gpu": 1, "nvidia.com/gpucores": 30}),  # 30% of one by cores
            _pod(spec.name, {"nvidia.com/gpu": 1})]  # a whole GPU (HAMi's default: all of its memory)
    used = _only(with_usage([g], pods))
    assert used.used_milli == 1800
    assert (used.free_devices(), used.free_rest_milli()) == (2, 200)


def test_hami_legacy_register_format() -> None:
    raw = "GPU-a,10,81920,100,NVIDIA-NVIDIA A100-SXM4-80GB,0,true:GPU-b,10,81920,100,NVIDIA-NVIDIA A100,0,false:"
    devices = parse_hami_register(raw)
    assert [(d["id"], d["count"], d["health"]) for d in devices] == [("GPU-a", 10, True), ("GPU-b", 10, False)]
    assert parse_hami_register("not json [") == [] and parse_hami_register("[1, 2") == []


def test_terminated_pods_do_not_hold_devices_but_running_ones_do() -> None:
    (spec,) = vendors.vendor_fleet(("nvidia",))["nvidia"]
    g = _only(node_groups(_node(spec), PLUGINS))
    used = _only(with_usage([g], [_pod(spec.name, {"nvidia.com/gpu": 3})]))
    assert (used.used_units, used.free_devices()) == (3, 5)


def test_a_node_without_accelerators_has_no_groups() -> None:
    assert node_groups(_node(NodeSpec("cpu-0", "", 0)), PLUGINS) == []


@pytest.mark.parametrize(("raw", "mib"), [("81559", 81559), ("64G", 65536), ("192G", 196608), ("16Gi", 16384),
                                          ("", 0), ("lots", 0)])
def test_memory_labels(raw: str, mib: int) -> None:
    assert memory_mib(raw) == mib


# -- DRA --------------------------------------------------------------------------


def _slice(node: str, devices: list[dict[str, Any]], generation: int = 1, driver: str = "gpu.nvidia.com") -> dict:
    return {"metadata": {"name": f"{node}-{generation}"},
            "spec": {"driver": driver, "nodeName": node, "pool": {"name": node, "generation": generation,
                                                                  "resourceSliceCount": 1},
                     "devices": devices}}


def _dra_devices(node: str, n: int = 8) -> list[dict[str, Any]]:
    spec = vendors.dra_gpu_nodes(node, 1, gpus=n)[0]
    return [d.manifest() for d in spec.dra_devices]


def _claim(node: str, *devices: str) -> dict[str, Any]:
    return {"status": {"allocation": {"devices": {"results": [
        {"request": "accelerators", "driver": "gpu.nvidia.com", "pool": node, "device": d} for d in devices]}}}}


def test_dra_devices_form_groups_and_allocated_claims_use_them() -> None:
    slices = [_slice("d-0", _dra_devices("d"))]
    g = _only(dra_groups(slices, [_claim("d-0", "gpu-0", "gpu-3")], DRA, ["gpu.nvidia.com"]))
    assert (g.node, g.vendor, g.model, g.devices, g.used_units, g.memory_mib) == (
        "d-0", "nvidia", "NVIDIA-H100-80GB-HBM3", 8, 2, 81559)
    assert (g.resource, g.dra_class, g.free_devices()) == ("", "gpu.nvidia.com", 6)
    assert g.selector == (("gpu.nvidia.com/productName", "NVIDIA H100 80GB HBM3"),)


def test_dra_only_the_newest_pool_generation_counts_and_other_drivers_are_ignored() -> None:
    slices = [_slice("d-0", _dra_devices("d", 8), generation=1), _slice("d-0", _dra_devices("d", 4), generation=2),
              _slice("d-0", [{"name": "nic-0", "attributes": {"type": {"string": "nic"}}}], driver="net.example.com")]
    assert len(current_slices(slices)) == 2
    assert _only(dra_groups(slices, [], DRA)).devices == 4


def test_dra_driver_without_its_device_class_is_not_reported() -> None:
    assert dra_groups([_slice("d-0", _dra_devices("d"))], [], DRA, device_classes=[]) == []


def test_dra_non_gpu_devices_of_the_driver_are_skipped() -> None:
    mig = {"name": "gpu-0-mig-1", "attributes": {"type": {"string": "mig"}, "productName": {"string": "X"}}}
    assert dra_groups([_slice("d-0", [mig])], [], DRA) == []


def test_dra_product_names_become_models_as_gfd_writes_them() -> None:
    assert model_of("NVIDIA H100 80GB HBM3") == "NVIDIA-H100-80GB-HBM3"
