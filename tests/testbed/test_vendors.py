"""The test bed's vendor nodes and fake DRA driver, checked through kubectl and the real kube-scheduler."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

try:
    from tests.testbed import vendors
    from tests.testbed.testbed import DRA_DRIVER, Testbed
except ImportError:  # tests/testbed on sys.path
    import vendors  # type: ignore[no-redef]

    from testbed import DRA_DRIVER, Testbed  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(1800)]

MEMBERS = ("ascend", "hami", "dra")


@pytest.fixture(scope="module")
def tb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    nodes = vendors.vendor_fleet(MEMBERS)
    bed = Testbed.start(tmp_path_factory.mktemp("vendors"), members=MEMBERS, nodes=nodes)
    try:
        yield bed
    finally:
        bed.stop()


def _wait(fn: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _pod(name: str, limits: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": "registry.invalid/x:1",
                                     "resources": {"limits": limits}}], **spec}}


def _phase(tb: Testbed, member: str, name: str) -> tuple[str, str]:
    pod = tb.kubectl_json(member, "get", "pod", name)
    return pod["status"].get("phase", ""), pod["spec"].get("nodeName", "")


def test_ascend_nodes_carry_the_mindcluster_resource_and_labels(tb: Testbed) -> None:
    (node, *_) = tb.kubectl_json("ascend", "get", "nodes")["items"]
    assert node["status"]["allocatable"]["huawei.com/Ascend910"] == "8"
    labels = node["metadata"]["labels"]
    assert labels["accelerator"] == "huawei-Ascend910" and labels["huawei.com/npu.chip.name"] == "910B3"
    tb.apply("ascend", _pod("npu", {"huawei.com/Ascend910": 8}, nodeSelector={"huawei.com/npu.chip.name": "910B3"}))
    assert _wait(lambda: _phase(tb, "ascend", "npu")[0] == "Running", "the NPU pod Running")


def test_hami_member_schedules_memory_and_core_asks_its_nodes_do_not_list(tb: Testbed) -> None:
    (node,) = tb.kubectl_json("hami", "get", "nodes")["items"]
    assert "nvidia.com/gpumem" not in node["status"]["allocatable"]
    devices = json.loads(node["metadata"]["annotations"]["hami.io/node-nvidia-register"])
    assert [d["count"] for d in devices] == [10, 10, 10, 10]
    tb.apply("hami", _pod("half", {"nvidia.com/gpu": 1, "nvidia.com/gpumem": 40960, "nvidia.com/gpucores": 50}))
    assert _wait(lambda: _phase(tb, "hami", "half")[0] == "Running", "the HAMi pod Running")


def test_dra_driver_publishes_slices_and_kube_scheduler_allocates_a_claim(tb: Testbed) -> None:
    slices = tb.kubectl_json("dra", "get", "resourceslices.v1.resource.k8s.io")["items"]
    (s,) = [s for s in slices if s["spec"]["driver"] == DRA_DRIVER]
    assert s["spec"]["nodeName"] == "dra-h100-0" and len(s["spec"]["devices"]) == 8
    assert s["spec"]["devices"][0]["attributes"]["productName"] == {"string": "NVIDIA H100 80GB HBM3"}
    tb.kubectl_json("dra", "get", "deviceclass", DRA_DRIVER)

    template = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
                "metadata": {"name": "two-h100", "namespace": "default"},
                "spec": {"spec": {"devices": {"requests": [{"name": "gpus", "exactly": {
                    "deviceClassName": DRA_DRIVER, "count": 2, "selectors": [{"cel": {"expression":
                        f'device.attributes["{DRA_DRIVER}"].productName == "NVIDIA H100 80GB HBM3"'}}]}}]}}}}
    pod = _pod("dra", {}, resourceClaims=[{"name": "gpus", "resourceClaimTemplateName": "two-h100"}])
    pod["spec"]["containers"][0]["resources"] = {"claims": [{"name": "gpus"}]}
    tb.kubectl("dra", "apply", "-f", "-", input=yaml.safe_dump_all([template, pod]))
    assert _wait(lambda: _phase(tb, "dra", "dra") == ("Running", "dra-h100-0"), "the DRA pod Running", 90)
    claims = tb.kubectl_json("dra", "get", "resourceclaims")["items"]
    (claim,) = [c for c in claims if c["metadata"]["name"].startswith("dra-gpus")]
    results = claim["status"]["allocation"]["devices"]["results"]
    assert len(results) == 2 and {r["driver"] for r in results} == {DRA_DRIVER}

    tb.kubectl("dra", "delete", "resourceslice", s["metadata"]["name"])
    assert _wait(lambda: any(x["spec"]["pool"]["generation"] == 1 and x["spec"]["driver"] == DRA_DRIVER
                             for x in tb.kubectl_json("dra", "get", "resourceslices")["items"]),
                 "the driver to publish its slice again")
