"""Watch streams share one encoding of each job's state, and a crowd of new watchers takes its snapshots a few at
a time (server/watch_encodings.py; outside QA, scale F1: every stream encoded every job itself, on the loop that
serves Submit and the agents, so 32 streams cut Submit fourfold).

Over real gRPC on loopback, as tests/server/test_watch_without_copies.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from server_support import Clock, job_api, read_watch, spec, submit_request

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.model import Job, JobId
from federator.security.auth import Authenticator
from federator.security.limits import Limits
from federator.server import watch_encodings
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.server.watch_encodings import JobEncodings
from federator.store import SqliteJobStore


def test_a_jobs_state_is_encoded_once_per_change_while_fresh_and_the_oldest_encodings_leave() -> None:
    newest: dict[JobId, int] = {}
    now = [0.0]
    a, b, c = (Job(job_id=JobId(n), spec=spec(n), submitted_at=0.0) for n in "abc")
    room = sum(len(JobEncodings(lambda _: 0).of(job).data) for job in (b, c))  # room for b's and c's, no more
    encodings = JobEncodings(lambda job_id: newest.get(job_id, 0), size=room, fresh_seconds=5.0,
                             clock=lambda: now[0])
    first = encodings.of(a)
    assert encodings.of(a) is first and encodings.made == 1  # the same state, shared
    assert types_pb2.Job.FromString(first.data).job_id == "a" and first.message() is not first.message()
    a.message = "moved on"
    newest[a.job_id] = 7  # its change is recorded: a new encoding, of the new state
    assert encodings.of(a).message().message == "moved on" and encodings.made == 2
    a.message = "not recorded"  # a change never announced is shown once the encoding is no longer fresh
    now[0] = 4.9
    assert encodings.of(a).message().message == "moved on"
    now[0] = 5.0
    assert encodings.of(a).message().message == "not recorded" and encodings.made == 3
    encodings.of(b), encodings.of(c)  # a, the oldest, leaves: b and c fill the room
    made = encodings.made
    encodings.of(c), encodings.of(b)
    assert encodings.made == made and encodings.held_bytes == room
    encodings.of(a)  # made again; c, now the oldest, leaves to make room (b too: a's state is the longer)
    assert encodings.made == made + 1 and encodings.held_bytes <= room
    encodings.forget(b.job_id)
    encodings.of(b)
    assert encodings.made == made + 2


def test_streams_watching_the_same_backlog_encode_each_job_once_not_once_per_stream(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=Clock())
    encoded: list[str] = []
    to_pb = convert.job_to_pb

    def counted(job: Job) -> types_pb2.Job:
        encoded.append(job.job_id)
        return to_pb(job)

    async def main() -> None:
        async with job_api(fed) as api:
            ids = [(await api.Submit(submit_request(f"j{i}"))).job.job_id for i in range(30)]
            monkeypatch.setattr(convert, "job_to_pb", counted)
            watches = [api.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True)) for _ in range(4)]
            for watch in watches:
                got = await read_watch(watch, 31)
                assert sorted(m.job_id for m in got[:30]) == sorted(ids) and got[30].bookmark
                assert {m.revision for m in got} == {got[30].revision}  # each stream's own revision, set on its copy
            fed.jobs[JobId(ids[0])].message = "moved on"
            fed.notify([fed.jobs[JobId(ids[0])]])
            for watch in watches:
                (then,) = await read_watch(watch, 1)
                assert (then.job_id, then.message) == (ids[0], "moved on")
                watch.cancel()

    asyncio.run(main())
    fed.store.close()
    assert len(encoded) == 31  # 30 jobs once for four snapshots, and the change once for four streams


def test_a_watcher_waiting_for_its_snapshot_turn_holds_its_seat_until_it_leaves_and_others_are_not_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No turn free (as if SNAPSHOTS streams were sending theirs): a whole view's Watch waits, sending nothing;
    a Watch of one job and a resume do not wait for a snapshot turn; leaving while waiting gives the seat back
    (at most three seats here: a fourth stream is let in once the waiting one left)."""
    monkeypatch.setattr(watch_encodings, "SNAPSHOTS", 0)
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=Clock(), limits=Limits(max_watches_per_user=3))

    async def main() -> None:
        async with job_api(fed) as api:
            job_id = (await api.Submit(submit_request("one"))).job.job_id
            waiting = api.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True))
            read = asyncio.ensure_future(waiting.read())
            one = api.Watch(jobs_pb2.WatchJobsRequest(job_id=job_id))
            assert (await read_watch(one, 1))[0].job_id == job_id
            resumed = api.Watch(jobs_pb2.WatchJobsRequest(since_revision=fed.history.revision))
            fed.jobs[JobId(job_id)].message = "moved on"
            fed.notify([fed.jobs[JobId(job_id)]])
            assert (await read_watch(resumed, 1))[0].message == "moved on"
            assert (await read_watch(one, 1))[0].message == "moved on"
            assert not read.done()  # still waiting for a turn: nothing sent
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await read
            for _ in range(100):  # the seat comes back once the server sees the cancel
                fourth = api.Watch(jobs_pb2.WatchJobsRequest(job_id=job_id))
                try:
                    (got,) = await read_watch(fourth, 1)
                    break
                except grpc.aio.AioRpcError as err:
                    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                    await asyncio.sleep(0.02)
            assert got.job_id == job_id
            for watch in (one, resumed, fourth):
                watch.cancel()

    asyncio.run(main())
    fed.store.close()


def test_a_snapshot_turn_is_taken_and_given_back_so_later_watchers_get_theirs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One turn (SNAPSHOTS 1): three watchers each get their whole snapshot, one after another, while the first
    stays open: a stream gives its turn back once its snapshot is sent, not when it ends."""
    monkeypatch.setattr(watch_encodings, "SNAPSHOTS", 1)
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=Clock())

    async def main() -> None:
        async with job_api(fed) as api:
            for i in range(5):
                await api.Submit(submit_request(f"j{i}"))
            watches = [api.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True)) for _ in range(3)]
            for watch in watches:
                assert (await read_watch(watch, 6))[5].bookmark
            for watch in watches:
                watch.cancel()

    asyncio.run(main())
    fed.store.close()


def test_a_client_that_stops_reading_gives_its_snapshot_turn_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside QA re-test of scale F1: four clients that stopped reading held the four turns for as long as they
    stayed connected, and no other user's Watch got its snapshot. One turn here, and a client that reads one
    message of a snapshot of 4 MB and stops, on a channel with small windows (its stream's writes wait on it):
    the next watcher still gets its whole snapshot."""
    monkeypatch.setattr(watch_encodings, "SNAPSHOTS", 1)
    monkeypatch.setattr(watch_encodings, "STALLED_SECONDS", 0.3)
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=Clock())
    for i in range(400):
        fed.submit(replace(spec(f"j{i}", gpus=0), annotations=(("note", "x" * 10_000),)))

    async def main() -> None:
        server = grpc.aio.server()
        jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, Authenticator(insecure=True)), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        small = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 16_384)]
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=small) as slow, \
                    grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                stalled = jobs_pb2_grpc.JobServiceStub(slow).Watch(jobs_pb2.WatchJobsRequest())
                await read_watch(stalled, 1)  # it took the turn; it reads no more
                await asyncio.sleep(1.0)
                watch = jobs_pb2_grpc.JobServiceStub(ch).Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True))
                got = await read_watch(watch, 401)
                assert len({m.job_id for m in got[:400]}) == 400 and got[400].bookmark
                watch.cancel(), stalled.cancel()
        finally:
            await server.stop(0)

    asyncio.run(main())
    fed.store.close()
