"""spec.regions.weights and spec.prefer end to end over real gRPC sockets (outside migration QA, M8 and M11):
scripted agents report on loopback, the federator's loop runs as in `federator serve`, a client Submits. A weighted
inference job runs 3:1 over east and west (6 and 2 of 8, none in central); a gang that prefers cheapest runs on
the cheapest member that fits; a bad weight or an unknown preference is INVALID_ARGUMENT naming the field, with
nothing stored."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from scripted_agent import ScriptedStream
from test_drains_grpc import until, with_agents
from test_services_edge import channel, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.jobfile import parse_job
from federator.model import PRICE_LABEL, AgentFeature, JobPhase, Preference

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"


class Member(ScriptedStream):
    """A member of `nodes` 8-accelerator nodes in the region its name begins with, at `price` an accelerator-hour."""

    def __init__(self, name: str, *, nodes: int = 2, price: str = "", resizes: bool = False) -> None:
        region = name.split("-")[0]
        super().__init__(name, agent_pb2.Hello(cluster=name, region=region,
                                               labels={PRICE_LABEL: price} if price else {},
                                               features=[AgentFeature.RESIZE.value] if resizes else []),
                         convert.capacity_to_pb(cluster(name, region, pool(H100, nodes=nodes)).capacity))

    def answer(self, placement_id: str) -> None:
        self.send(ack=agent_pb2.Ack(placement_id=placement_id, ok=True))
        self.send(job_update=agent_pb2.JobUpdate(placement_id=placement_id,
                                                 phase=convert.phase_to_pb(JobPhase.RUNNING)))


def request(name: str, **spec: Any) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}, **spec}})))


def violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(err)
    assert status is not None, err
    detail = error_details_pb2.BadRequest()
    status.details[0].Unpack(detail)
    return {v.field: v.description for v in detail.field_violations}


def test_a_weighted_job_runs_3_to_1_and_get_gives_the_weights_back() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed, api = s.fed, jobs_pb2_grpc.JobServiceStub(ch)
            members = [Member("east-1"), Member("west-1"), Member("central-1")]

            async def body() -> None:
                sent = request("web", kind="inference", replicas=8, regions={"weights": {"east": 3, "west": 1}})
                job_id = (await api.Submit(sent, timeout=5)).job.job_id
                await until(lambda: sum(p.replicas for p in fed.jobs[job_id].placements) == 8, "web placed")
                by_region: dict[str, int] = {}
                for p in fed.jobs[job_id].placements:
                    by_region[p.region] = by_region.get(p.region, 0) + p.replicas
                assert by_region == {"east": 6, "west": 2}
                got = (await api.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5)).spec
                assert dict(got.region_weights) == {"east": 3, "west": 1}

            await with_agents(fed, s.target, members, body)  # type: ignore[arg-type]

    asyncio.run(go())


def by_region(job: types_pb2.Job) -> dict[str, int]:
    """The replicas a job's live placements hold per region, as Get gives them."""
    out: dict[str, int] = {}
    for p in job.placements:
        if p.phase in (types_pb2.JOB_PHASE_PLACED, types_pb2.JOB_PHASE_RUNNING):
            out[p.region] = out.get(p.region, 0) + p.replicas
    return out


