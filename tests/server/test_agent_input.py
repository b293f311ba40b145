"""What an agent says is bounded as agent.proto states: names, lengths, CPU and memory, one node's room.

Audit findings, all accepted before: an accelerator_model with a line break or
of 5,000 characters, vendor "Acme Corp\\n", a resource_name with a NUL byte,
unit_milli -3 without MIG, a host_room of 10^15 CPUs in a cluster with 1,000
free, int64-max CPU and memory, a Hello whose agent_version is 900 KB.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from server_support import Clock, MemoryStore, join, make
from test_services_edge import agent_stream, channel, served

from federator.api.v1 import agent_pb2
from federator.server.orders import ErrorNotice
from federator.server.services import AgentService

INT64_MAX = 2**63 - 1


def pool(**fields: object) -> agent_pb2.AcceleratorPool:
    base: dict[str, object] = {"accelerator_model": "NVIDIA-H100-80GB-HBM3", "nodes_by_free": [0] * 8 + [1],
                               "total_accelerators": 8, "allocatable_accelerators": 8, "vendor": "nvidia",
                               "resource_name": "nvidia.com/gpu"}
    return agent_pb2.AcceleratorPool(**(base | fields))  # type: ignore[arg-type]


def report(p: agent_pb2.AcceleratorPool | None = None, **fields: object) -> agent_pb2.AgentMessage:
    base: dict[str, object] = {"sequence": 1, "cpu_milli_allocatable": 1000, "cpu_milli_free": 1000,
                               "memory_bytes_allocatable": 1 << 40, "memory_bytes_free": 1 << 40,
                               "node_cpu_milli_free_max": 1000, "node_memory_bytes_free_max": 1 << 40}
    return agent_pb2.AgentMessage(capacity=agent_pb2.CapacityReport(
        accelerator_pools=[p or pool()], **(base | fields)))  # type: ignore[arg-type]


def refused(message: agent_pb2.AgentMessage) -> tuple[str | None, str]:
    fed = make(MemoryStore(), Clock())
    rec = join(fed, "west-1")
    before = rec.capacity
    reason = AgentService(fed).handle(rec, message)
    notices = []
    while not rec.outbox.empty():
        order = rec.outbox.get_nowait()
        if isinstance(order, ErrorNotice):
            notices.append(order.message)
    if reason is not None:
        assert rec.capacity == before  # a refused report is not applied
    return (reason.value if reason else None), " ".join(notices)


@pytest.mark.parametrize(("message", "reason", "field"), [
    (report(pool(accelerator_model="H100\nforged log line")), "malformed", "accelerator_pools[0].accelerator_model"),
    (report(pool(accelerator_model="A" * 5000)), "malformed", "accelerator_pools[0].accelerator_model"),
    (report(pool(vendor="Acme Corp\n")), "malformed", "accelerator_pools[0].vendor"),
    (report(pool(resource_name="nvidia.com/g\x00pu")), "malformed", "accelerator_pools[0].resource_name"),
    (report(pool(resource_name="GPU Class! (DRA)")), "malformed", "accelerator_pools[0].resource_name"),
    (report(pool(unit_milli=-3)), "malformed", "accelerator_pools[0].unit_milli"),
    (report(pool(unit_milli=125)), "malformed", "accelerator_pools[0].unit_milli"),
    (report(pool(memory_mib=INT64_MAX)), "malformed", "accelerator_pools[0].memory_mib"),
    (report(pool(host_room=[agent_pb2.HostRoom()] * 8 + [agent_pb2.HostRoom(cpu_milli=10**15, memory_bytes=1)])),
     "implausible_report", "accelerator_pools[0].host_room[8]"),
    (report(pool(room_classes=[agent_pb2.RoomClass(free_accelerators=8, cpu_milli=1, memory_bytes=1 << 50,
                                                   count=1)])),
     "implausible_report", "accelerator_pools[0].room_classes[0]"),
    (report(pool(quota_held_accelerators=-16)), "malformed", "accelerator_pools[0].quota_held_accelerators"),
    # 8 free on the node, and 1 more said to be held by quota, on 8 allocatable
    (report(pool(quota_held_accelerators=1)), "implausible_report", "accelerator_pools[0].quota_held_accelerators"),
    (report(pool(largest_node_accelerators=-1)), "malformed", "accelerator_pools[0].largest_node_accelerators"),
    (report(pool(largest_node_accelerators=2048)), "malformed", "accelerator_pools[0].largest_node_accelerators"),
    # 8 installed in the pool, 9 said to be on one node; 8 free on one node, 4 said to be the largest
    (report(pool(largest_node_accelerators=9)), "implausible_report", "accelerator_pools[0].largest_node_accelerators"),
    (report(pool(largest_node_accelerators=4)), "implausible_report", "accelerator_pools[0].largest_node_accelerators"),
    (report(cpu_milli_allocatable=INT64_MAX, cpu_milli_free=INT64_MAX), "malformed", "capacity.cpu_milli_allocatable"),
    # the largest node's size: within the bounds, and at least the most free on one node
    (report(largest_node_cpu_milli=-1), "malformed", "capacity.largest_node_cpu_milli"),
    (report(largest_node_memory_bytes=INT64_MAX), "malformed", "capacity.largest_node_memory_bytes"),
    (report(largest_node_cpu_milli=999), "implausible_report", "capacity.largest_node_cpu_milli"),
    (report(largest_node_memory_bytes=1 << 39), "implausible_report", "capacity.largest_node_memory_bytes"),
    (report(memory_bytes_allocatable=INT64_MAX, memory_bytes_free=INT64_MAX), "malformed",
     "capacity.memory_bytes_allocatable"),
    (report(node_room=[agent_pb2.NodeRoom(cpu_milli=500, memory_bytes=1, count=0)]), "malformed",
     "capacity.node_room[0]"),
    (report(node_room=[agent_pb2.NodeRoom(cpu_milli=-1, memory_bytes=1, count=1)]), "malformed",
     "capacity.node_room[0]"),
    (report(node_room=[agent_pb2.NodeRoom(cpu_milli=1 << 51, memory_bytes=1, count=1)]), "malformed",
     "capacity.node_room[0]"),
    # one node with 2,000 milli-CPUs free in a cluster with 1,000; two of 600 each
    (report(node_room=[agent_pb2.NodeRoom(cpu_milli=2000, memory_bytes=1, count=1)]), "implausible_report",
     "capacity.node_room[0]"),
    (report(node_room=[agent_pb2.NodeRoom(cpu_milli=600, memory_bytes=1, count=2)]), "implausible_report",
     "capacity.node_room:"),
    (report(placement_ids=["p" * 4000]), "malformed", "capacity.placement_ids[0]"),
    (report(placement_ids=["ok.g1.west-1", "a b"]), "malformed", "capacity.placement_ids[1]"),
    (agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(placement_id="x\n" * 300, phase=3)), "malformed",
     "job_update.placement_id"),
    (agent_pb2.AgentMessage(ack=agent_pb2.Ack(placement_id="p" * 4000, ok=True)), "malformed", "ack.placement_id"),
], ids=["model-newline", "model-5000", "vendor", "resource-nul", "dra-class", "unit-negative", "unit-without-mig",
        "device-memory", "host-room", "room-class", "quota-held-negative", "quota-held-over-allocatable",
        "largest-node-negative", "largest-node-over-1024", "largest-node-over-total", "largest-node-under-free",
        "cpu-int64", "largest-node-cpu-negative", "largest-node-memory-bound", "largest-node-cpu-under-free",
        "largest-node-memory-under-free", "memory-int64", "node-room-count", "node-room-negative", "node-room-bound",
        "node-room-node", "node-room-sum", "placement-id-long", "placement-id-space", "update-id", "ack-id"])
def test_out_of_bounds_agent_input_is_refused_naming_the_field(message: agent_pb2.AgentMessage, reason: str,
                                                                field: str) -> None:
    got, said = refused(message)
    assert got == reason and field in said, said


@pytest.mark.parametrize("p", [
    pool(accelerator_model="Ascend910B3", vendor="huawei", resource_name="huawei.com/Ascend910", family="Ascend910B"),
    pool(accelerator_model="AMD-Instinct-MI300X", vendor="amd", resource_name="amd.com/gpu"),
    pool(accelerator_model="MI300X", vendor="amd", resource_name="amd.com/gpu"),
    pool(accelerator_model="GPU-series-1", vendor="acme", resource_name="acme.com/gpu"),
    pool(accelerator_model="H100-80GB-HBM3", vendor="", resource_name=""),
    pool(accelerator_model="NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", sharing="MIG", unit_milli=125,
         resource_name="nvidia.com/mig-1g.10gb"),
    pool(accelerator_model="NVIDIA-L4-SHARED", sharing="HAMi", resource_name="hami.io/vgpu"),
    # what the reference agent reports for a DRA pool (backends/kube/pools.py); refused when first bounded
    pool(accelerator_model="NVIDIA-H200", vendor="nvidia", resource_name="gpu.nvidia.com (DRA)"),
    pool(accelerator_model="NVIDIA-H100-80GB-HBM3", memory_mib=81559,
         host_room=[agent_pb2.HostRoom()] * 8 + [agent_pb2.HostRoom(cpu_milli=1000, memory_bytes=1 << 40)]),
    # Kueue mode: 24 free on three nodes behind a ClusterQueue of 8 (backends/kube/kueue_quota.py)
    pool(total_accelerators=24, allocatable_accelerators=24, quota_held_accelerators=16),
], ids=["ascend", "mi300x-catalog", "mi300x", "series", "h100", "mig", "hami", "dra", "host-room", "quota-held"])
def test_real_world_pools_are_accepted(p: agent_pb2.AcceleratorPool) -> None:
    assert refused(report(p, placement_ids=["train-1a2b3c.g12.west-1"])) == (None, "")


def test_what_quota_holds_reaches_the_federators_pool() -> None:
    fed = make(MemoryStore(), Clock())
    rec = join(fed, "west-1")
    message = report(pool(total_accelerators=24, allocatable_accelerators=24, quota_held_accelerators=16))
    assert AgentService(fed).handle(rec, message) is None
    assert rec.capacity is not None
    (got,) = rec.capacity.accelerator_pools
    assert (got.free_accelerators, got.quota_held_accelerators) == (8, 16)


@pytest.mark.parametrize(("hello", "field"), [
    (agent_pb2.Hello(cluster="east-1", region="east", agent_version="v" * 900_000), "hello.agent_version"),
    (agent_pb2.Hello(cluster="east-1", region="east", agent_version="1.0\nforged"), "hello.agent_version"),
    (agent_pb2.Hello(cluster="east-1", region="east", labels={"team": "a\nb"}), "hello.labels[team]"),
], ids=["version-900k", "version-newline", "label-newline"])
def test_a_hello_out_of_bounds_ends_the_stream_naming_the_field(hello: agent_pb2.Hello, field: str) -> None:
    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                _, err = await agent_stream(ch, [agent_pb2.AgentMessage(hello=hello)])
            assert err is not None and err.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert field in (err.details() or "") and "east-1" not in s.fed.clusters

    asyncio.run(go())
