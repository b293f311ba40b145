"""Job arrays over the real gRPC API beside a real agent stream (server/arrays.py, jobs.proto SubmitRequest.array).

What a Slurm user counts on from `sbatch --array=0-5%2`: one call makes a task per index, named by it, with the
index in its containers' env; at most 2 run at once however much room is free, the next (lowest index) starting
when one ends, also after a federator restart; all tasks are accepted or none; a retry makes no second array;
`scancel ARRAY` cancels every task, and the audit log says so.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from agent_stream import agent_stream
from server_support import job_api, spec
from test_job_dependencies_grpc import FAIL_AT_ONCE, ends, placed, quiet, report

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.backends.kube.workloads.registry import build_workload
from federator.model import JobPhase, JobSpec, Placement, PlacementId, ReasonCode
from federator.model.array import ArrayRequest
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator
from federator.security.authz import Denied
from federator.security.limits import Limits
from federator.server.arrays import submit_array
from federator.server.federator import Federator
from federator.server.job_service import JobService
from federator.store import SqliteJobStore


def array(name: str, indices: str, *, max_running: int = 0, request_id: str = "",
          **annotations: str) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec(name, gpus=8, **annotations)), request_id=request_id,
                                  array=jobs_pb2.JobArray(indices=indices, max_running=max_running))


def fed_at(db: Path, **kw: object) -> Federator:
    return Federator(store=SqliteJobStore(db), cycle_interval=0.05, **kw)  # type: ignore[arg-type]


def close(fed: Federator) -> None:
    fed.cycles.close()
    fed.store.close()


def test_an_array_makes_a_task_per_index_named_by_it_with_the_index_in_its_env(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = fed_at(tmp_path / "jobs.db")
        async with job_api(fed) as jobs:
            reply = await jobs.Submit(array("sweep", "1,3,5-6"))
            names = [t.spec.name for t in reply.array_jobs]
            assert names == ["sweep-1", "sweep-3", "sweep-5", "sweep-6"] and reply.job == reply.array_jobs[0]
            assert reply.array_id.startswith("sweep-") and not reply.replayed
            assert {t.spec.array.array_id for t in reply.array_jobs} == {reply.array_id}
            assert [t.spec.array.task_id for t in reply.array_jobs] == [1, 3, 5, 6]
            assert not any(k.startswith("federator.io/array") for t in reply.array_jobs for k in t.spec.annotations)
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id="sweep-5"))  # a task is an ordinary job, by name
            assert (got.spec.array.array_id, got.spec.array.task_id) == (reply.array_id, 5)
            listed = await jobs.List(jobs_pb2.ListJobsRequest())
            assert len(listed.jobs) == 4
        task = fed.jobs[reply.array_jobs[2].job_id]
        assert convert.spec_from_pb(convert.spec_to_pb(task.spec)) == task.spec  # as a Launch carries it
        workload = build_workload(Placement(PlacementId("p-1"), task.job_id, "x", "r", 1, "H100", 1), task.spec,
                                  namespace="default")
        env = {e["name"]: e["value"] for e in workload["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["FEDERATOR_ARRAY_TASK_ID"] == "5" and env["FEDERATOR_ARRAY_JOB_ID"] == reply.array_id
        assert env["FEDERATOR_JOB_ID"] == task.job_id
        close(fed)

    asyncio.run(scenario())


def test_the_throttle_lets_at_most_n_run_and_the_lowest_index_next(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = fed_at(tmp_path / "jobs.db")
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            reply = await jobs.Submit(array("sweep", "0-5%2"))  # room for 4 of them
            ids = [t.job_id for t in reply.array_jobs]
            assert [t.pending_reason.code for t in reply.array_jobs] == ["Waiting"] * 2 + ["ArrayThrottle"] * 4
            await agent.send(report())
            first = dict([await placed(agent), await placed(agent)])
            assert sorted(first) == ids[:2]
            await quiet(fed)
            assert [fed.jobs[i].phase for i in ids[2:]] == [JobPhase.PENDING] * 4  # room, but the throttle holds
            reason = fed.jobs[ids[2]].pending_reason
            assert reason is not None and reason.code is ReasonCode.ARRAY_THROTTLE and "at most 2" in reason.message
            await ends(fed, agent, ids[1], first[ids[1]], JobPhase.SUCCEEDED)
            assert (await placed(agent))[0] == ids[2]  # the lowest index waiting
            await quiet(fed)
            assert [fed.jobs[i].phase for i in ids[3:]] == [JobPhase.PENDING] * 3
            await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=ids[0]))  # a cancel lets the next go too
            assert (await agent.order()).cancel.placement_id == first[ids[0]]
            assert (await placed(agent))[0] == ids[3]
        close(fed)

    asyncio.run(scenario())


def test_the_throttle_holds_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"

    async def before() -> list[str]:
        fed = fed_at(db)
        async with job_api(fed) as jobs:
            ids = [t.job_id for t in (await jobs.Submit(array("sweep", "0-3%1", **FAIL_AT_ONCE))).array_jobs]
        close(fed)
        return ids

    async def after(ids: list[str]) -> None:
        fed = fed_at(db)
        assert [fed.jobs[i].throttled for i in ids] == [False, True, True, True]  # judged again from the store
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            job_id, pid = await placed(agent)
            assert job_id == ids[0]
            await quiet(fed)
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=ids[1]))
            assert got.phase == convert.phase_to_pb(JobPhase.PENDING) and got.pending_reason.code == "ArrayThrottle"
            await ends(fed, agent, job_id, pid, JobPhase.FAILED)  # however it ended
            assert (await placed(agent))[0] == ids[1]
        close(fed)

    ids = asyncio.run(before())
    asyncio.run(after(ids))


def test_all_tasks_or_none_and_a_retry_makes_no_second_array(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = fed_at(tmp_path / "jobs.db", limits=Limits(max_pending_jobs_per_user=5))
        async with job_api(fed) as jobs:
            lone = (await jobs.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("sweep-2"))))).job
            with pytest.raises(grpc.aio.AioRpcError) as err:  # task 2's name is taken: no task is kept
                await jobs.Submit(array("sweep", "0-3"))
            assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS
            assert err.value.details().endswith("array task 2 (sweep-2): no task of the array was kept")
            assert list(fed.jobs) == [lone.job_id] and fed.cycles.pending_count == 1
            with pytest.raises(grpc.aio.AioRpcError) as err:  # 1 pending + 5 > the user's 5: no task is kept
                await jobs.Submit(array("other", "0-4"))
            assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert err.value.details().endswith("array task 4 (other-4): no task of the array was kept")
            assert list(fed.jobs) == [lone.job_id] and fed.cycles.pending_count == 1
            first = await jobs.Submit(array("ok", "0-3", request_id="sweep-1"))
            again = await jobs.Submit(array("ok", "0-3", request_id="sweep-1"))  # a lost answer's retry
            assert again.replayed and not first.replayed and again.array_id == first.array_id
            assert [t.job_id for t in again.array_jobs] == [t.job_id for t in first.array_jobs]
            assert len(fed.jobs) == 5
            with pytest.raises(grpc.aio.AioRpcError) as err:  # larger than the cap: no wait would help
                await jobs.Submit(array("big", "0-5"))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith("array.indices: 6 tasks, more than the 5 pending jobs "
                                                  "--max-pending-jobs-per-user allows at once")
        close(fed)

    asyncio.run(scenario())


def test_bad_arrays_are_refused_naming_the_field(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = fed_at(tmp_path / "jobs.db")
        async with job_api(fed) as jobs:
            forged = jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("x")))
            forged.spec.array.array_id, forged.spec.array.task_id = "someone-abc123", 3
            cases = [(array("x", ""), "array.indices: must not be empty"),
                     (array("x", "0-1000"), "array.indices: '0-1000' names more than 1000 tasks"),
                     (array("x", "5-2"), "array.indices: '5-2' is an empty range"),
                     (array("x", "a-b"), "array.indices: 'a-b' is not an index"),
                     (array("x", "0-9%0"), "array.indices: the throttle after % must be a whole number >= 1"),
                     (array("x", "0-9%2", max_running=3), "array.max_running: 3 disagrees with the %2"),
                     (array("x", "0-9", request_id="r" * 123), "request_id: at most 122 characters with an array"),
                     (forged, "spec.array: is set by the federator on the tasks of an array")]
            for validate_only in (False, True):  # new59 N2: with SubmitRequest.array too, whose throttle it took
                both = jobs_pb2.SubmitRequest()
                both.CopyFrom(array("x", "0-2"))
                both.spec.array.CopyFrom(forged.spec.array)
                both.spec.array.max_running = 1
                both.validate_only = validate_only
                cases.append((both, "spec.array: is set by the federator on the tasks of an array"))
            for request, details in cases:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await jobs.Submit(request)
                assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, details
                assert err.value.details().startswith(details), err.value.details()
            assert not fed.jobs
            ok = await jobs.Submit(array("x", "0-999"))  # the most an array may have
            assert len(ok.array_jobs) == 1000
        close(fed)

    asyncio.run(scenario())


def test_cancel_jobs_by_array_id_cancels_every_task_and_nothing_else_audited_once(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    async def scenario() -> None:
        fed = fed_at(tmp_path / "jobs.db")
        async with job_api(fed, AuditLog(path)) as jobs:
            one = await jobs.Submit(array("sweep", "0-3%1"))
            lone = (await jobs.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("sweep-x"))))).job
            reply = await jobs.CancelJobs(jobs_pb2.CancelJobsRequest(array_id=one.array_id))
            assert reply.matched == 4 and len(reply.results) == 4
            assert {fed.jobs[t.job_id].phase for t in one.array_jobs} == {JobPhase.CANCELLED}
            assert fed.jobs[lone.job_id].phase is JobPhase.PENDING
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.CancelJobs(jobs_pb2.CancelJobsRequest(array_id="Not An Id"))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith("array_id: must be an array id")
        close(fed)
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        bulk = [line for line in lines if line.get("action") == "cancel.bulk" and line.get("result") == "accepted"]
        assert len(bulk) == 1 and bulk[0]["object"]["array_id"] == one.array_id and bulk[0]["object"]["matched"] == "4"
        assert sum(1 for line in lines if line.get("action") == "cancel" and line.get("result") == "accepted") == 4
        (submit,) = [line for line in lines if line.get("action") == "submit" and "array_id" in line["object"]]
        assert (submit["object"]["array_id"], submit["object"]["tasks"]) == (one.array_id, "4")  # one line an array

    asyncio.run(scenario())


def test_cancelling_a_throttled_array_launches_none_of_its_waiting_tasks(tmp_path: Path) -> None:
    """new59 N1: CancelJobs ended the running task first, its throttle slot went free, a cycle let the next task go
    and launched it on the member, and only then was that task cancelled: a batch Job made and deleted for nothing.
    The waiting tasks are cancelled first; a cycle runs after every cancel here, as a busy federator's might."""
    async def scenario() -> None:
        fed = fed_at(tmp_path / "jobs.db")
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            reply = await jobs.Submit(array("sweep", "0-2%1"))
            ids = [t.job_id for t in reply.array_jobs]
            await agent.send(report())
            assert (await placed(agent))[0] == ids[0]
            await quiet(fed)
            cancel = fed.cancel_async

            async def cancel_then_cycle(job_id: str) -> object:
                done = await cancel(job_id)
                await fed.cycles.run_once_async()
                return done

            fed.cancel_async = cancel_then_cycle  # type: ignore[method-assign]
            got = await jobs.CancelJobs(jobs_pb2.CancelJobsRequest(array_id=reply.array_id))
            assert len(got.results) == 3
            assert [fed.jobs[i].phase for i in ids] == [JobPhase.CANCELLED] * 3
            assert [fed.jobs[i].placements == [] for i in ids[1:]] == [True, True]
            assert [bool(fed.jobs[i].placed_at) for i in ids[1:]] == [False, False]
        close(fed)

    asyncio.run(scenario())


