"""An RL post-training pipeline split into jobs, over the real gRPC API beside a real agent stream: rollout workers
that start once the learner runs (spec.dependsOn condition afterstart, server/dependencies.py) and only where it was
placed (spec.clusters.sameAs, scheduler/same_as.py). Outside QA qaml60 E3: before, a dependency took only
afterok/afterany/afternotok and the only co-location was a hand-chosen spec.clusters.names pin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from agent_stream import agent_stream
from server_support import spec
from test_job_dependencies_grpc import after, ends, placed, quiet, report
from test_job_holds_grpc import job_api

from federator.api import convert
from federator.api.v1 import jobs_pb2, types_pb2
from federator.model import JobPhase
from federator.server.federator import Federator
from federator.store import SqliteJobStore


def rollout(name: str, *same_as: str, after_start: tuple[str, ...] = ()) -> jobs_pb2.SubmitRequest:
    pb = convert.spec_to_pb(spec(name, gpus=1))
    if same_as:
        pb.clusters.CopyFrom(types_pb2.ClusterAffinity(same_as=list(same_as)))
    if after_start:
        pb.depends_on.CopyFrom(types_pb2.JobDependency(condition="afterstart", jobs=list(after_start)))
    return jobs_pb2.SubmitRequest(spec=pb)


def test_afterstart_waits_while_the_learner_is_placed_and_goes_once_it_runs_beside_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            learner = (await jobs.Submit(after("learner"))).job
            _, learner_pid = await placed(agent)
            workers = (await jobs.Submit(rollout("rollout", "learner", after_start=("learner",)))).job
            assert workers.spec.depends_on.condition == "afterstart"  # kept: what a client checks (types.proto)
            assert list(workers.spec.depends_on.jobs) == [learner.job_id]
            assert list(workers.spec.clusters.same_as) == [learner.job_id]  # by name: kept as the learner's id
            assert workers.pending_reason.code == "Dependency"
            assert workers.pending_reason.message == f"waiting for afterstart: {learner.job_id} (Placed)"
            await quiet(fed)
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=workers.job_id))
            assert got.phase == types_pb2.JOB_PHASE_PENDING and not got.placements  # room, but not started
            await ends(fed, agent, learner.job_id, learner_pid, JobPhase.RUNNING)
            job_id, _ = await placed(agent)  # the learner runs on: the rollout is placed beside it
            assert job_id == workers.job_id
            assert fed.jobs[learner.job_id].phase is JobPhase.RUNNING
            assert [p.cluster for p in fed.jobs[workers.job_id].placements] == ["east-1"]
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_a_learner_cancelled_before_it_started_fails_its_afterstart_dependent_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs:  # no member: the learner never starts
            learner = (await jobs.Submit(after("learner"))).job
            workers = (await jobs.Submit(rollout("rollout", after_start=("learner",)))).job
            assert workers.pending_reason.message == f"waiting for afterstart: {learner.job_id} (Pending)"
            await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=learner.job_id))
            while fed.jobs[workers.job_id].phase is not JobPhase.FAILED:
                await asyncio.sleep(0.01)
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=workers.job_id))
            assert got.message.startswith(f"DependencyNeverSatisfied: job {learner.job_id} ended Cancelled before "
                                          "it started")
            with pytest.raises(grpc.aio.AioRpcError) as err:  # it can never start: refused at Submit
                await jobs.Submit(rollout("late", after_start=(learner.job_id,)))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert err.value.details().startswith(f"spec.dependsOn.jobs: job {learner.job_id} ended Cancelled before "
                                                  "it started, so afterstart can never be satisfied")
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_a_learner_that_ran_and_ended_counts_as_started(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            learner = (await jobs.Submit(after("learner"))).job
            _, pid = await placed(agent)
            await ends(fed, agent, learner.job_id, pid, JobPhase.RUNNING)
            await ends(fed, agent, learner.job_id, pid, JobPhase.SUCCEEDED)
            late = (await jobs.Submit(rollout("late", after_start=(learner.job_id,)))).job
            assert late.pending_reason.code != "Dependency"  # started once: satisfied
            assert (await placed(agent))[0] == late.job_id
            short = (await jobs.Submit(after("short"))).job  # its member reports its end before any Running
            _, short_pid = await placed(agent)
            waiting = (await jobs.Submit(rollout("after-short", after_start=(short.job_id,)))).job
            assert waiting.pending_reason.code == "Dependency"
            await ends(fed, agent, short.job_id, short_pid, JobPhase.SUCCEEDED)
            assert (await placed(agent))[0] == waiting.job_id  # it ran: Succeeded counts as started
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_same_as_waits_while_the_named_job_holds_no_placement_and_bad_keys_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())  # room for 4 x 8: the learner asks 5 x 8 and waits
            learner_pb = convert.spec_to_pb(spec("learner", gpus=8, replicas=5))
            learner = (await jobs.Submit(jobs_pb2.SubmitRequest(spec=learner_pb))).job
            workers = (await jobs.Submit(rollout("rollout", "learner"))).job
            await quiet(fed)
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=workers.job_id))
            assert got.phase == types_pb2.JOB_PHASE_PENDING and not got.placements  # room, but not beside it
            assert got.pending_reason.code == "ClusterAffinity"
            assert (f"east-1: job {learner.job_id} holds no placement here (spec.clusters.sameAs; it holds none "
                    "now)") in got.pending_reason.message
            cases = [(rollout("x", "nobody"), grpc.StatusCode.NOT_FOUND,
                      "spec.clusters.sameAs[0]: no job with id or name 'nobody'"),
                     (rollout("x", *[f"j{i}" for i in range(17)]), grpc.StatusCode.INVALID_ARGUMENT,
                      "spec.clusters.sameAs: names 17 jobs; at most 16"),
                     (rollout("x", "learner", "learner"), grpc.StatusCode.INVALID_ARGUMENT,
                      "spec.clusters.sameAs[1]: 'learner' is named twice")]
            for request, code, details in cases:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await jobs.Submit(request)
                assert (err.value.code(), err.value.details()) == (code, details)
            await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=learner.job_id))
            with pytest.raises(grpc.aio.AioRpcError) as err:  # ended: it will never hold a placement again
                await jobs.Submit(rollout("x", learner.job_id))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert err.value.details().startswith(f"spec.clusters.sameAs[0]: job {learner.job_id} has ended "
                                                  "Cancelled")
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_same_as_naming_an_array_says_it_is_an_array_and_what_to_name(tmp_path: Path) -> None:
    """new60b N5: an array id the submitter sees was answered NOT_FOUND, "no job with id or name", read as a typo;
    sameAs names jobs (an array's task), dependsOn takes the array whole."""
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs:
            sweep = await jobs.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("sweep", gpus=1)),
                                                             array=jobs_pb2.JobArray(indices="0-1")))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.Submit(rollout("rollout", sweep.array_id))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith(
                f"spec.clusters.sameAs[0]: '{sweep.array_id}' is an array, not a job, and sameAs names jobs; name the "
                f"task it must run beside (such as {sweep.array_jobs[0].job_id})"), err.value.details()
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_the_waiting_reason_follows_the_named_jobs_phase_in_the_store_too(tmp_path: Path) -> None:
    """new60b N9: the reason changed in memory only (what Get reads), so a FederatedJob's status, which is what the
    store writes, kept "(Placed)" while the named job was Pending again; a restart's reader the same."""
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            learner = (await jobs.Submit(after("learner"))).job  # no room reported yet: Pending
            workers = (await jobs.Submit(rollout("rollout", after_start=("learner",)))).job
            assert workers.pending_reason.message == f"waiting for afterstart: {learner.job_id} (Pending)"
            await agent.send(report())
            assert (await placed(agent))[0] == learner.job_id
            said = f"waiting for afterstart: {learner.job_id} (Placed)"
            while (reason := fed.jobs[workers.job_id].pending_reason) is None or reason.message != said:
                await asyncio.sleep(0.01)  # what Get reads: it changed in memory before, too
            fed.journal.drain()
            stored = {j.job_id: j for j in fed.store.load()}[workers.job_id]
            assert stored.pending_reason is not None
            assert stored.pending_reason.message == said
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())
