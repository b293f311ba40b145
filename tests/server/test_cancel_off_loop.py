"""A user's Cancel is written off the event loop, and still stored before any agent hears of it.

Before, `Federator.cancel` wrote with `GroupCommit.write`, which holds the event loop for the fsync: every agent
stream, Watch and Submit waited behind each Cancel, and a CancelJobs of thousands of jobs was thousands of fsyncs
in a row on the loop. Here a store whose write the test holds stands for a slow disk (gated_store.py); what is
checked is *order* over real gRPC on loopback, never time: a List is answered while the Cancel's write is held,
the agent hears of the cancel only once it is stored, a full disk answers UNAVAILABLE as before and tells no agent,
and what happens to the job meanwhile (it ends, it is cancelled again, it is placed, it is written again) is
decided as server/cancelling.py says.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import grpc
import pytest
from agent_stream import AgentStream, agent_stream
from gated_store import A_WHILE, FULL, GatedStore, until
from server_support import capacity, job_api, spec

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2
from federator.model import Job, JobKind, JobPhase
from federator.server.federator import Federator


def _report(*placement_ids: str) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity(*placement_ids)))


async def _placed(fed: Federator, agent: AgentStream, store: GatedStore, job: Job) -> str:
    """The agent reports room; the job's launch is read and the placement stored. Its placement id."""
    await agent.send(_report())
    launch = await agent.order()
    assert launch.WhichOneof("body") == "launch" and launch.launch.placement.job_id == job.job_id
    await asyncio.to_thread(fed.journal.drain)
    store.written.clear()
    return launch.launch.placement.placement_id


async def _next_is_launch_of(fed: Federator, agent: AgentStream, name: str) -> None:
    """A job submitted now is launched, and the agent's next message is that launch: no order came before it (no
    CancelOrder that should not have been sent)."""
    other = fed.submit(spec(name))
    fed.wake()
    message = await agent.order()
    assert message.WhichOneof("body") == "launch", message
    assert message.launch.placement.job_id == other.job_id


def _written_again(store: GatedStore, *, between: JobPhase) -> None:
    """Job a's cancel was written, its older state (`between`) written after it, and the cancel again, last. The
    writer may coalesce the last two into one batch, of the newest (the cancel): the older state is then never
    written; either way the cancel is written twice and last."""
    assert store.written in ([("a", JobPhase.CANCELLED), ("a", between), ("a", JobPhase.CANCELLED)],
                             [("a", JobPhase.CANCELLED), ("a", JobPhase.CANCELLED)]), store.written


def _fed(store: GatedStore) -> Federator:
    return Federator(store=store, lease_seconds=10.0, cycle_interval=0.05)


def test_a_list_is_answered_while_a_cancels_write_is_held_and_the_agent_hears_of_it_once_stored() -> None:
    async def scenario() -> None:
        store = GatedStore()
        fed = _fed(store)
        job = fed.submit(spec("a"))
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            try:
                pid = await _placed(fed, agent, store, job)
                store.hold = True
                cancel = asyncio.ensure_future(jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id),
                                                         timeout=A_WHILE))
                assert await asyncio.to_thread(store.entered.wait, A_WHILE)  # the cancel's write holds the disk
                listed = await jobs.List(jobs_pb2.ListJobsRequest(), timeout=A_WHILE)
                store.events.append("List answered")
                while_held = (job.phase, fed.clusters["east-1"].outbox.empty())
                store.release.set()
                answer = await cancel
                order = await agent.order()
                assert store.events == ["write held", "List answered", "write let go"], store.events
                assert [j.phase for j in listed.jobs] == [convert.phase_to_pb(JobPhase.PLACED)]
                assert while_held == (JobPhase.PLACED, True)  # untouched, and no agent told, until stored
                assert answer.phase == convert.phase_to_pb(JobPhase.CANCELLED)
                assert order.WhichOneof("body") == "cancel" and order.cancel.placement_id == pid
                assert store.written == [("a", JobPhase.CANCELLED)]
                assert job.phase is JobPhase.CANCELLED and job.placements[0].phase is JobPhase.CANCELLED
            finally:
                store.release.set()  # before the stream's teardown, which waits for the loop's work

    asyncio.run(scenario())


