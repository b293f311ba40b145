"""Jobs that wait on other jobs, over the real gRPC API beside a real agent stream (server/dependencies.py).

What a Slurm user counts on from `--dependency=afterok:A`: B waits in the federator while A runs, however much room
is free, and runs once A succeeds; B never runs when A fails (it fails at once, naming A, and so on down the chain);
afterany runs B however A ended; the chain outlives a federator restart.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from agent_stream import AgentStream, agent_stream
from server_support import Clock, MemoryStore, capacity, make, spec
from test_held_job_metrics import _samples
from test_job_holds_grpc import job_api

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, types_pb2
from federator.metrics import Metrics
from federator.model import JobId, JobPhase, ReasonCode
from federator.server.federator import Federator
from federator.server.retention import Retention, RetentionPolicy
from federator.server.state_sample import state_sample
from federator.store import SqliteJobStore

from builders import job
from support import until

DEPENDS_ON = "federator.io/depends-on"
FAIL_AT_ONCE = {"federator.io/early-failure": "fail"}  # a failure soon after starting is not placed once more


def after(name: str, *keys: str, condition: str = "", **annotations: str) -> jobs_pb2.SubmitRequest:
    pb = convert.spec_to_pb(spec(name, gpus=8, **annotations))
    if keys or condition:
        pb.depends_on.CopyFrom(types_pb2.JobDependency(condition=condition, jobs=list(keys)))
    return jobs_pb2.SubmitRequest(spec=pb)


def report() -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity()))  # 4 nodes x 8 H100: room for 4


async def placed(agent: AgentStream) -> tuple[str, str]:
    """(job id, placement id) of the next Launch on the agent's stream."""
    order = await agent.order()
    assert order.WhichOneof("body") == "launch", order
    return str(order.launch.placement.job_id), str(order.launch.placement.placement_id)


async def ends(fed: Federator, agent: AgentStream, job_id: str, pid: str, phase: JobPhase) -> None:
    """The agent reports the placement `phase`; back once the federator holds it."""
    await agent.send(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
        placement_id=pid, phase=convert.phase_to_pb(phase), message=f"exit: {phase}")))
    while fed.jobs[job_id].phase is not phase:
        await asyncio.sleep(0.01)


async def quiet(fed: Federator) -> None:
    """Two whole cycles run: a job that could be placed now has been."""
    await fed.cycles.run_once_async()
    await fed.cycles.run_once_async()


