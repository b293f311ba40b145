from __future__ import annotations

from pathlib import Path

import pytest

from federator.backends.sim import FleetError, NodeSet, load_fleet
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import parse_duration
from federator.model import Resources


def test_example_fleet_builds_the_resource_model(examples: Path) -> None:
    fleet = load_fleet(examples / "fleet.yaml")
    assert set(fleet) == {"east-1", "central-1", "west-1"}
    cap = NodeSet.of(fleet["east-1"].nodes).capacity()
    h100 = cap.pool("NVIDIA-H100-80GB-HBM3")
    assert h100 is not None and h100.nodes_by_free[2] == 6 and h100.free_accelerators == 12
    assert cap.pool("NVIDIA-A100-SXM4-80GB").free_accelerators == 1  # type: ignore[union-attr]


def test_bind_is_all_or_nothing_and_unbind_restores() -> None:
    fleet = parse_fleet({"clusters": [{"name": "c", "region": "r", "nodes": [
        {"count": 2, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "512Gi"}]}]})
    nodes = NodeSet.of(fleet["c"].nodes)
    before = nodes.capacity()
    assert nodes.bind("p1", replicas=3, resources=Resources(1000, 2**30, 8000), accelerator_model="H100") is not None
    assert nodes.capacity().pool("H100") == before.pool("H100")
    assert nodes.bind("p2", replicas=4, resources=Resources(1000, 2**30, 4000), accelerator_model="H100") is None
    assert nodes.capacity().pool("H100").free_accelerators == 0  # type: ignore[union-attr]
    assert nodes.capacity().placement_ids == frozenset({"p2"})
    nodes.unbind("p2")
    assert nodes.capacity().pool("H100") == before.pool("H100")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"clusters": "x"}, "clusters"),
        ({"clusters": [{"region": "r"}]}, "clusters[0].name"),
        ({"clusters": [{"name": "c", "region": "r", "nodes": [{"gpus": 8}]}]}, "gpuModel"),
        ({"clusters": [{"name": "c", "region": "r", "nodes": [{"gpus": 2, "gpuModel": "X", "busyGpus": 3}]}]},
         "busyGpus"),
    ],
)
def test_bad_fleet_names_the_field(doc: dict, field: str) -> None:
    with pytest.raises(FleetError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_fleet(doc)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("2m", 120), ("500ms", 0.5), ("1.5", 1.5), ("", 9),
                                               ("soon", 9)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, 9) == seconds


def test_a_buckets_host_room_is_one_nodes_never_the_cpu_of_one_and_the_memory_of_another() -> None:
    fleet = parse_fleet({"clusters": [{"name": "c", "region": "r", "nodes": [
        {"count": 1, "gpuModel": "A10", "gpus": 1, "cpu": 48, "memory": "48Gi"},
        {"count": 1, "gpuModel": "A10", "gpus": 1, "cpu": 12, "memory": "512Gi"}]}]})
    nodes = NodeSet.of(fleet["c"].nodes)
    rooms = {(48_000, 48 * 2**30), (12_000, 512 * 2**30)}
    assert nodes.capacity().pool("A10").host_room[1] in rooms  # type: ignore[union-attr]
    # Each now holds 0.6 of its GPU: the room of the shared devices with 400 milli free is one node's too.
    for key in ("a", "b"):
        assert nodes.bind(key, replicas=1, resources=Resources(1000, 2**30, 600), accelerator_model="A10") is None
    (free, cpu, mem), = nodes.capacity().pool("A10").shared_room  # type: ignore[union-attr]
    assert free == 400 and (cpu + 1000, mem + 2**30) in rooms


def test_a_simulated_cluster_reports_every_nodes_room_by_class() -> None:
    """The simulated agent's room classes: every node with whole devices free, and every shared device,
    with its node's room; they count exactly the histogram and the shared devices (the wire's rule)."""
    gib = 2**30
    fleet = parse_fleet({"clusters": [{"name": "c", "region": "r", "nodes": [
        {"count": 2, "gpuModel": "A10", "gpus": 2, "cpu": 48, "memory": "48Gi"},
        {"count": 1, "gpuModel": "A10", "gpus": 2, "cpu": 12, "memory": "512Gi"}]}]})
    nodes = NodeSet.of(fleet["c"].nodes)
    assert nodes.bind("a", replicas=1, resources=Resources(4000, gib, 600), accelerator_model="A10") is None
    pool = nodes.capacity().pool("A10")
    assert pool is not None and pool.nodes_by_free[:3] == (0, 1, 2) and pool.shared_devices == ((400, 1),)
    took = 12_000 if (1, 12_000 - 4000, 511 * gib, 1) in pool.room_classes else 48_000  # FGD's binder chose
    left = (took - 4000, (512 if took == 12_000 else 48) * gib - gib)
    assert sorted(pool.room_classes) == sorted([
        (-400, *left, 1), (1, *left, 1),
        *((2, 48_000, 48 * gib, 2 if took == 12_000 else 1),),
        *(((2, 12_000, 512 * gib, 1),) if took == 48_000 else ()),
    ])


