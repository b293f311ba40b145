"""A placement the newest report cannot host on any node (its member's pods wait for CPU) is still held, as its
devices and its CPU and memory, and nothing more: outside QA's Go agent (F6) saw one waiting 8-GPU gang make a
member's 800 free accelerators read 0 until --start-timeout, and every other job kept off the member."""

from __future__ import annotations

from dataclasses import replace

from server_support import Clock, MemoryStore, join, make, spec

from federator.jobfile import parse_job
from federator.model import ClusterCapacity, JobPhase
from federator.model.cluster import AcceleratorPool

from builders import cluster

H100 = "NVIDIA-H100-80GB-HBM3"
GIB = 1 << 30


def tight(nodes: int, *, cpu_milli: int, memory: int) -> ClusterCapacity:
    """`nodes` nodes of 8 free H100 each, every one with only this much CPU and memory free beside them."""
    hist = (0,) * 8 + (nodes,)
    room = ((0, 0),) * 8 + ((cpu_milli, memory),)
    pool = AcceleratorPool(H100, hist, 8 * nodes, 8 * nodes, host_room=room)
    cap = cluster("m", "r", pool, cpu=nodes * cpu_milli // 1000, memory_gib=nodes * memory // GIB).capacity
    return replace(cap, node_cpu_milli_free_max=cpu_milli, node_memory_bytes_free_max=memory)


def test_a_gang_waiting_for_cpu_holds_its_devices_not_the_whole_pool() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    m = join(fed, "m")
    gang = fed.submit(spec("gang", gpus=8))  # 4 CPUs, 16 GiB, 8 GPUs: fits the roomy first report
    fed.schedule_once()
    assert gang.phase is JobPhase.PLACED
    fed.report(m, tight(100, cpu_milli=2_000, memory=8 * GIB))  # the member's nodes now have 2 CPUs each
    info = fed.cycles.reserved_info(fed.clusters["m"], [(gang.placements[0], gang.spec)])
    assert info is not None
    [pool] = info.capacity.accelerator_pools
    assert pool.free_accelerators == 792 and pool.nodes_by_free[8] == 99
    assert info.capacity.cpu_milli_free == 200_000 - 4_000

    small = fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                  "metadata": {"name": "small"},
                                  "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 1}}}))
    fed.schedule_once()
    assert small.phase is JobPhase.PLACED, small.pending_reason


def test_a_report_short_of_the_devices_themselves_still_holds_the_pool() -> None:
    """The last resort stays: a report without even one node of 8 free cannot place an 8-GPU replica anywhere, so
    nothing of that pool is offered until a report counts the placement."""
    clock = Clock()
    fed = make(MemoryStore(), clock)
    m = join(fed, "m")
    gang = fed.submit(spec("gang", gpus=8))
    fed.schedule_once()
    pool = AcceleratorPool(H100, (0, 0, 0, 0, 40), 320, 320)
    fed.report(m, cluster("m", "r", pool).capacity)
    info = fed.cycles.reserved_info(fed.clusters["m"], [(gang.placements[0], gang.spec)])
    assert info is not None and info.capacity.accelerator_pools[0].free_accelerators == 0
