"""AMD compute partitions (vendqa61 V7) and AMD's product names (V1): an MI300X node in CPX mode counts 64
``amd.com/gpu``, one per partition; before, the agent reported 64 whole MI300X of 192 GiB, and a 64-accelerator
job was placed and billed on 8 physical GPUs. The node labeller's raw AMD_Instinct_MI300X_OAM is reported as the
catalog's AMD-Instinct-MI300X, so supply and demand metrics name one device one way."""

from __future__ import annotations

import sys
from typing import Any

from federator.backends.kube.discovery import Discovery
from federator.backends.kube.pools import pools
from federator.catalog import builtin_catalog, parse_catalog_text
from federator.model import AcceleratorPool
from federator.model.sharing import names_partition
from federator.scheduler.framework import accepts_pool

from builders import job, request
from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402  (tests/testbed is not a package)


def _node(spec: Any) -> dict[str, Any]:
    node: dict[str, Any] = spec.manifest()
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return node


def _discovery() -> Discovery:
    return Discovery.from_catalog(builtin_catalog())


def _pools(*specs: Any) -> dict[str, AcceleratorPool]:
    nodes = [_node(s) for s in specs]
    groups = _discovery().groups(nodes, [])
    names = {str(n["metadata"]["name"]) for n in nodes}
    return {p.accelerator_model: p for p in pools(groups, names)}


def test_whole_mi300x_are_named_as_the_catalog_names_them_and_pinned_by_the_raw_label() -> None:
    (g,) = _discovery().groups([_node(vendors.amd_nodes("a", 1)[0])], [])
    assert (g.model, g.memory_mib, g.devices) == ("AMD-Instinct-MI300X", 192 * 1024, 8)
    assert g.selector == (("amd.com/gpu.product-name", "AMD_Instinct_MI300X_OAM"),)


def test_a_cpx_node_is_64_partitions_worth_an_eighth_not_64_mi300x() -> None:
    by_model = _pools(*vendors.amd_nodes("w", 1), *vendors.amd_partitioned_nodes("c", 1, mode="cpx_nps4"))
    whole, cpx = by_model["AMD-Instinct-MI300X"], by_model["AMD-Instinct-MI300X-CPX-NPS4"]
    assert whole.total_accelerators == 8  # the CPX node's 64 are not whole MI300X
    assert (cpx.total_accelerators, cpx.sharing, cpx.unit_milli, cpx.memory_mib) == (64, "MIG", 125, 24 * 1024)
    (g,) = [g for g in _discovery().groups([_node(vendors.amd_partitioned_nodes("c", 1)[0])], [])]
    assert dict(g.selector) == {"amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM",
                                "amd.com/compute-memory-partition": "cpx_nps4"}


def test_a_dpx_node_is_partitions_worth_half_a_gpu() -> None:
    (dpx,) = _pools(*vendors.amd_partitioned_nodes("d", 1, mode="dpx_nps2")).values()
    assert (dpx.accelerator_model, dpx.total_accelerators, dpx.unit_milli) == ("AMD-Instinct-MI300X-DPX-NPS2", 16, 500)


def test_spx_is_whole_gpus() -> None:
    (spx,) = _pools(*vendors.amd_partitioned_nodes("s", 1, mode="spx_nps1")).values()
    assert (spx.accelerator_model, spx.total_accelerators, spx.sharing) == ("AMD-Instinct-MI300X", 8, "None")


def test_a_job_asking_mi300x_never_lands_on_partitions_one_naming_the_mode_may() -> None:
    by_model = _pools(*vendors.amd_nodes("w", 1), *vendors.amd_partitioned_nodes("c", 1))
    cpx = by_model["AMD-Instinct-MI300X-CPX-NPS4"]
    whole, named = job("j", gpus=8, models=("MI300X",)), job("k", gpus=8, models=("MI300X-CPX",))
    assert names_partition("MI300X-CPX") and not names_partition("MI300X")
    assert not accepts_pool(request(whole), cpx)
    assert accepts_pool(request(named), cpx)
    assert accepts_pool(request(whole), by_model["AMD-Instinct-MI300X"])


def test_a_partitioned_node_without_the_mode_label_is_left_out_and_said() -> None:
    node = _node(vendors.amd_partitioned_nodes("u", 1, mode="")[0])
    assert _discovery().groups([node], []) == []
    (u,) = _discovery().unsupported([node])
    assert (u.resource, u.devices) == ("amd.com/gpu", 64)
    assert "at most 8" in u.what and "amd.com/compute-memory-partition" in u.what
    # eight whole MI300X on such a node are still whole MI300X
    assert _discovery().unsupported([_node(vendors.amd_nodes("w", 1)[0])]) == []


def test_devices_of_a_plugin_mode_the_catalog_does_not_list_are_said_not_silent() -> None:
    """vendqa61 V10: Cambricon's --enable-device-type (cambricon.com/mlu370) was neither counted nor left out; ROCm's
    mixed naming (amd.com/cpx_nps4) likewise. Said (unsupported) until a catalog lists the resource."""
    typed = _node(vendors.NodeSpec("mlu-typed-0", "", 0, extended={"cambricon.com/mlu370": "8"},
                                   labels={"Model": "MLU370-X8"}))
    mixed = _node(vendors.amd_partitioned_nodes("m", 1)[0])
    mixed["status"]["allocatable"] = {"amd.com/cpx_nps4": "64"}
    got = {(u.node, u.resource, u.devices) for u in _discovery().unsupported([typed, mixed])}
    assert got == {("mlu-typed-0", "cambricon.com/mlu370", 8), ("m-0", "amd.com/cpx_nps4", 64)}
    assert _discovery().groups([typed, mixed], []) == []
    listed = builtin_catalog().merged(parse_catalog_text(
        "vendors:\n  cambricon:\n    resources: [cambricon.com/mlu370]\n  amd:\n    resources: [amd.com/cpx_nps4]\n",
        base=builtin_catalog()))
    discovery = Discovery.from_catalog(listed)
    assert discovery.unsupported([typed, mixed]) == []
    got_pools = {(g.model, g.resource, g.devices, g.unit_milli) for g in discovery.groups([typed, mixed], [])}
    assert got_pools == {("MLU370-X8", "cambricon.com/mlu370", 8, 1000),
                         ("AMD-Instinct-MI300X-CPX-NPS4", "amd.com/cpx_nps4", 64, 125)}