@pytest.mark.parametrize("resizes", [True, False], ids=["parts-shrink-in-place", "agents-that-cannot-resize"])
def test_a_weighted_job_scaled_down_keeps_its_ratio(resizes: bool) -> None:
    """6 in east and 2 in west (3:1) scaled to 4 keep 3 and 1, and scaled on to 2 keep 2 and none (the split of 2:
    the fractions tie, the heavier east takes the one left over): each region keeps its share of the new count
    (server/shrink.py, scheduler/weights.py `shares`). Before, the scale-down kept what its usual rule liked best
    (the most regions, the fewest parts touched): 2 and 2 on agents that cannot resize, 1 and 1 on 2 where parts
    shrink. Where parts shrink in place nothing stops but what goes (Resize, and west's part cancelled at 0);
    where they cannot, a region's part over its share is replaced by one of its share, in that region."""
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed, api = s.fed, jobs_pb2_grpc.JobServiceStub(ch)
            east, west = Member("east-1", resizes=resizes), Member("west-1", resizes=resizes)
            members = [east, west, Member("central-1", resizes=resizes)]

            async def settled(job_id: str, replicas: int) -> dict[str, int]:
                def done() -> bool:
                    job = fed.jobs[job_id]
                    return job.phase is JobPhase.RUNNING and job.replicas_waiting == 0 and \
                        sum(p.replicas for p in job.placements if p.phase.is_active) == replicas
                await until(done, f"web serves {replicas} replicas")
                return by_region(await api.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5))

            async def body() -> None:
                sent = request("web", kind="inference", replicas=8, regions={"weights": {"east": 3, "west": 1}})
                job_id = (await api.Submit(sent, timeout=5)).job.job_id
                assert await settled(job_id, 8) == {"east": 6, "west": 2}
                placed = {p.cluster: p.placement_id for p in fed.jobs[job_id].placements}

                await api.Scale(jobs_pb2.ScaleJobRequest(job_id=job_id, replicas=4), timeout=5)
                assert await settled(job_id, 4) == {"east": 3, "west": 1}
                if resizes:  # shrunk in place: the same placements, each told its new count
                    assert {p.cluster: p.placement_id for p in fed.jobs[job_id].placements} == placed
                    await until(lambda: bool(east.resized and west.resized), "both Resizes sent")
                    assert [(r.placement_id, r.replicas) for r in east.resized] == [(placed["east-1"], 3)]
                    assert [(r.placement_id, r.replicas) for r in west.resized] == [(placed["west-1"], 1)]
                    assert not east.cancelled and not west.cancelled

                await api.Scale(jobs_pb2.ScaleJobRequest(job_id=job_id, replicas=2), timeout=5)
                assert await settled(job_id, 2) == {"east": 2}
                if resizes:
                    await until(lambda: len(east.resized) == 2 and bool(west.cancelled), "east shrunk, west stopped")
                    assert (east.resized[-1].placement_id, east.resized[-1].replicas) == (placed["east-1"], 2)
                    assert [c.placement_id for c in west.cancelled] == [placed["west-1"]]

            await with_agents(fed, s.target, members, body)  # type: ignore[arg-type]

    asyncio.run(go())


def test_a_gang_that_prefers_cheapest_runs_on_the_cheapest_member() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed, api = s.fed, jobs_pb2_grpc.JobServiceStub(ch)
            members = [Member("east-1", price="4.10"), Member("west-1", price="2.20"), Member("central-1")]

            async def body() -> None:
                sent = request("pretrain", kind="training", replicas=1, prefer="cheapest",
                               resources={"cpu": "1", "nvidia.com/gpu": 8})
                assert sent.spec.prefer == types_pb2.PREFERENCE_CHEAPEST
                job_id = (await api.Submit(sent, timeout=5)).job.job_id
                await until(lambda: bool(fed.jobs[job_id].placements), "pretrain placed")
                assert [p.cluster for p in fed.jobs[job_id].placements] == ["west-1"]
                assert fed.jobs[job_id].spec.prefer is Preference.CHEAPEST

            await with_agents(fed, s.target, members, body)  # type: ignore[arg-type]

    asyncio.run(go())


@pytest.mark.parametrize(("weights", "kind", "field", "said"), [
    ({"east": 0}, "inference", "spec.region_weights.east", "must be an integer from 1 to 1000"),
    ({"East": 1}, "inference", "spec.region_weights.East", "must be a region name"),
    ({"east": 1}, "training", "spec.region_weights", "applies to inference jobs only"),
], ids=["zero", "not-a-region", "training"])
def test_a_bad_weight_is_refused_naming_its_field(weights: dict[str, int], kind: str, field: str,
                                                  said: str) -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            api = jobs_pb2_grpc.JobServiceStub(ch)
            sent = request("web", kind="inference", replicas=4)
            sent.spec.kind = types_pb2.JOB_KIND_TRAINING if kind == "training" else sent.spec.kind
            sent.spec.replicas = 1 if kind == "training" else 4
            sent.spec.region_weights.update(weights)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.Submit(sent, timeout=5)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, err.value
            assert said in violations(err.value)[field]
            assert not s.fed.jobs

    asyncio.run(go())


def test_weights_with_min_regions_and_an_unknown_preference_are_refused_naming_the_fields() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            api = jobs_pb2_grpc.JobServiceStub(ch)
            sent = request("web", kind="inference", replicas=4, regions={"minRegions": 2})
            sent.spec.region_weights.update({"east": 1, "west": 1})
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.Submit(sent, timeout=5)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "leave out spec.regions.minRegions" in violations(err.value)["spec.region_weights"]
            sent = request("web", kind="inference", replicas=4)
            sent.spec.prefer = 7  # type: ignore[assignment]  # a newer client's preference
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.Submit(sent, timeout=5)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "unknown preference 7" in err.value.details() and "spec.prefer" in err.value.details()
            assert not s.fed.jobs

    asyncio.run(go())
