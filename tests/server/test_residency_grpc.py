"""Data residency end to end over real gRPC: scripted agents in two regions on loopback, the federator's loop
running as in `federator serve`. A job allowed only in east (spec.regions.allowed, or its queue's
allowedRegions) is never launched in west: not at submit though west is emptier, not when its east cluster
refuses it (the re-queue), not on a scale-up with east full, not by a drain (a gang's re-queue, a serving
job's surge); it waits instead, its message naming the field. A job asking a region outside its queue's
fence is refused at Submit, naming spec.regions.allowed (outside compliance QA, C1)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from test_drains_grpc import Agent, turns, until, with_agents
from test_services_edge import channel, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.jobfile import parse_job
from federator.model import JobPhase
from federator.scheduler import QueueConfig, SchedulerConfig


def submit(kind: str, name: str, replicas: int, *, allowed: tuple[str, ...] = (), queue: str = "default",
           preferred: tuple[str, ...] = ()) -> jobs_pb2.SubmitRequest:
    regions = {**({"allowed": list(allowed)} if allowed else {}), **({"preferred": list(preferred)} if preferred
                                                                      else {})}
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": kind, "replicas": replicas, "queue": queue, "regions": regions,
                 "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})))


class Refuser(Agent):
    """A member that refuses every placement it is handed (its agent would not launch it)."""

    def answer(self, placement_id: str) -> None:
        self.send(ack=agent_pb2.Ack(placement_id=placement_id, ok=False, message="quota exhausted here"))


def test_a_gang_allowed_east_runs_there_and_a_drain_never_moves_it_west() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed, east, west = s.fed, Agent("east-1", nodes=1), Agent("west-1", nodes=4)
            api, admin = jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.ClusterServiceStub(ch)

            async def body() -> None:
                job_id = (await api.Submit(submit("training", "records", 1, allowed=("east",)), timeout=5)).job.job_id
                got = await api.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5)
                assert list(got.spec.allowed_regions) == ["east"]  # on the wire, as stored
                await until(lambda: fed.jobs[job_id].phase is JobPhase.RUNNING, "the gang runs")
                assert [p.cluster for p in fed.jobs[job_id].placements] == ["east-1"]
                await admin.Drain(jobs_pb2.DrainClusterRequest(cluster="east-1", reason="swap"), timeout=5)
                await until(lambda: bool(east.cancelled), "the drain ends the east-1 gang")
                await turns(fed, 5)
                job = fed.jobs[job_id]
                assert job.phase is JobPhase.PENDING and west.launched == []
                assert job.pending_reason is not None
                assert "west-1: region west is not among the regions this job may run in (east): " \
                       "spec.regions.allowed" in job.pending_reason.message

            await with_agents(fed, s.target, [east, west], body)

    asyncio.run(go())


def test_a_serving_job_scaled_up_or_drained_never_gets_a_replica_in_west() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed, east, west = s.fed, Agent("east-1", nodes=2), Agent("west-1", nodes=4)
            api, admin = jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.ClusterServiceStub(ch)

            async def body() -> None:
                job_id = (await api.Submit(submit("inference", "triage", 1, allowed=("east",), preferred=("west",)),
                                           timeout=5)).job.job_id
                await until(lambda: fed.jobs[job_id].phase is JobPhase.RUNNING, "the job serves")
                await api.Scale(jobs_pb2.ScaleJobRequest(job_id=job_id, replicas=5), timeout=5)
                await until(lambda: sum(p.replicas for p in fed.jobs[job_id].placements) == 2, "east-1 fills")
                await turns(fed, 5)  # the rest waits; the rebalancer's turns see west, preferred, with room
                assert {p.cluster for p in fed.jobs[job_id].placements} == {"east-1"} and west.launched == []
                await admin.Drain(jobs_pb2.DrainClusterRequest(cluster="east-1", reason="swap"), timeout=5)
                await turns(fed, 5)  # the surge finds no room inside east: none is started
                assert west.launched == []
                assert {p.cluster for p in fed.jobs[job_id].placements} <= {"east-1"}

            await with_agents(fed, s.target, [east, west], body)

    asyncio.run(go())


def test_a_placement_refused_in_east_is_placed_again_in_east_only() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed, refuser, west = s.fed, Refuser("east-1", nodes=4), Agent("west-1", nodes=4)
            api = jobs_pb2_grpc.JobServiceStub(ch)

            async def body() -> None:
                job_id = (await api.Submit(submit("training", "records", 1, allowed=("east",)), timeout=5)).job.job_id
                await until(lambda: len(refuser.launched) >= 1, "the job is placed in east, and refused there")
                await turns(fed, 5)  # the re-queue: west has room, east-1 refused it a moment ago
                assert west.launched == [] and fed.jobs[job_id].phase is not JobPhase.RUNNING
                assert all(p.cluster == "east-1" for p in fed.jobs[job_id].placements)

            await with_agents(fed, s.target, [refuser, west], body)

    asyncio.run(go())


def test_a_queue_fence_holds_its_jobs_and_refuses_a_job_asking_outside_it() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            fed, east, west = s.fed, Agent("east-1", nodes=1), Agent("west-1", nodes=4)
            fed.set_scheduler_config(SchedulerConfig(queues={"hosp-a": QueueConfig(allowed_regions=("east",)),
                                                             "hosp-b": QueueConfig()}))
            api = jobs_pb2_grpc.JobServiceStub(ch)

            async def body() -> None:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await api.Submit(submit("training", "wide", 1, allowed=("east", "west"), queue="hosp-a"),
                                     timeout=5)
                assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                said = refused.value.details() or ""
                assert said.startswith("spec.regions.allowed") and \
                    "west is outside the regions queue 'hosp-a' may run in (east, its allowedRegions)" in said
                a = [(await api.Submit(submit("training", f"a{i}", 1, queue="hosp-a"), timeout=5)).job.job_id
                     for i in range(2)]
                b = (await api.Submit(submit("training", "b", 1, queue="hosp-b"), timeout=5)).job.job_id
                await until(lambda: fed.jobs[b].phase is JobPhase.RUNNING
                            and any(fed.jobs[j].phase is JobPhase.RUNNING for j in a), "one of each runs")
                await turns(fed, 3)
                assert {p.cluster for j in a for p in fed.jobs[j].placements} == {"east-1"}  # one runs, one waits
                waiting = [fed.jobs[j] for j in a if fed.jobs[j].phase is JobPhase.PENDING]
                assert len(waiting) == 1 and waiting[0].pending_reason is not None
                assert "region west is not among the regions its queue may run in (east): the queue's " \
                       "allowedRegions" in waiting[0].pending_reason.message
                assert all(pid.endswith("west-1") for pid in west.launched)  # hosp-b's only

            await with_agents(fed, s.target, [east, west], body)

    asyncio.run(go())
