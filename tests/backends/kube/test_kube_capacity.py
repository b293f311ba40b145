"""Capacity from Nodes and Pods: what a real member cluster's objects say, as the sim's resource model."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from federator.backends.kube.capacity import cluster_capacity, node_usable, pod_requests, resources_of
from federator.model import AcceleratorPool, Resources

H100, A100 = "NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"
GiB = 2**30


def node(name: str, model: str = H100, gpus: int = 8, *, cpu: str = "64", memory: str = "512Gi", ready: bool = True,
         unschedulable: bool = False, taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    amounts = {"cpu": cpu, "memory": memory, "pods": "110"}
    labels = {"kubernetes.io/hostname": name}
    if gpus:
        amounts["nvidia.com/gpu"] = str(gpus)
        labels["nvidia.com/gpu.product"] = model
    spec: dict[str, Any] = {"unschedulable": True} if unschedulable else {}
    if taints:
        spec["taints"] = taints
    return {"metadata": {"name": name, "labels": labels}, "spec": spec,
            "status": {"capacity": dict(amounts), "allocatable": dict(amounts),
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pod(on: str | None, *, gpus: int = 0, cpu: str = "1", memory: str = "1Gi", phase: str = "Running",
        limits_only: bool = False, init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    amounts: dict[str, str] = {"cpu": cpu, "memory": memory}
    if gpus:
        amounts["nvidia.com/gpu"] = str(gpus)
    resources = {"limits": amounts} if limits_only else {"requests": amounts, "limits": amounts}
    spec: dict[str, Any] = {"containers": [{"name": "c", "resources": resources}]}
    if on:
        spec["nodeName"] = on
    if init:
        spec["initContainers"] = init
    return {"metadata": {"name": f"p-{on}", "namespace": "default"}, "spec": spec, "status": {"phase": phase}}


def _gpus_only(pools: tuple[AcceleratorPool, ...]) -> tuple[AcceleratorPool, ...]:
    """Pools without their node-fit fields and catalog facts (checked on their own)."""
    return tuple(dataclasses.replace(p, host_room=(), shared_room=(), room_classes=(), memory_mib=0, resource_name="")
                 for p in pools)


@pytest.mark.parametrize(("pods", "hist"), [
    pytest.param([], (0, 0, 0, 0, 0, 0, 0, 0, 2), id="idle"),
    pytest.param([pod("n0", gpus=8)], (1, 0, 0, 0, 0, 0, 0, 0, 1), id="one-node-full"),
    pytest.param([pod("n0", gpus=2), pod("n0", gpus=3)], (0, 0, 0, 1, 0, 0, 0, 0, 1), id="two-pods-share-a-node"),
    pytest.param([pod("n0", gpus=8, phase="Succeeded")], (0, 0, 0, 0, 0, 0, 0, 0, 2), id="succeeded-pod-frees"),
    pytest.param([pod("n0", gpus=8, phase="Failed")], (0, 0, 0, 0, 0, 0, 0, 0, 2), id="failed-pod-frees"),
    pytest.param([pod(None, gpus=8, phase="Pending")], (0, 0, 0, 0, 0, 0, 0, 0, 2), id="unbound-pod-holds-nothing"),
    pytest.param([pod("n0", gpus=4, phase="Pending")], (0, 0, 0, 0, 1, 0, 0, 0, 1), id="bound-pending-pod-holds"),
    pytest.param([pod("n1", gpus=4, limits_only=True)], (0, 0, 0, 0, 1, 0, 0, 0, 1), id="limits-only-count"),
])
def test_gpu_histogram_counts_non_terminated_pods(pods: list[dict[str, Any]], hist: tuple[int, ...]) -> None:
    cap = cluster_capacity([node("n0"), node("n1")], pods)
    assert _gpus_only(cap.accelerator_pools) == (AcceleratorPool(H100, hist, 16, 16, sharing="None",
                                                                      largest_node_accelerators=8),)


@pytest.mark.parametrize(("bad", "why"), [
    pytest.param(node("n1", ready=False), "not Ready", id="not-ready"),
    pytest.param(node("n1", unschedulable=True), "cordoned", id="cordoned"),
    pytest.param(node("n1", taints=[{"key": "maintenance", "effect": "NoSchedule"}]), "tainted", id="tainted"),
    pytest.param(node("n1", taints=[{"key": "maintenance", "effect": "NoExecute"}]), "tainted", id="no-execute"),
])
def test_unusable_nodes_count_in_total_but_offer_nothing(bad: dict[str, Any], why: str) -> None:
    assert why in node_usable(bad)
    cap = cluster_capacity([node("n0"), bad], [])
    assert _gpus_only(cap.accelerator_pools) == (
        AcceleratorPool(H100, (0, 0, 0, 0, 0, 0, 0, 0, 1), 16, 8, sharing="None", largest_node_accelerators=8),
    )
    assert cap.cpu_milli_allocatable == 64_000


@pytest.mark.parametrize("taint", [
    pytest.param({"key": "nvidia.com/gpu", "effect": "NoSchedule"}, id="gpu-taint-tolerated"),
    pytest.param({"key": "spot", "effect": "PreferNoSchedule"}, id="prefer-no-schedule-is-soft"),
])
def test_tolerated_and_soft_taints_keep_a_node(taint: dict[str, str]) -> None:
    assert node_usable(node("n0", taints=[taint])) == ""


def test_models_cpu_and_memory() -> None:
    nodes = [node("h0"), node("a0", A100, 4, cpu="32", memory="256Gi"), node("cpu0", gpus=0, cpu="16", memory="64Gi")]
    pods = [pod("a0", gpus=1, cpu="8", memory="64Gi"), pod("cpu0", cpu="4", memory="16Gi")]
    cap = cluster_capacity(nodes, pods, placement_ids=frozenset({"p1"}), sequence=7)
    assert [p.accelerator_model for p in cap.accelerator_pools] == [A100, H100]
    assert _gpus_only(cap.accelerator_pools)[0] == AcceleratorPool(
        A100, (0, 0, 0, 1, 0, 0, 0, 0, 0), 4, 4, sharing="None", largest_node_accelerators=4
    )
    a100 = cap.pool(A100)
    assert a100 is not None and a100.host_room[3] == (24_000, 192 * GiB)  # node fit: what a0 has left
    assert cap.cpu_milli_allocatable == 112_000
    assert cap.cpu_milli_free == 100_000
    assert cap.memory_bytes_free == (512 + 192 + 48) * GiB
    assert cap.node_cpu_milli_free_max == 64_000
    assert (cap.sequence, cap.placement_ids) == (7, frozenset({"p1"}))
    # node room: every usable node's free CPU and memory, accelerator nodes too (CPU-only pods go there as well)
    assert cap.node_room == ((12_000, 48 * GiB, 1), (24_000, 192 * GiB, 1), (64_000, 512 * GiB, 1))
    assert cluster_capacity([*nodes, node("down", ready=False)], pods).node_room == cap.node_room  # usable only


def test_a_node_with_gpus_but_no_product_label_offers_no_pool() -> None:
    """No pool `unknown`: its pods could not be pinned to it (test_kube_unlabelled_nodes.py, F3)."""
    n = node("n0")
    del n["metadata"]["labels"]["nvidia.com/gpu.product"]
    assert cluster_capacity([n], []).accelerator_pools == ()


def test_pod_requests_take_the_larger_of_init_and_containers_and_add_sidecars_and_overhead() -> None:
    # The proxy sidecar starts first, so it runs during setup (500m + 4) and beside the container (500m + 2).
    p = pod("n0", cpu="2", memory="1Gi", init=[
        {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
        {"name": "setup", "resources": {"requests": {"cpu": "4", "memory": "512Mi"}}},
    ])
    p["spec"]["overhead"] = {"cpu": "100m"}
    assert pod_requests(p) == Resources(cpu_milli=4_600, memory_bytes=GiB)


def test_a_buckets_host_room_is_one_nodes_never_the_cpu_of_one_and_the_memory_of_another() -> None:
    """Two nodes with 8 free A100s each: one rich in CPU, one in memory. A replica needs both on one node, so
    the bucket says what one node has, not (most CPU, most memory) of two."""
    nodes = [node("cpu-rich", A100, 8, cpu="64", memory="64Gi"), node("mem-rich", A100, 8, cpu="16", memory="1Ti")]
    pool = cluster_capacity(nodes, []).pool(A100)
    assert pool is not None and pool.nodes_by_free[8] == 2
    assert pool.host_room[8] in {(64_000, 64 * GiB), (16_000, 1024 * GiB)}


def test_room_classes_count_every_nodes_room_so_either_rich_node_hosts_the_replica_that_needs_it() -> None:
    """The same two nodes: one node's room per bucket can speak for only one of them, so a CPU-heavy or a
    memory-heavy replica is refused at the federator; the classes count both, and each shape fits."""
    nodes = [node("cpu-rich", A100, 8, cpu="64", memory="64Gi"), node("mem-rich", A100, 8, cpu="16", memory="1Ti"),
             node("full", A100, 8, cpu="8", memory="8Gi")]
    pool = cluster_capacity(nodes, [pod("full", gpus=8)]).pool(A100)
    assert pool is not None
    assert pool.room_classes == ((8, 16_000, 1024 * GiB, 1), (8, 64_000, 64 * GiB, 1))  # the full node left out
    cpu_heavy, memory_heavy = (48_000, 32 * GiB), (8_000, 512 * GiB)
    for cpu, mem in (cpu_heavy, memory_heavy):
        assert pool.replica_capacity(8_000, cpu, mem) == 1
    # one node's room speaks for both nodes: one shape is said to fit twice, the other not at all
    assert {dataclasses.replace(pool, room_classes=()).replica_capacity(8_000, *shape)
            for shape in (cpu_heavy, memory_heavy)} == {0, 2}


@pytest.mark.parametrize(("raw", "cpu_milli", "memory_bytes"), [
    ("100u", 1, 1), ("12345n", 1, 1), ("1500m", 1500, 2), ("1e3", 1_000_000, 1000), ("2E", 0, 2 * 10**18),
])
def test_quantities_in_any_kubernetes_form_are_counted_rounding_up_what_is_finer_than_the_unit(
        raw: str, cpu_milli: int, memory_bytes: int) -> None:
    """A pod asking for 0.0001 CPU reads "100u" from the API server: one milli-core, as kube-scheduler rounds
    it, not the 100 the suffix-stripping reading gave. More than an int64 of milli-cores counts as nothing."""
    assert resources_of({"cpu": raw}).cpu_milli == cpu_milli
    assert resources_of({"memory": raw}).memory_bytes == memory_bytes


def test_the_largest_nodes_cpu_and_memory_count_an_unusable_node_and_ignore_what_is_used() -> None:
    """What one replica could ever get on one node (agent.proto CapacityReport.largest_node_cpu_milli): a node
    NotReady now may come back, and a busy node is as large as when empty (outside HPC QA, H2)."""
    big = node("big", cpu="96", memory="1Ti", ready=False)
    cap = cluster_capacity([node("n0"), big], [pod("n0", cpu="60", memory="100Gi")])
    assert (cap.largest_node_cpu_milli, cap.largest_node_memory_bytes) == (96_000, 2**40)
    assert cap.node_cpu_milli_free_max == 4_000  # the usable node's free room: a different thing