def test_b_afterok_a_waits_while_a_runs_and_runs_when_a_succeeds(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            a = (await jobs.Submit(after("prep"))).job
            a_id, a_pid = await placed(agent)
            assert a_id == a.job_id
            b = (await jobs.Submit(after("train", "prep"))).job  # by name: kept as A's id
            assert list(b.spec.depends_on.jobs) == [a.job_id] and b.spec.depends_on.condition == "afterok"
            assert DEPENDS_ON not in b.spec.annotations  # the field, not its stored form, on the wire
            assert b.pending_reason.code == "Dependency"
            assert b.pending_reason.message == f"waiting for afterok: {a.job_id} (Placed)"
            await ends(fed, agent, a_id, a_pid, JobPhase.RUNNING)
            # B's reason follows A once A's Running is stored, which a busy machine's disk may do after two cycles
            # have run already: wait for it, then for two more cycles, which must leave B unplaced
            b_job = fed.jobs[JobId(b.job_id)]
            await until(lambda: b_job.pending_reason is not None and b_job.pending_reason.message.endswith("(Running)"))
            await quiet(fed)
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=b.job_id))
            assert got.phase == types_pb2.JOB_PHASE_PENDING  # room for three more, and not placed
            assert got.pending_reason.message == f"waiting for afterok: {a.job_id} (Running)"  # follows A
            await ends(fed, agent, a_id, a_pid, JobPhase.SUCCEEDED)
            assert (await placed(agent))[0] == b.job_id
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_a_failed_dependency_fails_the_chain_at_once_and_afterany_runs_all_the_same(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            a = (await jobs.Submit(after("prep", **FAIL_AT_ONCE))).job
            _, a_pid = await placed(agent)
            b = (await jobs.Submit(after("train", a.job_id))).job
            c = (await jobs.Submit(after("evaluate", "train"))).job
            cleanup = (await jobs.Submit(after("cleanup", "prep", condition="afterany"))).job
            await ends(fed, agent, a.job_id, a_pid, JobPhase.FAILED)
            await quiet(fed)  # the cycles that judge B, then C, run (a busy machine's loop may not have yet)
            got_b = await jobs.Get(jobs_pb2.GetJobRequest(job_id=b.job_id))
            assert got_b.phase == types_pb2.JOB_PHASE_FAILED and not got_b.placements
            assert got_b.message.startswith(f"DependencyNeverSatisfied: job {a.job_id} ended Failed: exit: Failed")
            got_c = await jobs.Get(jobs_pb2.GetJobRequest(job_id=c.job_id))  # down the chain
            assert got_c.phase == types_pb2.JOB_PHASE_FAILED
            assert got_c.message.startswith(f"DependencyNeverSatisfied: job {b.job_id} ended Failed: ")
            assert (await placed(agent))[0] == cleanup.job_id  # afterany: A ended, however
            with pytest.raises(grpc.aio.AioRpcError) as err:  # afterok on a job that failed can never run
                await jobs.Submit(after("late", a.job_id))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert err.value.details() == (f"spec.dependsOn.jobs: job {a.job_id} has ended Failed, so afterok can "
                                           "never be satisfied; name a job that may still succeed, or use afterany")
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_afternotok_runs_once_its_job_fails_and_fails_when_it_succeeds(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            bad = (await jobs.Submit(after("prep", **FAIL_AT_ONCE))).job
            _, bad_pid = await placed(agent)
            good = (await jobs.Submit(after("train"))).job
            _, good_pid = await placed(agent)
            rescue = (await jobs.Submit(after("rescue", "prep", condition="afternotok"))).job
            cleanup = (await jobs.Submit(after("cleanup", "train", condition="afternotok"))).job
            assert rescue.spec.depends_on.condition == "afternotok" and rescue.pending_reason.code == "Dependency"
            assert rescue.pending_reason.message == f"waiting for afternotok: {bad.job_id} (Placed)"
            await ends(fed, agent, bad.job_id, bad_pid, JobPhase.FAILED)
            assert (await placed(agent))[0] == rescue.job_id  # what it waited on failed: it runs
            await ends(fed, agent, good.job_id, good_pid, JobPhase.SUCCEEDED)
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=cleanup.job_id))
            assert got.phase == types_pb2.JOB_PHASE_FAILED and not got.placements  # never satisfied: never runs
            assert got.message == (f"DependencyNeverSatisfied: job {good.job_id} ended Succeeded: all placements "
                                   "succeeded")
            with pytest.raises(grpc.aio.AioRpcError) as err:  # afternotok on a job that succeeded can never run
                await jobs.Submit(after("late", good.job_id, condition="afternotok"))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert err.value.details() == (f"spec.dependsOn.jobs: job {good.job_id} has ended Succeeded, so "
                                           "afternotok can never be satisfied; name a job that may still fail, or "
                                           "use afterany")
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_a_pipeline_of_three_runs_in_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            first = (await jobs.Submit(after("one"))).job
            second = (await jobs.Submit(after("two", "one"))).job
            third = (await jobs.Submit(after("three", "two", "one"))).job
            # `first` may have been placed already by a 0.05 s cycle between the Submits: Pending or Placed
            assert re.fullmatch(f"waiting for afterok: {second.job_id} \\(Pending\\), {first.job_id} "
                                "\\((Pending|Placed)\\)", third.pending_reason.message), third.pending_reason.message
            for job in (first, second, third):
                job_id, pid = await placed(agent)
                assert job_id == job.job_id
                await quiet(fed)
                assert [j.job_id for j in fed.jobs.values() if j.placements] == \
                    [j.job_id for j in (first, second, third)][:[first, second, third].index(job) + 1]
                await ends(fed, agent, job_id, pid, JobPhase.SUCCEEDED)
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_a_waiting_job_waits_across_a_restart_and_runs_when_its_dependency_succeeds(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"

    async def before() -> tuple[str, str]:
        fed = Federator(store=SqliteJobStore(db), cycle_interval=0.05)
        async with job_api(fed) as jobs:
            a = (await jobs.Submit(after("prep"))).job
            b = (await jobs.Submit(after("train", "prep"))).job
        fed.cycles.close()
        fed.store.close()
        return a.job_id, b.job_id

    async def then(a_id: str, b_id: str) -> None:
        fed = Federator(store=SqliteJobStore(db), cycle_interval=0.05)
        live = fed.jobs[b_id]
        assert live.waiting_on == (a_id,) and live.pending_reason is not None
        assert live.pending_reason.code is ReasonCode.DEPENDENCY  # judged again from the stored spec
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            job_id, pid = await placed(agent)
            assert job_id == a_id  # never B first, with room for both
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=b_id))
            assert list(got.spec.depends_on.jobs) == [a_id] and got.pending_reason.code == "Dependency"
            await ends(fed, agent, a_id, pid, JobPhase.SUCCEEDED)
            assert (await placed(agent))[0] == b_id
        fed.cycles.close()
        fed.store.close()

    async def failed_while_down(a_id: str, b_id: str) -> None:
        """A ended Failed in the store (written, then the federator stopped before B was judged)."""
        fed = Federator(store=SqliteJobStore(db), cycle_interval=0.05)
        assert fed.jobs[b_id].phase is JobPhase.FAILED
        assert fed.jobs[b_id].message.startswith(f"DependencyNeverSatisfied: job {a_id} ended Failed")
        fed.journal.drain()
        fed.cycles.close()
        fed.store.close()

    a_id, b_id = asyncio.run(before())
    asyncio.run(then(a_id, b_id))
    # Again: A waits, B after it; A's end is stored but B's judgement is not (a crash between them).
    a2, b2 = asyncio.run(_stored_failure(db))
    asyncio.run(failed_while_down(a2, b2))


