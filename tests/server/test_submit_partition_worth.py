"""A fraction larger than the named vNPU template is worth, sent by a gRPC client as spec.accelerators (vendor QA
vendqa61 V11 on the gRPC path): the job-file check of the one-count form (`huawei.com/Ascend910: 500m` with
`[vNPU-5c.1cpu.16g]`) never ran for an alternative a client built itself, which was accepted and waited
`SharingUnavailable` for ever. Now Submit refuses it naming the proto field. Over real gRPC: a member reports the
template's pool (so the model is known to the fleet), then the server's Submit.
"""

from __future__ import annotations

import asyncio

import grpc
from test_agent_input import pool
from test_pool_vendor import capacity
from test_services_edge import agent_stream, channel, hello, served

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2

# A 910B3 (20 AI cores) cut into 10-core vNPUs, as the reference agent reports them (agent.proto `sharing`)
VNPU = pool(accelerator_model="Ascend910B3-vNPU-10c.3cpu.32g", vendor="huawei", family="Ascend910B",
            resource_name="huawei.com/Ascend910-10c.3cpu.32g", sharing="MIG", unit_milli=500,
            total_accelerators=2, allocatable_accelerators=2, nodes_by_free=[0, 0, 1])


def request(name: str, milli: int) -> jobs_pb2.SubmitRequest:
    alternative = types_pb2.AcceleratorAlternative(model="vNPU-10c.3cpu.32g", vendor="huawei", milli=milli)
    return jobs_pb2.SubmitRequest(spec=types_pb2.JobSpec(
        name=name, kind=types_pb2.JOB_KIND_INFERENCE, replicas=1,
        resources=types_pb2.Resources(cpu_milli=100, memory_bytes=1 << 20), accelerators=[alternative]))


def test_a_client_built_fraction_larger_than_its_vnpu_template_is_refused_at_submit() -> None:
    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                got, err = await agent_stream(ch, [hello("ascend-1"), capacity(1, VNPU)])
                assert err is None and not [m for m in got if m.WhichOneof("body") == "error"], got
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                # a 10-core template is worth at most 500m of any Huawei chip with 10 cores or more (910: 20 to 32)
                try:
                    await stub.Submit(request("too-big", 750))
                    raise AssertionError("accepted")
                except grpc.aio.AioRpcError as refused:
                    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT, refused
                    detail = refused.details() or ""
                assert detail.startswith("spec.accelerators[0].model: one vNPU-10c.3cpu.32g partition (10 AI cores; "
                                         "a huawei chip has 20 to 32) is worth at most 500m of a chip, less than "
                                         "the 750m a replica asks"), detail
                assert "ask at most 500m, or name a larger template" in detail
                # at most its worth, and whole partitions, are taken
                for name, milli in (("fits", 500), ("whole", 2000)):
                    await stub.Submit(request(name, milli))
            assert sorted(j.spec.name for j in s.fed.jobs.values()) == ["fits", "whole"]

    asyncio.run(go())