def test_a_held_task_released_past_the_throttle_says_so(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = fed_at(tmp_path / "jobs.db")
        async with job_api(fed) as jobs:
            request = array("sweep", "0-2%1")
            request.hold = True
            ids = [t.job_id for t in (await jobs.Submit(request)).array_jobs]
            assert {fed.jobs[i].pending_reason.code for i in ids} == {ReasonCode.HELD}  # type: ignore[union-attr]
            for i in ids:
                await jobs.Release(jobs_pb2.ReleaseJobRequest(job_id=i))
            reasons = [(await jobs.Get(jobs_pb2.GetJobRequest(job_id=i))).pending_reason.code for i in ids]
            assert reasons == ["Waiting", "ArrayThrottle", "ArrayThrottle"]
        close(fed)

    asyncio.run(scenario())


class EveryNamespace:
    """The Kubernetes mode's namespace gate (server/namespace_gate.py), letting every namespace through."""

    async def refusal(self, spec: JobSpec) -> Denied | None:
        return None


def test_kubernetes_mode_refuses_an_array_naming_the_field(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = fed_at(tmp_path / "jobs.db")
        server = grpc.aio.server()
        jobs_pb2_grpc.add_JobServiceServicer_to_server(
            JobService(fed, Authenticator(insecure=True), namespaces=EveryNamespace()), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await jobs_pb2_grpc.JobServiceStub(ch).Submit(array("sweep", "0-3"))
        finally:
            await server.stop(0)
        assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert err.value.details().startswith("array: job arrays are served in store mode, or in Kubernetes mode with")
        assert not fed.jobs
        close(fed)

    asyncio.run(scenario())


def test_a_caller_gone_while_the_tasks_are_checked_leaves_no_task(tmp_path: Path) -> None:
    """The tasks are admitted a few at a time between yields to the event loop: a Submit cancelled at one of them
    (its client went away) forgets every task it reserved, names and pending counts included."""
    async def scenario() -> None:
        fed = fed_at(tmp_path / "jobs.db")
        call = asyncio.ensure_future(submit_array(
            fed, spec("sweep"), ArrayRequest(tuple(range(100)), 5), request_id="r", hold=None,
            visible=lambda named: named, taken=lambda task, rid: None))
        while len(fed.jobs) < 10:  # it has reserved the first tasks and yielded
            await asyncio.sleep(0)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert not fed.jobs and fed.cycles.pending_count == 0 and fed.intake.arriving == 0
        assert fed.intake.latest_named("default", "sweep-3") is None
        again = await submit_array(fed, spec("sweep"), ArrayRequest(tuple(range(100)), 5), request_id="r", hold=None,
                                   visible=lambda named: named, taken=lambda task, rid: None)
        assert not again.replayed and len(again.tasks) == 100 and len(fed.jobs) == 100
        close(fed)

    asyncio.run(scenario())


def test_a_held_task_takes_no_slot_and_competes_again_once_released(tmp_path: Path) -> None:
    """Slurm's `%N` bounds running tasks: `scontrol hold 1234_3` leaves the others to fill the slots (QA new56 N1)."""
    async def scenario() -> None:
        fed = fed_at(tmp_path / "jobs.db")
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            ids = [t.job_id for t in (await jobs.Submit(array("sweep", "0-9%3"))).array_jobs]  # room for 4
            for i in (3, 4):
                await jobs.Hold(jobs_pb2.HoldJobRequest(job_id=ids[i]))
            await agent.send(report())
            first = dict([await placed(agent) for _ in range(3)])
            assert sorted(first) == ids[:3]
            for job_id in ids[:3]:
                await ends(fed, agent, job_id, first[job_id], JobPhase.SUCCEEDED)
            second = dict([await placed(agent) for _ in range(3)])
            assert sorted(second) == ids[5:8]  # the held 3 and 4 are passed over, not given the slots
            await quiet(fed)
            assert [fed.jobs[i].phase for i in ids[3:5] + ids[8:]] == [JobPhase.PENDING] * 4
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=ids[8]))
            assert got.pending_reason.code == "ArrayThrottle" and "held" in got.pending_reason.message
            released = await jobs.Release(jobs_pb2.ReleaseJobRequest(job_id=ids[3]))  # 3 running: it waits its turn
            assert released.pending_reason.code == "ArrayThrottle"
            await quiet(fed)
            assert fed.jobs[ids[3]].phase is JobPhase.PENDING
            await ends(fed, agent, ids[5], second[ids[5]], JobPhase.SUCCEEDED)
            assert (await placed(agent))[0] == ids[3]  # released, it is the lowest index waiting
            await jobs.Hold(jobs_pb2.HoldJobRequest(job_id=ids[8]))  # the next in line held: passed over too
            await ends(fed, agent, ids[6], second[ids[6]], JobPhase.SUCCEEDED)
            assert (await placed(agent))[0] == ids[9]  # its slot goes to the next runnable one
        close(fed)

    asyncio.run(scenario())


def test_a_let_go_task_held_before_it_is_placed_gives_its_slot_to_the_next(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = fed_at(tmp_path / "jobs.db")
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            ids = [t.job_id for t in (await jobs.Submit(array("sweep", "0-4%2"))).array_jobs]
            held = await jobs.Hold(jobs_pb2.HoldJobRequest(job_id=ids[0]))  # let go, not placed yet: no cluster
            assert held.pending_reason.code == "Held"
            await agent.send(report())
            assert sorted([(await placed(agent))[0] for _ in range(2)]) == [ids[1], ids[2]]
            await quiet(fed)
            assert [fed.jobs[i].phase for i in (ids[0], ids[3], ids[4])] == [JobPhase.PENDING] * 3
        close(fed)

    asyncio.run(scenario())