async def _stored_failure(db: Path) -> tuple[str, str]:
    fed = Federator(store=SqliteJobStore(db), cycle_interval=0.05)
    async with job_api(fed) as jobs:
        a = (await jobs.Submit(after("prep2"))).job
        b = (await jobs.Submit(after("train2", a.job_id))).job
    live = fed.jobs[a.job_id]
    live.phase, live.message = JobPhase.FAILED, "exit: Failed"  # as stored by an end the federator then lost
    fed.journal.write([live])
    fed.cycles.close()
    fed.store.close()
    return a.job_id, b.job_id


def test_bad_dependencies_are_refused_naming_the_field(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs:
            cases = [(after("x", "nobody"), grpc.StatusCode.NOT_FOUND,
                      "spec.dependsOn.jobs: no job or array with id or name 'nobody'"),
                     (after("x", "a", condition="afterbad"), grpc.StatusCode.INVALID_ARGUMENT,
                      "spec.dependsOn.condition: must be afterok, afterany, afternotok, afterstart, got 'afterbad'"),
                     (after("x", condition="afterok"), grpc.StatusCode.INVALID_ARGUMENT,
                      "spec.dependsOn.jobs: names no job; give 1 to 16 job ids or names"),
                     (after("x", *[f"j{i}" for i in range(17)]), grpc.StatusCode.INVALID_ARGUMENT,
                      "spec.dependsOn.jobs: names 17 jobs; at most 16")]
            for request, code, details in cases:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await jobs.Submit(request)
                assert (err.value.code(), err.value.details()) == (code, details)
            assert not fed.jobs
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())





