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
from server_support import Clock, job_api, spec

from federator.accounting import SqliteUsageStore, UsageRecord
from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.model import Job, JobId, JobPhase
from federator.security.authz import USER_ANNOTATION
from federator.server.federator import Federator
from federator.server.retention import Retention, RetentionPolicy, chosen
from federator.store import SqliteJobStore

DAY = 86_400.0


def _job(name: str, *, user: str = "alice", phase: JobPhase = JobPhase.SUCCEEDED, finished: float = 0.0) -> Job:
    s = spec(name, gpus=0)
    s = replace(s, annotations=tuple(sorted({**dict(s.annotations), USER_ANNOTATION: user}.items())))
    return Job(job_id=JobId(f"{name}-000000"), spec=s, submitted_at=finished - 1, phase=phase, finished_at=finished)


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
