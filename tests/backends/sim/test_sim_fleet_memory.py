"""A simulated fleet gives its accelerators' memory (`memoryMiB` per node group), as a real member's label does.

Outside QA, vendors2 R9: once a pool's memory was no longer guessed from the catalog (V7), a fleet of `A100` or `DCU`
nodes had unknown memory, so `minMemoryMiB` asks that placed before (`federator sim`: jobs_placed 1) waited, and a
fleet file had no key to say the memory. The key is parsed with errors naming the field, reported in the simulated
member's pool (AcceleratorPool.memory_mib), and matched by the scheduler as a real member's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from federator.backends.sim.fleet import FleetError, parse_fleet
from federator.backends.sim.nodes import NodeSet
from federator.cli import main


def fleet(*groups: dict[str, Any]) -> dict[str, Any]:
    return {"clusters": [{"name": "s-1", "region": "east", "nodes": list(groups)}]}


def group(**keys: Any) -> dict[str, Any]:
    return {"count": 1, "model": "A100", "accelerators": 8, "cpu": 64, "memory": "512Gi", **keys}


def pools(*groups: dict[str, Any]) -> dict[str, int]:
    nodes = NodeSet.of(parse_fleet(fleet(*groups))["s-1"].nodes, fit="best")
    return {p.accelerator_model: p.memory_mib for p in nodes.capacity().accelerator_pools}


def test_a_groups_memory_is_the_pools_and_without_it_only_a_sure_name_has_the_catalogs() -> None:
    assert pools(group(memoryMiB=81920)) == {"A100": 81920}
    assert pools(group()) == {"A100": 0}  # 40 or 80 GB: unknown, as on a real member
    assert pools(group(model="H100")) == {"H100": 81559}  # one catalog model's words: known
    assert pools(group(model="DCU", vendor="hygon", memoryMiB=65536)) == {"DCU": 65536}
    assert pools(group(model="NVIDIA-A100-SXM4-40GB", memoryMiB=40000)) == {"NVIDIA-A100-SXM4-40GB": 40000}


@pytest.mark.parametrize(("groups", "error"), [
    ([group(memoryMiB="80Gi")], "clusters[0].nodes[0].memoryMiB: must be a whole number of MiB above 0"),
    ([group(memoryMiB=0)], "clusters[0].nodes[0].memoryMiB: must be a whole number of MiB above 0"),
    ([group(memoryMiB=True)], "clusters[0].nodes[0].memoryMiB: must be a whole number of MiB above 0"),
    ([group(accelerators=0, memoryMiB=81920)], "clusters[0].nodes[0].memoryMiB: only for nodes with accelerators"),
    ([group(memoryMiB=81920), group(memoryMiB=40960)],
     "clusters[0].nodes[1].memoryMiB: the nodes of A100 in this cluster have 81920 in nodes[0], these 40960"),
    ([group(memoryMiB=81920), group()],
     "clusters[0].nodes[1].memoryMiB: the nodes of A100 in this cluster have 81920 in nodes[0], these none"),
], ids=["quantity", "zero", "bool", "cpu-only", "two-memories", "one-said-one-not"])
def test_a_bad_memory_is_refused_naming_the_field(groups: list[dict[str, Any]], error: str) -> None:
    with pytest.raises(FleetError) as err:
        parse_fleet(fleet(*groups))
    assert error in str(err.value)


JOB = """apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: a100mem}
spec:
  kind: training
  replicas: 2
  resources: {cpu: "4", memory: 16Gi}
  accelerators: [{model: A100, minMemoryMiB: 40000, count: 8}]
  template: {spec: {containers: [{name: t, image: busybox}]}}
"""


@pytest.mark.parametrize(("memory", "placed"), [("", 0), (", memoryMiB: 81920", 1)], ids=["unsaid", "said"])
def test_federator_sim_places_a_memory_ask_on_a_short_named_fleet_that_says_its_memory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], memory: str, placed: int) -> None:
    (tmp_path / "fleet.yaml").write_text(
        "clusters:\n  - name: a\n    region: east\n    nodes:\n"
        f"      - {{count: 2, model: A100, accelerators: 8, cpu: 64, memory: 512Gi{memory}}}\n")
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "a100mem.yaml").write_text(JOB)
    rc = main(["sim", "--fleet", str(tmp_path / "fleet.yaml"), "--workload", str(tmp_path / "jobs"),
               "--no-progress", "-o", "json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["jobs_placed"] == placed
