"""A job whose spec.clusters.sameAs names a job that has ended can never be placed: it fails, DependencyNeverSatisfied,
as an afterstart dependent does (server/same_as_ends.py), over the real gRPC API beside a real agent stream. Outside
QA new60b N1: it waited Pending for ever, its reason saying "it holds none yet" of a learner that had Succeeded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent_stream import agent_stream
from server_support import spec
from test_job_dependencies_grpc import after, ends, placed, quiet, report
from test_job_holds_grpc import job_api

from federator.api import convert
from federator.api.v1 import jobs_pb2, types_pb2
from federator.model import JobPhase
from federator.server.federator import Federator
from federator.store import SqliteJobStore


def beside(name: str, *same_as: str, replicas: int = 5) -> jobs_pb2.SubmitRequest:
    """A job naming `same_as`, asking 5 x 8 by default: more than the agent's 4 x 8, so it stays unplaced."""
    pb = convert.spec_to_pb(spec(name, gpus=8, replicas=replicas))
    pb.clusters.CopyFrom(types_pb2.ClusterAffinity(same_as=list(same_as)))
    return jobs_pb2.SubmitRequest(spec=pb)


def test_a_job_whose_same_as_job_ended_fails_naming_it_and_its_end(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            learner = (await jobs.Submit(after("learner"))).job
            _, pid = await placed(agent)
            await ends(fed, agent, learner.job_id, pid, JobPhase.RUNNING)
            big = (await jobs.Submit(beside("big", "learner"))).job  # no room beside it: waits
            spare_pb = convert.spec_to_pb(spec("spare", gpus=8, replicas=9))  # never fits: pending for ever
            spare = (await jobs.Submit(jobs_pb2.SubmitRequest(spec=spare_pb))).job
            both = (await jobs.Submit(beside("both", "learner", "spare", replicas=1))).job  # one named job pending
            await quiet(fed)
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=both.job_id))
            assert got.phase == types_pb2.JOB_PHASE_PENDING
            assert f"job {spare.job_id} holds no placement here (spec.clusters.sameAs; it holds none now)" in \
                got.pending_reason.message  # never "yet": the scheduler cannot tell a live job from an ended one
            await ends(fed, agent, learner.job_id, pid, JobPhase.SUCCEEDED)
            for job, index in ((big, 0), (both, 0)):
                while fed.jobs[job.job_id].phase is not JobPhase.FAILED:
                    await asyncio.sleep(0.01)
                got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=job.job_id))
                assert got.message == (f"DependencyNeverSatisfied: job {learner.job_id} ended Succeeded, so it will "
                                       f"never hold a placement to share (spec.clusters.sameAs[{index}]); submit "
                                       "the job again naming a live one"), got.message
            assert fed.jobs[spare.job_id].phase is JobPhase.PENDING  # the named job itself is untouched
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_a_placed_job_is_kept_when_its_same_as_job_ends(tmp_path: Path) -> None:
    """Only a job with nothing placed fails: a placement made is never ended for another's sake (users.md)."""
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(report())
            learner = (await jobs.Submit(after("learner"))).job
            _, pid = await placed(agent)
            rollout = (await jobs.Submit(beside("rollout", "learner", replicas=1))).job
            assert (await placed(agent))[0] == rollout.job_id
            await ends(fed, agent, learner.job_id, pid, JobPhase.SUCCEEDED)
            await quiet(fed)
            assert fed.jobs[rollout.job_id].phase is JobPhase.PLACED
        fed.cycles.close()
        fed.store.close()

    asyncio.run(scenario())


def test_a_same_as_job_ended_in_the_store_fails_the_job_on_start(tmp_path: Path) -> None:
    """The named job's end stored, then a crash before its followers were judged: judged on start."""
    db = tmp_path / "jobs.db"

    async def before() -> tuple[str, str]:
        fed = Federator(store=SqliteJobStore(db), cycle_interval=0.05)
        async with job_api(fed) as jobs:  # no member: neither is placed
            learner = (await jobs.Submit(after("learner"))).job
            rollout = (await jobs.Submit(beside("rollout", "learner"))).job
        live = fed.jobs[learner.job_id]
        live.phase, live.message = JobPhase.CANCELLED, "cancelled"  # as stored by an end the federator then lost
        fed.journal.write([live])
        fed.cycles.close()
        fed.store.close()
        return learner.job_id, rollout.job_id

    learner_id, rollout_id = asyncio.run(before())
    fed = Federator(store=SqliteJobStore(db), cycle_interval=0.05)
    job = fed.jobs[rollout_id]
    assert job.phase is JobPhase.FAILED and job.pending_reason is None
    assert job.message.startswith(f"DependencyNeverSatisfied: job {learner_id} ended Cancelled, so it will never "
                                  "hold a placement to share (spec.clusters.sameAs[0])")
    fed.journal.drain()
    assert {j.job_id: j.phase for j in fed.store.load()}[rollout_id] is JobPhase.FAILED  # stored, not just told
    fed.cycles.close()
    fed.store.close()
