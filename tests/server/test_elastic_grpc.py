"""An elastic gang end to end over real gRPC sockets (outside QA, ML platform E5): a gang of 4 x 8 accelerators with
spec.minReplicas 2, on members with room for 2 and for 3, runs 3 on the one with 3, in one placement, stays Running
at 3 owing nothing, and Get gives its min_replicas back; a minimum above the replicas or on an inference job is
INVALID_ARGUMENT naming spec.min_replicas, with nothing stored."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from test_drains_grpc import until, with_agents
from test_placement_asks_grpc import Member, request, violations
from test_services_edge import channel, served

from federator.api import convert
from federator.api.features import FEATURES, JOBS_MIN_REPLICAS
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.model import JobPhase


def test_a_two_to_four_gang_runs_at_the_three_the_roomier_member_fits() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed, api = s.fed, jobs_pb2_grpc.JobServiceStub(ch)
            members = [Member("east-1", nodes=2), Member("west-1", nodes=3)]

            async def body() -> None:
                sent = request("ft", kind="training", replicas=4, minReplicas=2,
                               resources={"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 8})
                job_id = (await api.Submit(sent, timeout=5)).job.job_id
                await until(lambda: fed.jobs[job_id].phase is JobPhase.RUNNING, "ft running")
                job = fed.jobs[job_id]
                assert [(p.cluster, p.replicas) for p in job.placements] == [("west-1", 3)]
                assert job.replicas_waiting == 0  # it stays at 3: no "rest" of 1 is owed or placed
                got = await api.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5)
                assert (got.spec.replicas, got.spec.min_replicas, got.replicas_waiting) == (4, 2, 0)
                assert [p.replicas for p in got.placements] == [3]
                await asyncio.sleep(0.3)  # a few more cycles: still one placement of 3
                assert [(p.cluster, p.replicas) for p in fed.jobs[job_id].placements] == [("west-1", 3)]

            await with_agents(fed, s.target, members, body)  # type: ignore[arg-type]

    asyncio.run(go())


@pytest.mark.parametrize(("spec", "problem"), [
    ({"replicas": 2, "min_replicas": 3}, "above spec.replicas (2)"),
    ({"replicas": 2, "min_replicas": 1, "kind": types_pb2.JOB_KIND_INFERENCE}, "training jobs only"),
    ({"replicas": 2, "min_replicas": -1}, "must be a whole number from 1 to spec.replicas"),
], ids=["above-replicas", "inference", "negative"])
def test_a_bad_minimum_is_refused_naming_the_field(spec: dict[str, object], problem: str) -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            api = jobs_pb2_grpc.JobServiceStub(ch)
            sent = request("bad", kind="training")
            sent.spec.replicas = int(spec["replicas"])  # type: ignore[call-overload]
            sent.spec.min_replicas = int(spec["min_replicas"])  # type: ignore[call-overload]
            if "kind" in spec:
                sent.spec.kind = spec["kind"]  # type: ignore[assignment]
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.Submit(sent, timeout=5)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            said = violations(err.value)
            assert problem in said.get("spec.min_replicas", ""), said
            assert not s.fed.jobs

    asyncio.run(go())


def test_whoami_says_the_server_understands_min_replicas() -> None:
    assert JOBS_MIN_REPLICAS in FEATURES
    sent = convert.spec_from_pb(request("x", kind="training").spec)
    assert convert.spec_from_pb(convert.spec_to_pb(sent)).min_replicas == 0