def test_a_cancel_the_full_disk_refuses_answers_unavailable_as_before_and_tells_no_agent() -> None:
    async def scenario() -> grpc.RpcError:
        store = GatedStore()
        fed = _fed(store)
        job = fed.submit(spec("a"))
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await _placed(fed, agent, store, job)
            store.full = True
            with pytest.raises(grpc.RpcError) as got:
                await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id), timeout=A_WHILE)
            assert job.phase is JobPhase.PLACED and job.placements[0].phase is JobPhase.PLACED
            assert store.docs[job.job_id].phase is JobPhase.PLACED
            await _next_is_launch_of(fed, agent, "b")
            again = await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id), timeout=A_WHILE)  # the retry
            assert again.phase == convert.phase_to_pb(JobPhase.CANCELLED)
            assert (await agent.order()).WhichOneof("body") == "cancel"
            return got.value

    refused = asyncio.run(scenario())
    assert refused.code() is grpc.StatusCode.UNAVAILABLE
    assert refused.details() == f"{FULL}; the job was not cancelled"


def test_a_job_that_ends_while_its_cancel_is_written_keeps_its_end_and_no_agent_is_told() -> None:
    async def scenario() -> None:
        store = GatedStore()
        fed = _fed(store)
        job = fed.submit(spec("a"))
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            try:
                pid = await _placed(fed, agent, store, job)
                store.hold = True
                cancel = asyncio.ensure_future(jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id),
                                                         timeout=A_WHILE))
                assert await asyncio.to_thread(store.entered.wait, A_WHILE)
                await agent.send(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
                    placement_id=pid, phase=convert.phase_to_pb(JobPhase.SUCCEEDED), message="done")))
                await until(lambda: job.phase is JobPhase.SUCCEEDED)
                store.release.set()
                answer = await cancel
                await asyncio.to_thread(fed.journal.drain)
                assert answer.phase == convert.phase_to_pb(JobPhase.SUCCEEDED)  # as a Cancel of an ended job
                assert store.written == [("a", JobPhase.CANCELLED), ("a", JobPhase.SUCCEEDED)]  # the end last
                assert store.docs[job.job_id].phase is JobPhase.SUCCEEDED
                await _next_is_launch_of(fed, agent, "b")  # no CancelOrder for the ended placement
            finally:
                store.release.set()

    asyncio.run(scenario())


def test_a_job_cancelled_twice_while_the_first_is_written_is_written_and_its_agent_told_once() -> None:
    async def scenario() -> None:
        store = GatedStore()
        fed = _fed(store)
        job = fed.submit(spec("a"))
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            try:
                pid = await _placed(fed, agent, store, job)
                store.hold = True
                first = asyncio.ensure_future(jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id),
                                                        timeout=A_WHILE))
                assert await asyncio.to_thread(store.entered.wait, A_WHILE)
                second = asyncio.create_task(fed.cancel_async(job.job_id))
                await asyncio.sleep(0)  # it runs to its wait for the first (a step of the loop, not a time)
                page = asyncio.ensure_future(jobs.CancelJobs(jobs_pb2.CancelJobsRequest(queue=job.spec.queue),
                                                           timeout=A_WHILE))
                store.release.set()
                answers = [(await first).phase, convert.phase_to_pb((await second).phase)]
                bulk = await page
                order = await agent.order()
                assert answers == [convert.phase_to_pb(JobPhase.CANCELLED)] * 2
                assert [r.outcome for r in bulk.results] in ([], [jobs_pb2.CANCEL_OUTCOME_CANCELLED],
                                                              [jobs_pb2.CANCEL_OUTCOME_ENDED])
                assert store.written == [("a", JobPhase.CANCELLED)]  # one write for all of them
                assert order.WhichOneof("body") == "cancel" and order.cancel.placement_id == pid
                await _next_is_launch_of(fed, agent, "b")  # and one CancelOrder
            finally:
                store.release.set()

    asyncio.run(scenario())