def test_a_simulated_pool_says_its_largest_node() -> None:
    fleet = parse_fleet({"clusters": [{"name": "c", "region": "r", "nodes": [
        {"count": 2, "gpuModel": "H100", "gpus": 4, "cpu": 64, "memory": "512Gi"},
        {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "512Gi"},
        {"count": 1, "gpuModel": "A100", "gpus": 2, "cpu": 64, "memory": "512Gi"}]}]})
    cap = NodeSet.of(fleet["c"].nodes).capacity()
    assert {p.accelerator_model: p.largest_node_accelerators for p in cap.accelerator_pools} == {
        "H100": 8, "A100": 2}


def test_a_simulated_cluster_says_its_largest_nodes_cpu_and_memory_whatever_is_free() -> None:
    fleet = parse_fleet({"clusters": [{"name": "c", "region": "r", "nodes": [
        {"count": 2, "gpuModel": "H100", "gpus": 8, "cpu": 96, "memory": "512Gi"},
        {"count": 1, "cpu": 64, "memory": "1Ti"}]}]})
    nodes = NodeSet.of(fleet["c"].nodes)
    cap = nodes.capacity()
    assert (cap.largest_node_cpu_milli, cap.largest_node_memory_bytes) == (96_000, 2**40)


def test_a_simulated_cluster_reports_every_nodes_free_cpu_and_memory_as_node_room() -> None:
    """Node room: CPU nodes and accelerator nodes alike, each as its binds left it, and together the cluster's
    free CPU and memory (the wire's rule)."""
    gib = 2**30
    fleet = parse_fleet({"clusters": [{"name": "c", "region": "r", "nodes": [
        {"count": 2, "cpu": 64, "memory": "256Gi"},
        {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 96, "memory": "1Ti"}]}]})
    nodes = NodeSet.of(fleet["c"].nodes, fit="best")
    assert nodes.capacity().node_room == ((64_000, 256 * gib, 2), (96_000, 1024 * gib, 1))
    assert nodes.bind("cpu", replicas=2, resources=Resources(4000, 32 * gib, 0), accelerator_model="") is None
    assert nodes.bind("gpu", replicas=1, resources=Resources(8000, 64 * gib, 1000), accelerator_model="H100") is None
    cap = nodes.capacity()
    assert cap.node_room == ((56_000, 192 * gib, 1), (64_000, 256 * gib, 1), (88_000, 960 * gib, 1))
    assert sum(c * n for c, _, n in cap.node_room) == cap.cpu_milli_free
    assert sum(m * n for _, m, n in cap.node_room) == cap.memory_bytes_free


def test_one_models_accelerators_are_summed_from_its_nodes_alone() -> None:
    fleet = parse_fleet({"clusters": [{"name": "c", "region": "r", "nodes": [
        {"count": 2, "gpuModel": "H100", "gpus": 8, "busyGpus": 3, "cpu": 64, "memory": "512Gi"},
        {"count": 1, "gpuModel": "A10", "gpus": 4, "cpu": 32, "memory": "128Gi"},
        {"count": 1, "cpu": 16, "memory": "64Gi"}]}]})
    nodes = NodeSet.of(fleet["c"].nodes)
    assert nodes.bind("p", replicas=1, resources=Resources(1000, 2**30, 2000), accelerator_model="A10") is None
    assert nodes.accelerator_milli_total(model="H100") == 16_000
    assert nodes.accelerator_milli_used(model="H100") == 6_000
    assert nodes.accelerator_milli_total(model="A10") == 4_000
    assert nodes.accelerator_milli_used(model="A10") == 2_000
    assert nodes.accelerator_milli_total(model="B200") == nodes.accelerator_milli_used(model="B200") == 0
    assert nodes.accelerator_milli_total() == sum(nodes.accelerator_milli_total(model=m) for m in nodes.models())
    assert nodes.accelerator_milli_used() == 8_000
