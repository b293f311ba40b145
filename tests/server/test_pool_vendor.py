"""A pool's vendor is checked against the catalog, never trusted (outside QA, vendors V5; api/pool_vendor.py).

A third-party agent that left AcceleratorPool.vendor empty had its Iluvatar pool taken for NVIDIA (a CUDA job was
sent there), and one that wrote "NVIDIA" got a vendor of its own. Over a real socket, as a third-party agent
written from agent.proto alone would meet it.
"""

from __future__ import annotations

import asyncio

import pytest
from test_agent_contract import rejected
from test_agent_input import pool, refused, report
from test_services_edge import agent_stream, channel, hello, served

from federator.api.v1 import agent_pb2


def capacity(sequence: int, *pools: agent_pb2.AcceleratorPool) -> agent_pb2.AgentMessage:
    message = report(sequence=sequence)
    del message.capacity.accelerator_pools[:]
    message.capacity.accelerator_pools.extend(pools)
    return message


ENFLAME = pool(accelerator_model="Enflame-S60", vendor="enflame", resource_name="enflame.com/gcu")
ILUVATAR = pool(accelerator_model="Iluvatar-BI-V150", vendor="", resource_name="iluvatar.ai/gpu")


def test_pools_whose_vendor_is_missing_or_contradicted_are_refused_over_the_agent_stream() -> None:
    async def main() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                got, err = await agent_stream(ch, [
                    hello(),
                    capacity(1, ENFLAME, ILUVATAR),
                    capacity(2, pool(vendor="NVIDIA")),
                    capacity(3, pool(vendor="enflame", resource_name="nvidia.com/gpu")),
                    capacity(4, ENFLAME, pool(accelerator_model="Iluvatar-BI-V150", vendor="iluvatar",
                                              resource_name="iluvatar.ai/gpu"),
                             pool(accelerator_model="AMD-Instinct-MI300X", vendor="", resource_name="amd.com/gpu"),
                             pool(accelerator_model="H100", vendor="", resource_name="")),
                ])
            assert err is None
            errors = [(m.error.reason, m.error.message) for m in got if m.WhichOneof("body") == "error"]
            assert [r for r, _ in errors] == ["malformed"] * 3, errors
            assert "capacity.accelerator_pools[1].vendor: is required" in errors[0][1]
            assert "'iluvatar.ai/gpu'" in errors[0][1]
            assert "capacity.accelerator_pools[0].vendor: must be a catalog vendor name of at most 63 lower-case" \
                in errors[1][1] and "'NVIDIA'" in errors[1][1]
            assert "capacity.accelerator_pools[0].vendor: 'enflame' contradicts resource_name 'nvidia.com/gpu'" \
                in errors[2][1]
            assert rejected(s.fed, "malformed") == 3.0
            cap = s.fed.clusters["east-1"].capacity
            assert cap is not None  # the good report after them was applied, each pool with its own vendor
            assert [(p.accelerator_model, p.vendor) for p in cap.accelerator_pools] == [
                ("Enflame-S60", "enflame"), ("Iluvatar-BI-V150", "iluvatar"), ("AMD-Instinct-MI300X", "amd"),
                ("H100", "nvidia")]

    asyncio.run(main())


@pytest.mark.parametrize(("p", "words"), [
    (ILUVATAR, "accelerator_pools[0].vendor: is required"),
    (pool(accelerator_model="Moore-S4000", vendor="", resource_name=""), "accelerator_pools[0].vendor: is required"),
    (pool(vendor="NVIDIA"), "accelerator_pools[0].vendor: must be a catalog vendor name of at most 63 lower-case"),
    (pool(vendor="huawei"), "accelerator_pools[0].vendor: 'huawei' contradicts resource_name 'nvidia.com/gpu'"),
    (pool(vendor="amd", resource_name="gpu.nvidia.com (DRA)"),
     "accelerator_pools[0].vendor: 'amd' contradicts resource_name 'gpu.nvidia.com (DRA)'"),
], ids=["empty-unknown-resource", "empty-unknown-model", "upper-case", "other-vendors-resource", "other-vendors-dra"])
def test_a_pool_vendor_the_catalog_contradicts_or_cannot_tell_is_malformed(p: agent_pb2.AcceleratorPool,
                                                                           words: str) -> None:
    got, said = refused(report(p))
    assert got == "malformed" and words in said, said
