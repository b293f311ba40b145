"""Rendering a placement's accelerators into a pod, for every way a member can offer them."""

from __future__ import annotations

import pytest

from federator.backends.kube.accelerators import (
    CLAIM_NAME,
    AcceleratorRequest,
    RenderError,
    apply,
    claim_spec,
    find_group,
    render,
)
from federator.backends.kube.devices import DeviceGroup, Sharing


def _group(sharing: Sharing = Sharing.NONE, **kw: object) -> DeviceGroup:
    base: dict = {"node": "n-0", "vendor": "nvidia", "model": "NVIDIA-H100-80GB-HBM3", "resource": "nvidia.com/gpu",
                  "selector": (("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),), "sharing": sharing,
                  "devices": 8, "units": 8, "unit_milli": 1000, "memory_mib": 81559}
    base.update(kw)
    return DeviceGroup(**base)


def test_whole_devices_ask_the_device_plugin_resource_and_pin_the_product() -> None:
    ascend = _group(vendor="huawei", model="910B3", resource="huawei.com/Ascend910",
                    selector=(("huawei.com/npu.chip.name", "910B3"),))
    req = render(ascend, 16000)
    assert req.limits == {"huawei.com/Ascend910": "16"}
    assert req.node_selector == {"huawei.com/npu.chip.name": "910B3"}
    assert req.tolerations == ("huawei.com/Ascend910",) and not req.uses_dra


def test_a_fraction_of_a_whole_device_pool_is_refused_naming_what_is_missing() -> None:
    with pytest.raises(RenderError, match="only as whole devices.*time-slicing, HAMi or MIG"):
        render(_group(), 500)


def test_mig_gives_one_partition_per_fractional_replica() -> None:
    mig = _group(Sharing.MIG, model="NVIDIA-H100-80GB-HBM3-MIG-3g.40gb", resource="nvidia.com/mig-3g.40gb",
                 selector=(("nvidia.com/mig-3g.40gb.product", "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb"),),
                 devices=4, units=4, unit_milli=500)
    assert render(mig, 500).limits == {"nvidia.com/mig-3g.40gb": "1"}
    assert render(mig, 2000).limits == {"nvidia.com/mig-3g.40gb": "2"}
    with pytest.raises(RenderError, match="500m of a device, less than the 750m"):
        render(mig, 750)


def test_time_slicing_takes_the_replicas_that_make_up_the_fraction_and_refuses_whole_accelerators() -> None:
    ts = _group(Sharing.TIME_SLICING, model="NVIDIA-L4-SHARED", units=16, devices=4, unit_milli=250)
    assert render(ts, 500).limits == {"nvidia.com/gpu": "2"}
    assert render(ts, 100).limits == {"nvidia.com/gpu": "1"}
    with pytest.raises(RenderError, match="time-sliced"):
        render(ts, 1000)


def test_hami_fraction_is_a_slot_with_memory_and_cores_and_whole_accelerators_are_slots() -> None:
    hami = _group(Sharing.HAMI, model="NVIDIA-A100-SXM4-80GB", units=40, devices=4, unit_milli=100,
                  memory_mib=81920)
    assert render(hami, 500).limits == {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "40960",
                                        "nvidia.com/gpucores": "50"}
    assert render(hami, 2000).limits == {"nvidia.com/gpu": "2"}


def test_dra_asks_a_claim_for_devices_of_the_product_instead_of_a_resource() -> None:
    dra = _group(resource="", selector=(("gpu.nvidia.com/productName", "NVIDIA H100 80GB HBM3"),),
                 dra_class="gpu.nvidia.com", dra_driver="gpu.nvidia.com")
    req = render(dra, 2000)
    assert req.uses_dra and not req.limits and not req.node_selector
    exactly = req.claim["spec"]["devices"]["requests"][0]["exactly"]  # type: ignore[index]
    assert exactly == {"deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 2,
                       "selectors": [{"cel": {"expression":
                                              'device.attributes["gpu.nvidia.com"].productName == '
                                              '"NVIDIA H100 80GB HBM3"'}}]}
    with pytest.raises(RenderError, match="DRA driver gpu.nvidia.com, which shares no device"):
        render(dra, 500)


def test_apply_merges_into_the_users_pod_and_references_the_claim_template() -> None:
    pod = {"nodeSelector": {"zone": "a"}, "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}
    main = {"name": "main", "resources": {"requests": {"cpu": "2"}}}
    apply(pod, main, AcceleratorRequest({"nvidia.com/mig-1g.10gb": "1"}, {"p": "x"}, ("nvidia.com/gpu", "m")))
    assert main["resources"] == {"requests": {"cpu": "2", "nvidia.com/mig-1g.10gb": "1"},
                                 "limits": {"nvidia.com/mig-1g.10gb": "1"}}
    assert pod["nodeSelector"] == {"zone": "a", "p": "x"}
    assert [t["key"] for t in pod["tolerations"]] == ["nvidia.com/gpu", "m"]

    dra_pod: dict = {}
    dra_main: dict = {"name": "main"}
    apply(dra_pod, dra_main, AcceleratorRequest(claim=claim_spec(_group(dra_class="c"), 1),
                                                claim_template_name="job-1-accelerators"))
    assert dra_pod["resourceClaims"] == [{"name": CLAIM_NAME, "resourceClaimTemplateName": "job-1-accelerators"}]
    assert dra_main["resources"]["claims"] == [{"name": CLAIM_NAME}]


def test_find_group_prefers_the_node_with_room() -> None:
    a, b = _group(node="a", used_units=8), _group(node="b", used_units=2)
    assert find_group([a, b], model="NVIDIA-H100-80GB-HBM3") is b
    assert find_group([a, b], model="NVIDIA-H100-80GB-HBM3", vendor="amd") is None
