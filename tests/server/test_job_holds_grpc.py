"""Holding and releasing jobs over the real gRPC API, beside a real agent stream (server/job_holds.py).

What a Slurm user counts on: a held job is never placed, however much room is free, and keeps its place; once
released it is placed; a hold survives a federator restart; a running job's hold is refused, naming its phase, and
costs it nothing; a cycle that was already deciding when the hold came does not place the job.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from agent_stream import agent_stream
from server_support import capacity, job_api, spec
from test_cycle_off_loop import A_WHILE, HeldScheduler

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, types_pb2
from federator.model import JobPhase, ReasonCode
from federator.server.federator import Federator
from federator.store import SqliteJobStore


def submit(name: str, *, hold: bool = False) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec(name, gpus=8)), hold=hold)


def report(*placement_ids: str) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity(*placement_ids)))  # 4 nodes x 8 H100


async def launched(agent: object) -> str:
    """The job id of the next Launch on the agent's stream."""
    order = await agent.order()  # type: ignore[attr-defined]
    assert order.WhichOneof("body") == "launch", order
    return str(order.launch.placement.job_id)


def test_a_held_job_is_never_placed_while_room_is_free_and_is_placed_once_released(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())  # 32 free H100: room for four such jobs
            held = (await jobs.Submit(submit("first", hold=True))).job
            assert held.phase == types_pb2.JOB_PHASE_PENDING and held.HasField("hold")
            assert held.hold.by == "anonymous" and not held.hold.admin  # a hold at submission is the owner's
            assert held.pending_reason.code == "Held" and "held by anonymous at " in held.pending_reason.message
            later = (await jobs.Submit(submit("second"))).job
            # The cycle that placed the later job had the held one, submitted first, in front of it.
            assert await launched(agent) == later.job_id
            now = await jobs.Get(jobs_pb2.GetJobRequest(job_id=held.job_id))
            assert now.phase == types_pb2.JOB_PHASE_PENDING and now.pending_reason.code == "Held"
            assert now.submitted_at == held.submitted_at  # its place in its queue is what it was
            released = await jobs.Release(jobs_pb2.ReleaseJobRequest(job_id="first"))
            assert not released.HasField("hold") and released.pending_reason.code == "Waiting"
            assert released.pending_reason.message.startswith("released by anonymous at ")
            assert await launched(agent) == held.job_id
            again = await jobs.Release(jobs_pb2.ReleaseJobRequest(job_id=held.job_id))  # not held: unchanged
            assert again.phase in (types_pb2.JOB_PHASE_PLACED, types_pb2.JOB_PHASE_RUNNING)
        fed.store.close()

    asyncio.run(scenario())


def test_a_hold_survives_a_restart_and_the_release_after_it_places_the_job(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"

    async def before() -> str:
        fed = Federator(store=SqliteJobStore(db), cycle_interval=0.05)
        async with job_api(fed) as jobs:
            job = (await jobs.Submit(submit("waits"))).job
            held = await jobs.Hold(jobs_pb2.HoldJobRequest(job_id="waits"))
            assert held.hold.by == "anonymous" and held.pending_reason.code == "Held"
            same = await jobs.Hold(jobs_pb2.HoldJobRequest(job_id=job.job_id))  # held again: no change
            assert same.hold == held.hold
        fed.cycles.close()
        fed.store.close()
        return job.job_id

    async def after(job_id: str) -> None:
        fed = Federator(store=SqliteJobStore(db), cycle_interval=0.05)
        assert fed.jobs[job_id].hold is not None  # read back from the store
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            other = (await jobs.Submit(submit("other"))).job
            assert await launched(agent) == other.job_id  # placed past the held one, with room for both
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=job_id))
            assert got.phase == types_pb2.JOB_PHASE_PENDING and got.pending_reason.code == "Held"
            await jobs.Release(jobs_pb2.ReleaseJobRequest(job_id=job_id))
            assert await launched(agent) == job_id
        fed.store.close()

    job_id = asyncio.run(before())
    asyncio.run(after(job_id))


def test_a_running_job_is_not_held_and_runs_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            job = (await jobs.Submit(submit("runs"))).job
            order = await agent.order()
            pid = order.launch.placement.placement_id
            await agent.send(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
                placement_id=pid, phase=types_pb2.JOB_PHASE_RUNNING, message="running")))
            while fed.jobs[job.job_id].phase is not JobPhase.RUNNING:
                await asyncio.sleep(0.01)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.Hold(jobs_pb2.HoldJobRequest(job_id="runs"))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert err.value.details() == (f"job {job.job_id} is Running: only a Pending job may be held; it holds "
                                           "room in a member cluster and keeps it (cancel it to stop it; a hold "
                                           "never stops work that runs)")
            live = fed.jobs[job.job_id]
            assert live.phase is JobPhase.RUNNING and live.hold is None and live.placements[0].placement_id == pid
            await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.Hold(jobs_pb2.HoldJobRequest(job_id=job.job_id))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "is Cancelled: only a Pending job may be held; it has ended" in (err.value.details() or "")
            held = (await jobs.Submit(submit("held-then-cancelled", hold=True))).job
            await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=held.job_id))
            ended = await jobs.Release(jobs_pb2.ReleaseJobRequest(job_id=held.job_id))  # ended: answered as it is
            assert ended.phase == types_pb2.JOB_PHASE_CANCELLED and ended.HasField("hold")
            assert ended.message == "cancelled by user"
        fed.store.close()

    asyncio.run(scenario())


def test_a_cycle_deciding_when_the_hold_comes_does_not_place_the_job(tmp_path: Path) -> None:
    async def scenario() -> None:
        held = HeldScheduler()
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), scheduler=held, cycle_interval=0.05)
        async with job_api(fed) as jobs:
            rec = fed.connect(cluster="east-1", region="r", labels={})
            fed.report(rec, capacity())
            job = (await jobs.Submit(submit("racing"))).job
            cycle = asyncio.get_running_loop().create_task(fed.cycles.run_once_async())
            assert await asyncio.to_thread(held.started.wait, A_WHILE)  # the cycle is deciding, the job offered
            await jobs.Hold(jobs_pb2.HoldJobRequest(job_id=job.job_id))
            held.release.set()
            result = await cycle
            assert [d.job_id for d in result.decisions] == [job.job_id]  # it decided to place it...
            live = fed.jobs[job.job_id]
            assert live.phase is JobPhase.PENDING and live.placements == []  # ...but the hold stands
            assert live.pending_reason is not None and live.pending_reason.code is ReasonCode.HELD
            assert rec.outbox.empty()  # no Launch
            fed.cycles.run_once()  # nor does a later cycle offer it
            assert fed.jobs[job.job_id].phase is JobPhase.PENDING and rec.outbox.empty()
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_a_watcher_of_the_job_is_told_when_it_is_held_and_released(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs:
            job = (await jobs.Submit(submit("watched"))).job
            stream = jobs.Watch(jobs_pb2.WatchJobsRequest(job_id=job.job_id))
            first = await asyncio.wait_for(stream.read(), A_WHILE)
            assert not first.HasField("hold")
            await jobs.Hold(jobs_pb2.HoldJobRequest(job_id=job.job_id))
            held = await asyncio.wait_for(stream.read(), A_WHILE)
            assert held.hold.by == "anonymous" and held.pending_reason.code == "Held"
            await jobs.Release(jobs_pb2.ReleaseJobRequest(job_id=job.job_id))
            released = await asyncio.wait_for(stream.read(), A_WHILE)
            assert not released.HasField("hold") and released.pending_reason.code == "Waiting"
            stream.cancel()
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())
