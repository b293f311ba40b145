"""A Watch a client can resume, over real gRPC on loopback (outside QA, portal M2, m7, m9): revisions, the
bookmark that ends the snapshot, a resume that sends exactly what was missed (removals too), OUT_OF_RANGE for a
revision the federator no longer holds, a limit on open streams per user, and the old stream for old clients."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from server_support import Clock, job_api, read_watch, submit_request

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.model import JobPhase
from federator.security.limits import Limits
from federator.server.federator import Federator
from federator.server.retention import Retention, RetentionPolicy
from federator.server.watch_seats import Seats
from federator.store import SqliteJobStore

DAY = 24 * 3600.0


@dataclass
class Bed:
    clock: Clock
    fed: Federator
    retention: Retention  # a day's TTL, one finished job kept per owner: a sweep removes the older


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    """A federator on a store file with a retention that removes jobs: what a resumed Watch must be told of."""
    clock = Clock()
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=clock)
    yield Bed(clock, fed, Retention(fed, RetentionPolicy(ttl_seconds=DAY, max_per_owner=1)))
    fed.store.close()


def _seen(msgs: list[types_pb2.Job]) -> list[tuple[str, str]]:
    """Each message as (what, job): a bookmark, a removal, or a job's phase."""
    return [("bookmark", "") if m.bookmark else ("removed", m.job_id) if m.removed else
            (types_pb2.JobPhase.Name(m.phase).removeprefix("JOB_PHASE_"), m.job_id) for m in msgs]


def test_a_resume_after_a_cut_sends_exactly_the_changes_missed_removals_too(bed: Bed) -> None:
    clock, fed, retention = bed.clock, bed.fed, bed.retention

    async def main() -> None:
        async with job_api(fed) as api:
            ids = [(await api.Submit(submit_request(n))).job.job_id for n in ("a", "b", "c", "d")]
            watch = api.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True))
            snapshot = await read_watch(watch, 5)
            # The snapshot, then the bookmark that says it is complete: only a revision, no job.
            assert [m.job_id for m in snapshot[:4]] == ids and snapshot[4].bookmark
            assert snapshot[4].job_id == "" and snapshot[4].revision > 0
            assert {m.revision for m in snapshot[:4]} == {snapshot[4].revision}
            resume_at = snapshot[4].revision
            watch.cancel()  # the portal's connection drops

            clock.now += 1
            await api.Cancel(jobs_pb2.CancelJobRequest(job_id=ids[2]))  # c finishes first ...
            clock.now += 1
            await api.Cancel(jobs_pb2.CancelJobRequest(job_id=ids[1]))  # ... then b
            e = (await api.Submit(submit_request("e"))).job.job_id
            assert await retention.sweep() == [ids[2]]  # one finished job per owner: c, finished first, goes

            again = api.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True, since_revision=resume_at))
            missed = await read_watch(again, 4)
            # No snapshot: b cancelled, e new, c removed (its cancel is not sent: it is gone), then the bookmark.
            assert _seen(missed) == [("CANCELLED", ids[1]), ("PENDING", e), ("removed", ids[2]), ("bookmark", "")]
            revisions = [m.revision for m in missed]
            assert resume_at < revisions[0] < revisions[1] < revisions[2] <= revisions[3] == fed.history.revision
            assert missed[2].spec.name == "" and not missed[2].HasField("spec")  # a removal carries only its id

            await api.Cancel(jobs_pb2.CancelJobRequest(job_id=ids[0]))  # and live changes go on, numbered
            (live,) = await read_watch(again, 1)
            assert _seen([live]) == [("CANCELLED", ids[0])] and live.revision > revisions[3]
            again.cancel()

    asyncio.run(main())


def test_a_revision_the_federator_no_longer_holds_is_out_of_range_and_says_list_again(tmp_path: Path) -> None:
    clock = Clock()
    db = tmp_path / "f.db"
    fed = Federator(store=SqliteJobStore(db), clock=clock)
    fed.history.size = 3  # 50,000 in a server; 3 here, so that 5 changes pass it

    async def code_of(api: jobs_pb2_grpc.JobServiceStub, since: int) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await read_watch(api.Watch(jobs_pb2.WatchJobsRequest(since_revision=since)), 1)
        return err.value.code(), err.value.details() or ""

    async def main() -> int:
        async with job_api(fed) as api:
            start = fed.history.revision
            for i in range(5):
                await api.Submit(submit_request(f"j{i}"))
            code, details = await code_of(api, start + 1)
            assert code == grpc.StatusCode.OUT_OF_RANGE, details
            assert "too old" in details and "list again" in details and "50000" not in details
            code, details = await code_of(api, fed.history.revision + 7)  # never issued
            assert code == grpc.StatusCode.OUT_OF_RANGE and "not a revision this federator issued" in details
            code, details = await code_of(api, -1)
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("since_revision: ")
            held = fed.history.revision - 3  # the oldest still held: the 3 changes after it come
            got = await read_watch(api.Watch(jobs_pb2.WatchJobsRequest(since_revision=held)), 3)
            assert [m.spec.name for m in got] == ["j2", "j3", "j4"]
            return fed.history.revision

    last = asyncio.run(main())
    fed.store.close()
    # A restart begins a new history: no revision of the run before is a resume point, and its jobs are kept.
    clock.now += 5
    restarted = Federator(store=SqliteJobStore(db), clock=clock)
    assert restarted.history.base > last

    async def after_restart() -> None:
        async with job_api(restarted) as api:
            code, details = await code_of(api, last)
            assert code == grpc.StatusCode.OUT_OF_RANGE and "before this federator started" in details
            got = await read_watch(api.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True)), 6)
            assert [m.spec.name for m in got[:5]] == [f"j{i}" for i in range(5)] and got[5].bookmark

    asyncio.run(after_restart())
    restarted.store.close()


