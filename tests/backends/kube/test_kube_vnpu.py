"""Ascend static vNPU templates as partition pools (backends/kube/vnpu.py, devices.py): outside QA, V2.

A MindCluster node whose chips are cut into templates advertises one resource per template; each unit is a hardware
partition of that many AI cores of one chip. The agent offers them as MIG profiles are offered: a pool per template
and chip, worth the template's cores over the chip's, rendered back as the template's resource, one per replica.
"""

from __future__ import annotations

from typing import Any

import pytest

from federator.backends.kube.accelerators import RenderError, find_group, render
from federator.backends.kube.devices import Sharing
from federator.backends.kube.discovery import Discovery
from federator.backends.kube.vnpu import template

CHIP = "huawei.com/npu.chip.name"


def node(name: str, chip: str | None, **allocatable: str) -> dict[str, Any]:
    labels = {CHIP: chip} if chip else {}
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": dict(allocatable)}}


def pod(node_name: str, resource: str, count: int) -> dict[str, Any]:
    return {"spec": {"nodeName": node_name, "containers": [{"resources": {"limits": {resource: str(count)}}}]}}


P310 = node("vnpu-0", "310P3", **{"huawei.com/Ascend310P-2c": "8", "huawei.com/Ascend310P-4c.3cpu.ndvpp": "1"})


@pytest.mark.parametrize(("resource", "chip", "unit"), [
    ("huawei.com/Ascend310P-2c", "310P3", 250), ("huawei.com/Ascend310P-1c", "Ascend310P3", 125),
    ("huawei.com/Ascend310P-4c.4cpu.dvpp", "310P3", 500), ("huawei.com/Ascend910-16c", "910A", 500),
    ("huawei.com/Ascend910-5c.1cpu.16g", "910B3", 250), ("huawei.com/Ascend910-6c.1cpu.16g", "910B2", 250),
    ("huawei.com/Ascend910-6c.1cpu.16g", "910B1", 0),  # a chip whose AI cores are not known: no share
    ("huawei.com/Ascend310P-16c", "310P3", 0),  # more cores than the chip has: not its partition
])
def test_a_template_is_worth_its_ai_cores_over_the_chips(resource: str, chip: str, unit: int) -> None:
    t = template(resource)
    assert t is not None and t.unit_milli(chip) == unit


def test_names_that_are_not_templates_are_not_read_as_one() -> None:
    assert template("huawei.com/Ascend310P") is None and template("huawei.com/Ascend910B3") is None
    assert template("huawei.com/Ascend910-memory") is None and template("nvidia.com/mig-1g.10gb") is None


def test_each_template_on_each_chip_is_a_partition_pool_with_the_chips_family_and_what_pods_hold() -> None:
    groups = Discovery.from_catalog().groups([P310], [pod("vnpu-0", "huawei.com/Ascend310P-2c", 3)])
    got = {(g.model, g.family, g.sharing, g.unit_milli, g.units, g.free_devices(), g.resource) for g in groups}
    assert got == {
        ("Ascend310P3-vNPU-2c", "Ascend310P", Sharing.MIG, 250, 8, 5, "huawei.com/Ascend310P-2c"),
        ("Ascend310P3-vNPU-4c.3cpu.ndvpp", "Ascend310P", Sharing.MIG, 500, 1, 1, "huawei.com/Ascend310P-4c.3cpu.ndvpp")}


def test_a_replica_asks_one_template_pinned_to_the_chip_tolerating_the_chips_taint() -> None:
    group = find_group(Discovery.from_catalog().groups([P310], []), model="Ascend310P3-vNPU-2c", vendor="huawei")
    assert group is not None
    asked = render(group, 250)
    assert asked.limits == {"huawei.com/Ascend310P-2c": "1"}
    assert asked.node_selector == {CHIP: "310P3"}
    assert set(asked.tolerations) == {"huawei.com/Ascend310P", "huawei.com/Ascend310P-2c"}
    assert render(group, 2000).limits == {"huawei.com/Ascend310P-2c": "2"}  # two partitions by name
    with pytest.raises(RenderError, match="250m of a device, less than the 300m"):
        render(group, 300)


def test_no_chip_label_is_unlabelled_and_an_unknown_chip_is_unsupported_neither_a_pool() -> None:
    d = Discovery.from_catalog()
    bare = node("bare-0", None, **{"huawei.com/Ascend910-4c": "4"})
    b1 = node("b1-0", "910B1", **{"huawei.com/Ascend910-6c.1cpu.16g": "4"})
    assert d.groups([bare, b1], []) == []
    assert [(u.resource, u.devices, u.missing_label) for u in d.unlabelled([bare, b1])] == [
        ("huawei.com/Ascend910-4c", 4, CHIP)]
    (unsupported,) = d.unsupported([bare, b1])
    assert (unsupported.resource, unsupported.devices) == ("huawei.com/Ascend910-6c.1cpu.16g", 4)
    assert "chip 910B1" in unsupported.what
    assert d.unsupported([P310]) == []  # known chips' templates are pools, not left out