def test_a_waiting_job_is_counted_under_dependency_and_left_out_of_the_oldest_pending_age() -> None:
    clock, metrics = Clock(), Metrics()
    fed = make(MemoryStore(), clock, metrics=metrics)
    metrics.watch_state(lambda: state_sample(fed))
    first = fed.submit(job("first", gpus=8, models=("H100",)))  # no cluster: it waits
    clock.now += 600
    fed.submit(replace(job("second", gpus=8, models=("H100",)),
                       annotations=((DEPENDS_ON, f"afterok:{first.job_id}"),)))
    clock.now += 100
    fed.schedule_once()
    pending = _samples(metrics, "federator_pending_jobs")
    assert pending[("default", "Dependency")] == 1.0
    fed.cancel(first.job_id)  # afterok: the second fails with it, and nothing waits
    assert _samples(metrics, "federator_oldest_pending_job_age_seconds") == {}
    assert [j.phase for j in fed.jobs.values()] == [JobPhase.CANCELLED, JobPhase.FAILED]


def test_a_waiting_job_held_and_released_waits_on_with_its_reason(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            a = (await jobs.Submit(after("prep"))).job
            a_id, a_pid = await placed(agent)
            request = after("train", "prep")
            request.hold = True
            b = (await jobs.Submit(request)).job
            assert b.pending_reason.code == "Held" and b.HasField("hold")
            released = await jobs.Release(jobs_pb2.ReleaseJobRequest(job_id=b.job_id))
            assert released.pending_reason.code == "Dependency"  # not "waiting for the next scheduling cycle"
            assert released.pending_reason.message == f"waiting for afterok: {a.job_id} (Placed)"
            await quiet(fed)
            assert fed.jobs[b.job_id].phase is JobPhase.PENDING
            await ends(fed, agent, a_id, a_pid, JobPhase.SUCCEEDED)
            assert (await placed(agent))[0] == b.job_id
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_a_standalone_arrays_name_is_no_key_only_its_id_is(tmp_path: Path) -> None:
    """An array object's name stands for the array in Kubernetes mode alone (its tasks carry it there): a
    standalone array has only its id, and its name is no job."""
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs:
            pb = convert.spec_to_pb(spec("sweep", gpus=8))
            await jobs.Submit(jobs_pb2.SubmitRequest(spec=pb, array=jobs_pb2.JobArray(indices="0-2")))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.Submit(after("merge", "sweep"))
            assert err.value.code() is grpc.StatusCode.NOT_FOUND
            assert err.value.details() == "spec.dependsOn.jobs: no job or array with id or name 'sweep'"
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_after_an_array_id_waits_on_every_task_of_the_array(tmp_path: Path) -> None:
    """Slurm's `--dependency=afterok:ARRAY`: all tasks; afternotok: all ended and any failed (QA new56 N2)."""
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            pb = convert.spec_to_pb(spec("sweep", gpus=8, **FAIL_AT_ONCE))
            sweep = await jobs.Submit(jobs_pb2.SubmitRequest(spec=pb, array=jobs_pb2.JobArray(indices="0-2")))
            ids = [t.job_id for t in sweep.array_jobs]
            await agent.send(report())
            pids = dict([await placed(agent) for _ in ids])
            ok, notok, any_ = [(await jobs.Submit(after(name, sweep.array_id, condition=c))).job
                               for name, c in (("merge", "afterok"), ("clean", "afternotok"), ("tidy", "afterany"))]
            assert list(ok.spec.depends_on.jobs) == [sweep.array_id]  # kept as the array, not 3 task ids
            assert ok.pending_reason.code == "Dependency"
            assert ok.pending_reason.message == f"waiting for afterok: every task of array {sweep.array_id} (3 tasks)"
            for i in ids[:2]:
                await ends(fed, agent, i, pids[i], JobPhase.SUCCEEDED)
            await quiet(fed)
            assert [fed.jobs[j.job_id].phase for j in (ok, notok, any_)] == [JobPhase.PENDING] * 3
            await ends(fed, agent, ids[2], pids[ids[2]], JobPhase.FAILED)
            assert sorted([(await placed(agent))[0] for _ in range(2)]) == sorted([notok.job_id, any_.job_id])
            failed = fed.jobs[ok.job_id]
            assert failed.phase is JobPhase.FAILED and failed.message.startswith(
                f"DependencyNeverSatisfied: array {sweep.array_id}: task {ids[2]} ended Failed")
            with pytest.raises(grpc.aio.AioRpcError) as err:  # afterok on an array with a failed task: never
                await jobs.Submit(after("late", sweep.array_id))
            assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert sweep.array_id in (err.value.details() or "")
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_a_job_after_a_throttled_array_waits_across_a_restart_and_runs_after_its_last_task(tmp_path: Path) -> None:
    """The array id is stored as the key and judged again on start against the tasks' stored phases; the array's
    own throttle passes a task waiting on a dependency over (QA new56 N1, N2)."""
    db = tmp_path / "jobs.db"

    async def before() -> tuple[list[str], str, str]:
        fed = Federator(store=SqliteJobStore(db), cycle_interval=0.05)
        async with job_api(fed) as jobs:
            pb = convert.spec_to_pb(spec("sweep", gpus=8))
            sweep = await jobs.Submit(jobs_pb2.SubmitRequest(spec=pb, array=jobs_pb2.JobArray(indices="0-1%1")))
            post = (await jobs.Submit(after("merge", sweep.array_id, condition="afterany"))).job
        fed.cycles.close()
        fed.store.close()
        return [t.job_id for t in sweep.array_jobs], post.job_id, sweep.array_id

    async def then(ids: list[str], post_id: str, array_id: str) -> None:
        fed = Federator(store=SqliteJobStore(db), cycle_interval=0.05)
        live = fed.jobs[JobId(post_id)]
        assert live.waiting_on and live.pending_reason is not None  # judged again from the stored array id
        assert live.pending_reason.code is ReasonCode.DEPENDENCY
        assert live.pending_reason.message == f"waiting for afterany: every task of array {array_id} (2 tasks)"
        async with job_api(fed), agent_stream(fed) as agent:
            await agent.send(report())
            for job_id in ids:  # one at a time (%1), then the merge
                got, pid = await placed(agent)
                assert got == job_id
                await quiet(fed)
                assert fed.jobs[JobId(post_id)].phase is JobPhase.PENDING
                await ends(fed, agent, job_id, pid, JobPhase.SUCCEEDED)
            assert (await placed(agent))[0] == post_id
        fed.cycles.close()
        fed.store.close()

    asyncio.run(then(*asyncio.run(before())))


def test_an_array_a_dependency_named_is_forgotten_once_retention_removed_its_tasks(tmp_path: Path) -> None:
    """Dependencies remembers an array a key names (its tasks, not scanned again for each of a thousand waiters);
    once retention removed every task, and the waiter, the entry goes: months of arrays do not grow the map."""
    clock = Clock()
    fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), clock=clock)
    retention = Retention(fed, RetentionPolicy(ttl_seconds=60, max_per_owner=0))

    async def scenario() -> None:
        async with job_api(fed) as jobs:
            pb = convert.spec_to_pb(spec("sweep", gpus=64))  # no member: the tasks wait
            sweep = await jobs.Submit(jobs_pb2.SubmitRequest(spec=pb, array=jobs_pb2.JobArray(indices="0-1")))
            merge = (await jobs.Submit(after("merge", sweep.array_id, condition="afterany"))).job
            other = convert.spec_to_pb(spec("other", gpus=64))
            kept = await jobs.Submit(jobs_pb2.SubmitRequest(spec=other, array=jobs_pb2.JobArray(indices="0")))
            await jobs.Submit(after("later", kept.array_id, condition="afterany"))
            remembered = fed.dependencies._arrays
            assert remembered[sweep.array_id] == tuple(t.job_id for t in sweep.array_jobs)
            assert kept.array_id in remembered
            await jobs.CancelJobs(jobs_pb2.CancelJobsRequest(array_id=sweep.array_id))
            await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=merge.job_id))
            clock.now += 61
            removed = await retention.sweep()
            assert sorted(removed) == sorted([merge.job_id, *(t.job_id for t in sweep.array_jobs)])
            assert sweep.array_id not in remembered  # every task gone: forgotten
            assert kept.array_id in remembered  # an array still held is kept
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())
