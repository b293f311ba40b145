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
from federator.backends.kube.pools import pools
from federator.backends.kube.vnpu import template
from federator.catalog import builtin_catalog, parse_catalog_text
from federator.jobfile_loading import parse_job_documents
from federator.model import JobId, placement_held_milli
from federator.scheduler import Scheduler, Snapshot
from federator.server.scheduling import new_placements

from builders import cluster, request

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
    ("huawei.com/Ascend910-6c.1cpu.16g", "910B1", 250),  # CANN's Ascend910B1: 24 AI cores, like 910B2
    ("huawei.com/Ascend910-16c", "910ProB", 533), ("huawei.com/Ascend910-16c", "910B", 533),  # the 30-core 910s
    ("huawei.com/Ascend910-16c", "910ProA", 500), ("huawei.com/Ascend910-16c", "910PremiumA", 500),
    ("huawei.com/Ascend910-5c.1cpu.16g", "910B4-1", 0),  # a chip whose AI cores the catalog does not give: no share
    ("huawei.com/Ascend910-16c", "Ascend910", 0),  # a family's or product line's name is no chip: never guessed
    ("huawei.com/Ascend310P-16c", "310P3", 0),  # more cores than the chip has: not its partition
])
def test_a_template_is_worth_its_ai_cores_over_the_chips(resource: str, chip: str, unit: int) -> None:
    (huawei, *_) = [p for p in Discovery.from_catalog().plugins if p.vendor == "huawei"]
    t = template(resource)
    assert t is not None and t.unit_milli(huawei.chip_ai_cores(chip)) == unit


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


def test_no_chip_label_is_unlabelled_and_a_chip_without_ai_cores_is_unsupported_neither_a_pool() -> None:
    d = Discovery.from_catalog()
    bare = node("bare-0", None, **{"huawei.com/Ascend910-4c": "4"})
    b41 = node("b41-0", "910B4-1", **{"huawei.com/Ascend910-6c.1cpu.16g": "4"})
    assert d.groups([bare, b41], []) == []
    assert [(u.resource, u.devices, u.missing_label) for u in d.unlabelled([bare, b41])] == [
        ("huawei.com/Ascend910-4c", 4, CHIP)]
    (unsupported,) = d.unsupported([bare, b41])
    assert (unsupported.resource, unsupported.devices) == ("huawei.com/Ascend910-6c.1cpu.16g", 4)
    assert "chip 910B4-1" in unsupported.what and "give model Ascend910B4-1 its aiCores" in unsupported.what
    assert d.unsupported([P310]) == []  # known chips' templates are pools, not left out
    (bigger,) = d.unsupported([node("p3-0", "310P3", **{"huawei.com/Ascend310P-16c": "1"})])
    assert "on chip 310P3, which has 8 (model Ascend310P3's aiCores" in bigger.what  # not "unknown": fewer


def test_an_operators_catalog_gives_a_chip_its_ai_cores_and_its_vnpus_become_a_pool() -> None:
    """A chip the release does not know (910B4-1) is left out until the operator's catalog file gives its model
    aiCores; then its templates are partition pools of that chip, worth their cores over the file's."""
    b41 = node("b41-0", "910B4-1", **{"huawei.com/Ascend910-5c.1cpu.16g": "4"})
    extra = parse_catalog_text("vendors:\n  huawei:\n    models:\n"
                               "      - {name: Ascend910B4-1, memoryMiB: 65536, family: Ascend910B, aiCores: 20}\n",
                               base=builtin_catalog())
    d = Discovery.from_catalog(builtin_catalog().merged(extra))
    assert [(g.model, g.family, g.unit_milli, g.units) for g in d.groups([b41], [])] == [
        ("Ascend910B4-1-vNPU-5c.1cpu.16g", "Ascend910B", 250, 4)]
    assert d.unsupported([b41]) == []
    assert Discovery.from_catalog().groups([b41], []) == []  # the built-in catalog alone: still left out


def test_an_operators_file_corrects_a_chips_ai_cores_and_keeps_its_other_fields() -> None:
    """A correction of one field of a built-in model keeps the rest: 910B3's family (a job naming Ascend910B still
    selects it) and memory."""
    fix = parse_catalog_text("vendors:\n  huawei:\n    models:\n      - {name: Ascend910B3, aiCores: 10}\n",
                             base=builtin_catalog())
    cat = builtin_catalog().merged(fix)
    b3 = cat.find_model("Ascend910B3")
    assert b3 is not None and (b3.ai_cores, b3.family, b3.memory_mib) == (10, "Ascend910B", 65536)
    b3node = node("b3-0", "910B3", **{"huawei.com/Ascend910-5c.1cpu.16g": "4"})
    assert [g.unit_milli for g in Discovery.from_catalog(cat).groups([b3node], [])] == [500]


def test_a_30_core_chips_16c_template_is_worth_its_share_and_serves_what_a_32_core_chips_cannot() -> None:
    """Ascend910ProB has 30 AI cores (CANN's platform data), so its 16c template is 533m of a chip, not the 500m of
    a 32-core 910A's: the pool says so, a replica asking 520m of huawei.com/Ascend910 runs there (never on the
    910A's, too small), and what its placement holds (the bill, quotas, fair share) is the template's worth."""
    nodes = [node("a-0", "910A", **{"huawei.com/Ascend910-16c": "2"}),
             node("prob-0", "910ProB", **{"huawei.com/Ascend910-16c": "2"})]
    offered = pools(Discovery.from_catalog().groups(nodes, []), {"a-0", "prob-0"})
    assert {(p.accelerator_model, p.sharing, p.unit_milli) for p in offered} == {
        ("Ascend910A-vNPU-16c", "MIG", 500), ("Ascend910ProB-vNPU-16c", "MIG", 533)}
    (spec,) = parse_job_documents("apiVersion: federator.io/v1alpha1\nkind: FederatedJob\nmetadata: {name: j}\n"
                                  "spec: {kind: inference, resources: {cpu: '1', memory: 1Gi, "
                                  "huawei.com/Ascend910: 520m}, replicas: 2}")
    result = Scheduler().schedule(Snapshot.of([cluster("hw", "r", *offered)]), [request(spec)])
    (decision,) = result.decisions
    assert [(a.accelerator_model, a.replicas) for a in decision.assignments] == [("Ascend910ProB-vNPU-16c", 2)]
    held = sum(placement_held_milli(p, spec) for p in new_placements(JobId("j"), 1, decision.assignments))
    assert held == 2 * 533