def test_an_old_style_watch_sees_the_stream_it_saw_before(bed: Bed) -> None:
    """No revision, no bookmark, no removal: the bytes of each message are the job's, as before the fields."""
    clock, fed, retention = bed.clock, bed.fed, bed.retention

    async def main() -> None:
        async with job_api(fed) as api:
            ids = [(await api.Submit(submit_request(n))).job.job_id for n in ("a", "b")]
            watch = api.Watch(jobs_pb2.WatchJobsRequest())
            snapshot = await read_watch(watch, 2)
            assert [m.SerializeToString(deterministic=True) for m in snapshot] == \
                [convert.job_to_pb(fed.jobs[i]).SerializeToString(deterministic=True) for i in ids]
            await api.Cancel(jobs_pb2.CancelJobRequest(job_id=ids[0]))
            assert _seen(await read_watch(watch, 1)) == [("CANCELLED", ids[0])]  # straight after the snapshot
            clock.now += 1
            await api.Cancel(jobs_pb2.CancelJobRequest(job_id=ids[1]))
            assert _seen(await read_watch(watch, 1)) == [("CANCELLED", ids[1])]
            assert await retention.sweep() == [ids[0]]  # removed: an old client hears nothing of it
            c = (await api.Submit(submit_request("c"))).job.job_id
            got = await read_watch(watch, 1)
            assert _seen(got) == [("PENDING", c)]  # the next message is the next change, not a removal
            assert all(m.revision == 0 and not m.bookmark and not m.removed for m in got)

    asyncio.run(main())


def test_a_watch_of_one_job_ends_after_its_removal_and_resumes_for_that_job_alone(bed: Bed) -> None:
    clock, fed, retention = bed.clock, bed.fed, bed.retention

    async def main() -> None:
        async with job_api(fed) as api:
            a, b = [(await api.Submit(submit_request(n))).job.job_id for n in ("a", "b")]
            watch = api.Watch(jobs_pb2.WatchJobsRequest(job_id="default/a", send_bookmarks=True))
            first, mark = await read_watch(watch, 2)
            assert first.job_id == a and mark.bookmark
            await api.Cancel(jobs_pb2.CancelJobRequest(job_id=b))  # another job's change: not sent
            clock.now += 1
            await api.Cancel(jobs_pb2.CancelJobRequest(job_id=a))
            (done,) = await read_watch(watch, 1)
            assert (done.job_id, done.phase) == (a, types_pb2.JOB_PHASE_CANCELLED)  # open still: it may be removed
            assert fed.jobs[a].phase is JobPhase.CANCELLED
            assert await retention.sweep() == [b]  # b finished first
            clock.now += 1
            await api.Cancel(jobs_pb2.CancelJobRequest(job_id=(await api.Submit(submit_request("c"))).job.job_id))
            assert await retention.sweep() == [a]
            (gone,) = await read_watch(watch, 1)
            assert (gone.job_id, gone.removed) == (a, True)
            async with asyncio.timeout(10):
                assert await watch.read() is grpc.aio.EOF
            assert await watch.code() == grpc.StatusCode.OK

    asyncio.run(main())


def test_one_user_may_hold_only_so_many_watches_open_and_a_closed_one_frees_its_seat(tmp_path: Path) -> None:
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=Clock(), limits=Limits(max_watches_per_user=2))

    async def main() -> None:
        async with job_api(fed) as api:
            await api.Submit(submit_request("a"))
            one, two = (api.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True)) for _ in range(2))
            await read_watch(one, 2)
            await read_watch(two, 2)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await read_watch(api.Watch(jobs_pb2.WatchJobsRequest()), 1)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            said = err.value.details() or ""
            assert "user 'anonymous' has 2 Watch streams open, the most one user may hold (2, --max-watches-per-user)" \
                in said, said
            one.cancel()
            async with asyncio.timeout(10):
                while True:  # the server hears of the cancel a moment later
                    try:
                        await read_watch(api.Watch(jobs_pb2.WatchJobsRequest()), 1)
                        break
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                        await asyncio.sleep(0.05)

    asyncio.run(main())
    fed.store.close()


def test_seats_are_counted_per_user_and_0_is_no_cap() -> None:
    seats = Seats(1)
    assert seats.take("alice") is None and seats.take("bob") is None
    assert "user 'alice' has 1 Watch streams open" in (seats.take("alice") or pytest.fail()).details
    seats.give_back("alice")
    assert seats.take("alice") is None
    unbounded = Seats(0)
    assert all(unbounded.take("alice") is None for _ in range(100))
    with pytest.raises(ValueError, match="^limits.max_watches_per_user: must be 0 .no cap. or more, got -1$"):
        Limits(max_watches_per_user=-1)
