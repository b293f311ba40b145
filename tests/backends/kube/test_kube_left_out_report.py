"""The kube agent's capacity report carries the devices it leaves out, and why (outside QA re-test R5).

Unlabelled devices (no label names their model) and devices in units that are not chips (HAMi's Ascend devices) are
not offered; they used to be said only in the agent's log and metrics, so the federator's operator saw a member's
capacity drop with no reason. The report now lists them (agent.proto CapacityReport.left_out). Nodes come from
tests/testbed/vendors.py and NodeSpec, as the discovery tests' do.
"""

from __future__ import annotations

import sys
from typing import Any

from federator.api import convert
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED
from federator.backends.kube.left_out import MAX_LEFT_OUT_DEVICES, left_out_of
from federator.model.cluster import MAX_LEFT_OUT

from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402  (tests/testbed is not a package)

from testbed import NodeSpec  # noqa: E402


def _node(spec: NodeSpec, *, drop: str = "") -> dict[str, Any]:
    node = spec.manifest()
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    node["metadata"].setdefault("labels", {}).pop(drop, None)
    return node


def _a100(name: str) -> NodeSpec:
    return NodeSpec(name, vendors.A100, 8, labels=vendors._gfd_labels(vendors.A100, 8, 81920, "ampere"))


HAMI_ASCEND = NodeSpec("hami-910b3-0", "", 0, extended={"huawei.com/Ascend910B3": "8", "huawei.com/Ascend910B3-memory":
                                                       "524288"},
                       labels={"accelerator": "huawei-Ascend910", "huawei.com/npu.chip.name": "910B3"})


def _capacity(*nodes: dict[str, Any]) -> Any:
    b = KubeBackend(object(), namespace="w")  # type: ignore[arg-type]
    for n in nodes:
        b.nodes._apply_event(ADDED, n)
    return b.capacity()


def test_the_report_lists_unlabelled_and_unsupported_devices_and_offers_neither() -> None:
    cap = _capacity(_node(_a100("a100-0")), _node(_a100("bare-0"), drop="nvidia.com/gpu.product"),
                    _node(_a100("bare-1"), drop="nvidia.com/gpu.product"), _node(HAMI_ASCEND))
    assert [(p.accelerator_model, p.total_accelerators) for p in cap.accelerator_pools] == [(vendors.A100, 8)]
    expected = (("huawei.com/Ascend910B3", "unsupported", 8), ("nvidia.com/gpu", "unlabelled", 16))
    assert cap.left_out == expected
    sent = convert.capacity_to_pb(cap)  # what the session sends: the contract's entries, taken back as they were
    assert [(d.resource_name, d.reason, d.devices) for d in sent.left_out] == list(expected)
    assert convert.capacity_from_pb(sent).left_out == expected


def test_a_report_with_nothing_left_out_lists_nothing() -> None:
    assert _capacity(_node(_a100("a100-0"))).left_out == ()


def test_the_list_is_bounded_keeping_the_most_devices() -> None:
    counts = {"unlabelled": {f"vendor{i}.com/gpu": i + 1 for i in range(MAX_LEFT_OUT + 6)},
              "unsupported": {"huawei.com/Ascend310P-2c": 2**40, "gone.com/npu": 0}}
    listed = left_out_of(counts)
    assert len(listed) == MAX_LEFT_OUT
    assert ("huawei.com/Ascend310P-2c", "unsupported", MAX_LEFT_OUT_DEVICES) in listed  # within an int32
    assert all(n > 6 for r, _, n in listed if r.startswith("vendor"))  # the smallest counts are the ones dropped
    assert not [r for r, _, _ in listed if r == "gone.com/npu"]
