"""Finished jobs are kept for a TTL and a count per owner, then removed from memory, the store and the API.

Red-team finding: 200 jobs with a 0.88 MB template, each cancelled at once, grew the federator 69 -> 257 MB
and its SQLite file to 169 MB in 20 s: no cap on pending jobs applies to finished ones, and none were ever
removed; nor was a job's template size bounded.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from server_support import Clock, job_api, join, spec

from federator.accounting import SqliteUsageStore, UsageRecord
from federator.accounting.retention import DEFAULT_USAGE_RETENTION
from federator.api import convert
from federator.api.v1 import jobs_pb2, types_pb2
from federator.model import Job, JobId, JobPhase, Placement, PlacementId
from federator.security.authz import USER_ANNOTATION
from federator.server.federator import Federator
from federator.server.retention import (
    DEFAULT_FINISHED_JOB_TTL,
    DEFAULT_MAX_FINISHED_PER_USER,
    Retention,
    RetentionPolicy,
    chosen,
)
from federator.store import SqliteJobStore

DAY = 86_400.0
USERS_MD = Path(__file__).resolve().parents[2] / "docs" / "users.md"


def _job(name: str, *, user: str = "alice", phase: JobPhase = JobPhase.SUCCEEDED, finished: float = 0.0,
         ran: bool = True) -> Job:
    """A finished job; `ran`: it holds the placement it ran on (else it ended in the queue, never placed)."""
    s = spec(name, gpus=0)
    s = replace(s, annotations=tuple(sorted({**dict(s.annotations), USER_ANNOTATION: user}.items())))
    job_id = JobId(f"{name}-000000")
    placements = [Placement(PlacementId(f"{job_id}.g1.east-1"), job_id, "east-1", "east", 1, "H100", 1, phase)] \
        if ran else []
    return Job(job_id=job_id, spec=s, submitted_at=finished - 1, phase=phase, finished_at=finished,
               placements=placements)


@pytest.mark.parametrize(("policy", "jobs", "gone"), [
    (RetentionPolicy(ttl_seconds=DAY, max_per_owner=0), [_job("old", finished=0), _job("new", finished=DAY)],
     ["old"]),
    (RetentionPolicy(ttl_seconds=DAY, max_per_owner=0),
     [_job("running", phase=JobPhase.RUNNING, finished=0), _job("pending", phase=JobPhase.PENDING)], []),
    (RetentionPolicy(ttl_seconds=0, max_per_owner=2),
     [_job(f"a{i}", finished=i) for i in range(4)] + [_job("b0", user="bob", finished=0)], ["a0", "a1"]),
    (RetentionPolicy(ttl_seconds=0, max_per_owner=0), [_job("old", finished=0)], []),
], ids=["ttl-takes-the-expired", "active-jobs-never", "count-takes-each-owners-oldest", "zero-keeps-all"])
def test_which_finished_jobs_retention_removes(policy: RetentionPolicy, jobs: list[Job], gone: list[str]) -> None:
    assert sorted(j.spec.name for j in chosen(jobs, now=DAY + 10, policy=policy)) == gone


def _queued(name: str, finished: float, phase: JobPhase = JobPhase.CANCELLED, **kw: object) -> Job:
    job = _job(name, phase=phase, finished=finished, ran=False)
    for field, value in kw.items():
        setattr(job, field, value)
    return job


@pytest.mark.parametrize(("jobs", "keep", "gone"), [
    ([_job("ran-0", finished=0), _job("ran-1", phase=JobPhase.FAILED, finished=1)]
     + [_queued(f"backlog-{i}", finished=2 + i) for i in range(3)], 3, ["backlog-0", "backlog-1"]),
    ([_queued("refused", finished=0, phase=JobPhase.FAILED), _job("ran", finished=1), _queued("cancelled", finished=2)],
     1, ["cancelled", "refused"]),
    ([_queued("ran-before", finished=0, ran_seconds=30.0), _queued("failed-early", finished=1, early_failure="x"),
      _queued("never", finished=2)], 2, ["never"]),
    ([_job("failed-at-launch", phase=JobPhase.FAILED, finished=0), _queued("never", finished=1)], 1, ["never"]),
    ([_job(f"ran-{i}", finished=i) for i in range(3)] + [_queued("never", finished=3)], 1,
     ["never", "ran-0", "ran-1"]),
], ids=["a-cancelled-backlog-goes-before-what-ran", "cancelled-then-refused-then-ran",
        "an-earlier-attempt-or-early-failure-counts-as-run", "a-placement-that-failed-counts-as-run",
        "then-what-ran-oldest-first"])
def test_past_the_count_the_jobs_that_never_ran_go_first(jobs: list[Job], keep: int, gone: list[str]) -> None:
    """Outside QA (HPC) H16: the oldest finished went first, so cancelling a backlog that never ran pushed out
    every job that had; `get job bk-5` (Succeeded) was not found."""
    policy = RetentionPolicy(ttl_seconds=0, max_per_owner=keep)
    assert [j.spec.name for j in chosen(jobs, now=DAY, policy=policy)] == gone


def test_after_a_backlog_is_cancelled_get_still_finds_the_jobs_that_ran(tmp_path: Path) -> None:
    """H16 through the job API: two jobs run (one succeeds, one fails), then five that waited are cancelled; with
    a count of 3, the sweep takes four of the cancelled ones, and Get, List and the store keep what ran."""
    db = tmp_path / "federator.db"
    clock = Clock()
    fed = Federator(store=SqliteJobStore(db), clock=clock)
    retention = Retention(fed, RetentionPolicy(ttl_seconds=DAY, max_per_owner=3))
    member = join(fed, "east-1")  # 4 nodes of 8 free H100

    async def main() -> None:
        async with job_api(fed) as api:
            async def submit(name: str, gpus: int) -> str:
                pb = convert.spec_to_pb(spec(name, gpus=gpus))
                return (await api.Submit(jobs_pb2.SubmitRequest(spec=pb))).job.job_id

            ran = [await submit("ran-0", 8), await submit("ran-1", 8)]
            fed.schedule_once()
            for job_id, end in zip(ran, (JobPhase.SUCCEEDED, JobPhase.FAILED), strict=True):
                (p,) = fed.jobs[JobId(job_id)].placements
                fed.job_update(member, p.placement_id, JobPhase.RUNNING, "")
                clock.now += 600  # past --early-failure-seconds: a failure ends the job, it is not placed again
                fed.job_update(member, p.placement_id, end, "exit 1" if end is JobPhase.FAILED else "done")
            backlog = [await submit(f"backlog-{i}", 64) for i in range(5)]  # no node has 64: they wait
            fed.schedule_once()
            for job_id in backlog:
                clock.now += 1
                await api.Cancel(jobs_pb2.CancelJobRequest(job_id=job_id))
            assert sorted(await retention.sweep()) == sorted(backlog[:4])
            for job_id, phase in zip(ran, (types_pb2.JOB_PHASE_SUCCEEDED, types_pb2.JOB_PHASE_FAILED), strict=True):
                assert (await api.Get(jobs_pb2.GetJobRequest(job_id=job_id))).phase == phase
            listed = (await api.List(jobs_pb2.ListJobsRequest())).jobs
            assert [j.job_id for j in listed] == [*ran, backlog[4]]
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.Get(jobs_pb2.GetJobRequest(job_id=backlog[0]))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND

    asyncio.run(main())
    fed.store.close()
    reopened = SqliteJobStore(db)
    assert sorted(j.spec.name for j in reopened.load()) == ["backlog-4", "ran-0", "ran-1"]
    reopened.close()


def test_users_md_says_how_much_history_get_jobs_keeps() -> None:
    """H16: the bound was in `serve --help` and operators.md only; users read the `get jobs` section."""
    text = USERS_MD.read_text()
    said = " ".join(text[text.index("**How much history `get jobs` keeps.**"):].split("\n\n")[0].split())
    assert DEFAULT_FINISHED_JOB_TTL == 7 * DAY and "**a week**" in said
    assert f"**{DEFAULT_MAX_FINISHED_PER_USER}**" in said and DEFAULT_USAGE_RETENTION == 90 * DAY and "90 days" in said
    for words in ("--finished-job-ttl", "--max-finished-jobs-per-user", "never ran go first", "usage --by job",
                  "--usage-retention"):
        assert words in said, words


def test_a_removed_job_is_gone_from_get_list_watch_and_the_store_and_its_usage_stays(tmp_path: Path) -> None:
    db = tmp_path / "federator.db"
    clock = Clock()
    fed = Federator(store=SqliteJobStore(db), clock=clock)
    usage = SqliteUsageStore(db)
    retention = Retention(fed, RetentionPolicy(ttl_seconds=DAY, max_per_owner=2))
    ids: list[str] = []

    async def main() -> None:
        async with job_api(fed) as api:
            for i in range(4):
                job = (await api.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec(f"j{i}", gpus=0)),
                                                               request_id=f"req-{i}"))).job
                usage.put([UsageRecord(f"{job.job_id}.g1.c", job.job_id, "default", "anonymous", "default", "c",
                                       "", "m", 1000, clock.now, clock.now + 1)])
                await api.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id))
                ids.append(job.job_id)
                clock.now += 1
            watch = api.Watch(jobs_pb2.WatchJobsRequest(job_id=ids[0]))
            assert (await watch.read()).job_id == ids[0]
            assert sorted(await retention.sweep()) == sorted(ids[:2])  # over the count: the two oldest
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await watch.read()
            assert err.value.code() == grpc.StatusCode.NOT_FOUND and "removed" in (err.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.Get(jobs_pb2.GetJobRequest(job_id=ids[0]))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert [j.job_id for j in (await api.List(jobs_pb2.ListJobsRequest())).jobs] == ids[2:]
            clock.now += DAY
            assert sorted(await retention.sweep()) == sorted(ids[2:])  # past the TTL
            assert (await api.List(jobs_pb2.ListJobsRequest())).jobs == []
            # the name and request id are free again (run_again not needed: the job is gone)
            again = await api.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("j0", gpus=0)),
                                                            request_id="req-0"))
            assert not again.replayed and again.job.job_id not in ids

    asyncio.run(main())
    fed.store.close()
    reopened = SqliteJobStore(db)
    assert [j.spec.name for j in reopened.load()] == ["j0"]
    reopened.close()
    assert sorted(r.job_id for r in usage.query(since=0, until=clock.now + 10)) == sorted(ids)
    usage.close()


def test_a_job_whose_templates_weigh_over_512_kib_is_refused_naming_the_field() -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    big = json.dumps({"metadata": {"annotations": {"x": "y" * (600 << 10)}}, "spec": {"containers": []}})

    async def main() -> None:
        async with job_api(fed) as api:
            pb = convert.spec_to_pb(spec("big", gpus=0))
            pb.pod_template_json = big
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.Submit(jobs_pb2.SubmitRequest(spec=pb))
            said = err.value.details() or ""
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, said
            assert said.startswith("spec.template: ") and "524288" in said, said

    asyncio.run(main())
    assert fed.jobs == {}


def test_the_loop_goes_on_while_finished_jobs_are_deleted(tmp_path: Path) -> None:
    """The sweep deleted on the event loop: with a national backlog's writes queued before it, no Get, report or
    cycle ran until the store was done. Here the store's delete waits until the loop has answered a Get."""
    answered = threading.Event()
    deleting = threading.Event()

    class SlowDelete(SqliteJobStore):
        def delete(self, job_ids: list[JobId]) -> None:
            deleting.set()
            answered.wait(10)  # on the loop, this waited the whole 10 s, and the Get came after
            super().delete(job_ids)

    clock = Clock()
    fed = Federator(store=SlowDelete(tmp_path / "federator.db"), clock=clock)
    retention = Retention(fed, RetentionPolicy(ttl_seconds=DAY, max_per_owner=0))
    old = fed.submit(spec("old", gpus=0))
    fed.cancel(old.job_id)
    kept = fed.submit(spec("kept", gpus=0))
    clock.now += DAY + 1

    async def main() -> None:
        sweep = asyncio.get_running_loop().create_task(retention.sweep())
        while not deleting.is_set():
            await asyncio.sleep(0.01)
        assert fed.get(old.job_id) is old and not sweep.done()  # still there while its delete is under way
        answered.set()
        assert await sweep == [old.job_id]
        assert set(fed.jobs) == {kept.job_id}

    asyncio.run(main())
    fed.store.close()