def test_a_job_placed_while_its_cancel_is_written_is_cancelled_as_placed_and_stored_cancelled_last() -> None:
    async def scenario() -> None:
        store = GatedStore()
        fed = _fed(store)
        job = fed.submit(spec("a"))  # Pending: the agent has not reported room yet
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            try:
                await until(lambda: fed.cycles.cycles > 0)
                await asyncio.to_thread(fed.journal.drain)
                store.written.clear()
                store.hold = True
                cancel = asyncio.ensure_future(jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id),
                                                         timeout=A_WHILE))
                assert await asyncio.to_thread(store.entered.wait, A_WHILE)
                await agent.send(_report())  # room: the next cycle places the job, and queues its write
                await until(lambda: job.phase is JobPhase.PLACED)
                store.release.set()
                answer = await cancel
                await asyncio.to_thread(fed.journal.drain)
                assert answer.phase == convert.phase_to_pb(JobPhase.CANCELLED)
                # The cycle's write of the placed job landed after the cancel's copy (or in one batch with the cancel
                # written again, which then wins); the cancel was written again, last, before the agent heard of it.
                _written_again(store, between=JobPhase.PLACED)
                stored = store.docs[job.job_id]
                assert stored.phase is JobPhase.CANCELLED and [p.phase for p in stored.placements] == \
                    [JobPhase.CANCELLED]
                heard = [await agent.order(), await agent.order()]
                pid = stored.placements[0].placement_id
                assert [(m.WhichOneof("body"), m.launch.placement.placement_id or m.cancel.placement_id)
                        for m in heard] == [("launch", pid), ("cancel", pid)]
            finally:
                store.release.set()

    asyncio.run(scenario())



def test_a_job_written_again_unchanged_while_its_cancel_is_written_is_stored_cancelled_last() -> None:
    """The job does not change while its cancel is written, but an older write of it is paid meanwhile (an agent's
    update a full disk refused, owed: GroupCommit.write_or_owe): that write lands after the cancel's copy, and the
    journal says so (`commit_newest`); the cancel is written again before any agent hears of it."""
    async def scenario() -> None:
        store = GatedStore()
        fed = Federator(store=store, lease_seconds=3600.0, cycle_interval=3600.0)  # a turn only when woken
        job = fed.submit(spec("a"))
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            try:
                pid = await _placed(fed, agent, store, job)
                store.full = True
                await agent.send(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
                    placement_id=pid, phase=convert.phase_to_pb(JobPhase.RUNNING), message="running")))
                await until(lambda: fed.journal.owed == 1)  # Running in memory, not on disk: owed
                store.hold = True
                cancel = asyncio.ensure_future(jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id),
                                                           timeout=A_WHILE))
                assert await asyncio.to_thread(store.entered.wait, A_WHILE)
                fed.wake()  # a turn: it pays what is owed, the job as it is (Running), queued after the cancel
                await until(lambda: fed.journal.queued == 1)
                store.release.set()
                answer = await cancel
                await asyncio.to_thread(fed.journal.drain)
                assert answer.phase == convert.phase_to_pb(JobPhase.CANCELLED)
                _written_again(store, between=JobPhase.RUNNING)
                assert store.docs[job.job_id].phase is JobPhase.CANCELLED
                order = await agent.order()
                assert order.WhichOneof("body") == "cancel" and order.cancel.placement_id == pid
            finally:
                store.release.set()

    asyncio.run(scenario())


def test_a_list_is_answered_while_a_scales_write_is_held_and_the_stopped_part_is_cancelled_once_stored() -> None:
    """A Scale is stored first as a Cancel is (server/scaling.py `scale_async`): the same order, over real gRPC."""
    async def scenario() -> None:
        store = GatedStore()
        fed = _fed(store)
        job = fed.submit(replace(spec("a", gpus=1, replicas=2), kind=JobKind.INFERENCE))
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            try:
                pid = await _placed(fed, agent, store, job)
                store.hold = True
                scale = asyncio.ensure_future(jobs.Scale(jobs_pb2.ScaleJobRequest(job_id=job.job_id, replicas=1),
                                                         timeout=A_WHILE))
                assert await asyncio.to_thread(store.entered.wait, A_WHILE)  # the scale's write holds the disk
                listed = await jobs.List(jobs_pb2.ListJobsRequest(), timeout=A_WHILE)
                store.events.append("List answered")
                while_held = (job.spec.replicas, fed.clusters["east-1"].outbox.empty())
                store.release.set()
                answer = await scale
                order = await agent.order()
                assert store.events == ["write held", "List answered", "write let go"], store.events
                assert [j.spec.replicas for j in listed.jobs] == [2]
                assert while_held == (2, True)  # untouched, and no agent told, until stored
                assert answer.spec.replicas == 1 and store.written[0] == ("a", JobPhase.PENDING)
                assert order.WhichOneof("body") == "cancel" and order.cancel.placement_id == pid
            finally:
                store.release.set()

    asyncio.run(scenario())
