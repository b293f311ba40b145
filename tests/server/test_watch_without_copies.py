"""A Watch sends each job's state once per change it has not sent, with no copy per watcher of what it sent
(server/watch_stream.py; 0.7.0 review: each stream kept every job's last sent bytes, O(jobs) per watcher).

Over real gRPC on loopback. What the copy did is now said by the shared history's revisions: a change of a job
whose newer change is recorded is skipped (the newer one sends the same state), and so is a change recorded while
the snapshot was sent, before that job's turn (the snapshot carried it); and a state announced after the stream
sent it (its write was on its way) is found among the stream's recent sends, a window of bounded size."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from server_support import Clock, job_api, read_watch, spec, submit_request

from federator.api import convert
from federator.api.v1 import jobs_pb2, types_pb2
from federator.model import Job, JobId
from federator.server import watch_stream
from federator.server.federator import Federator
from federator.server.watch_history import WatchHistory
from federator.server.watch_stream import RecentSends
from federator.store import SqliteJobStore


def _said(fed: Federator, job_id: str, message: str) -> None:
    """A change of the job, announced as the federator announces one."""
    fed.jobs[JobId(job_id)].message = message
    fed.notify([fed.jobs[JobId(job_id)]])


def test_a_job_changed_several_times_before_the_watcher_reads_is_sent_once_at_its_newest_revision(
        tmp_path: Path) -> None:
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=Clock())

    async def main() -> None:
        async with job_api(fed) as api:
            a, b, c = [(await api.Submit(submit_request(n))).job.job_id for n in ("a", "b", "c")]
            watch = api.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True))
            assert (await read_watch(watch, 4))[3].bookmark
            for said in ("one", "two", "three"):  # no await between: the stream reads them as one batch
                _said(fed, a, said)
            newest_of_a = fed.history.revision
            _said(fed, b, "b moved")
            _said(fed, c, "the end")  # the last: nothing may come between b and it
            got = await read_watch(watch, 3)
            assert [(m.job_id, m.message) for m in got] == [(a, "three"), (b, "b moved"), (c, "the end")]
            assert got[0].revision == newest_of_a
            watch.cancel()

    asyncio.run(main())
    fed.store.close()


@pytest.mark.parametrize("numbered", [True, False], ids=["numbered", "old-style"])
@pytest.mark.parametrize("announced", ["during-the-snapshot", "after-the-snapshot"])
def test_a_state_the_snapshot_sent_is_not_sent_again_when_its_change_isread_watch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, numbered: bool, announced: str) -> None:
    """Job c changes while the snapshot sends job a, and the snapshot sends c as it is then. During: the change is
    recorded then too, before c's turn (the snapshot carried it; shown with no window of recent sends, which
    would also catch it). After: it is announced only once the snapshot is sent, as when its write was on its
    way (a Submit's, a cycle's): the stream's recent sends know that state. Either way reading the change sends
    nothing more; a change of b made after b's turn is sent."""
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=Clock())
    to_pb = convert.job_to_pb
    during: list[str] = []
    ids: list[str] = []

    def snapshot_turn(job: Job) -> types_pb2.Job:
        if during and job.job_id == during[0]:
            during.clear()
            if announced == "during-the-snapshot":
                _said(fed, ids[2], "changed during the snapshot")  # before c's turn
            else:
                fed.jobs[JobId(ids[2])].message = "changed during the snapshot"  # its write on its way
        return to_pb(job)

    if announced == "during-the-snapshot":
        monkeypatch.setattr(watch_stream, "RecentSends", lambda: RecentSends(0))

    async def main() -> None:
        async with job_api(fed) as api:
            ids.extend([(await api.Submit(submit_request(n))).job.job_id for n in ("a", "b", "c")])
            a, b, c = ids
            monkeypatch.setattr(convert, "job_to_pb", snapshot_turn)
            during.append(a)
            watch = api.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=numbered))
            snapshot = await read_watch(watch, 4 if numbered else 3)
            assert [(m.job_id, m.message) for m in snapshot[:3]] == [
                (a, fed.jobs[JobId(a)].message), (b, fed.jobs[JobId(b)].message), (c, "changed during the snapshot")]
            assert not during  # the change was made, during a's turn
            if announced == "after-the-snapshot":
                fed.notify([fed.jobs[JobId(c)]])  # the write is done: announced
            _said(fed, b, "after the snapshot")
            (then,) = await read_watch(watch, 1)
            assert (then.job_id, then.message) == (b, "after the snapshot")  # not c again
            watch.cancel()

    asyncio.run(main())
    fed.store.close()


def test_the_newest_revision_of_a_job_is_known_while_its_change_is_held_and_forgotten_after() -> None:
    """WatchHistory.newest: what a watcher skips by. Shared by every watcher and bounded by jobs: the newest change
    of the last `size` jobs to change is held, and a job whose newest change is older than theirs is forgotten."""
    history = WatchHistory(start=100, size=3)
    jobs = {JobId(n): Job(job_id=JobId(n), spec=spec(n), submitted_at=0.0) for n in ("a", "b", "c", "d", "e")}
    history.record([jobs[JobId("a")], jobs[JobId("b")], jobs[JobId("a")]], jobs)
    assert (history.newest(JobId("a")), history.newest(JobId("b")), history.newest(JobId("c"))) == (103, 102, 0)
    history.record([jobs[JobId("c")], jobs[JobId("d")]], jobs)  # 104, 105: four jobs changed; b's 102 leaves
    assert (history.newest(JobId("a")), history.newest(JobId("b"))) == (103, 0)
    assert not history.held(101) and history.held(102)  # b's change after 101 is lost; after 102, a, c and d's held
    history.record([jobs[JobId("d")]], jobs)  # 106: still three jobs (a, c, d): a's 103 stays
    assert [history.newest(JobId(n)) for n in "abcd"] == [103, 0, 104, 106]
    history.record([jobs[JobId("e")]], jobs)  # 107: a fourth job; a's 103, the oldest newest change, leaves
    assert [history.newest(JobId(n)) for n in "abcde"] == [0, 0, 104, 106, 107]


def test_recent_sends_know_the_last_states_sent_and_forget_the_oldest_past_their_size() -> None:
    recent = RecentSends(2)
    assert not recent.again("a", b"one") and recent.again("a", b"one")
    assert not recent.again("a", b"two")  # a new state is sent, and known from now
    assert not recent.again("b", b"x") and not recent.again("c", b"y")  # a, the oldest, leaves
    assert not recent.again("a", b"two") and recent.again("c", b"y")


@pytest.mark.parametrize("numbered", [True, False], ids=["numbered", "old-style"])
@pytest.mark.parametrize(("window", "again"), [(3, False), (2, True)], ids=["within-the-window", "past-the-window"])
def test_a_state_sent_before_its_announcement_comes_again_only_past_the_streams_window(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, numbered: bool, window: int, again: bool) -> None:
    """What jobs.proto's Watch says a client may see: job a changed in memory, its write on its way, when the
    snapshot sent it; two more jobs were sent before the change was announced. A stream remembers its last
    RECENT_SENDS states (here `window`): within it the announcement sends nothing; past it, a's state comes again,
    unchanged, at the announcement's revision. The real window is RECENT_SENDS."""
    monkeypatch.setattr(watch_stream, "RecentSends", lambda: RecentSends(window))
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=Clock())

    async def main() -> None:
        async with job_api(fed) as api:
            a, b, c = [(await api.Submit(submit_request(n))).job.job_id for n in ("a", "b", "c")]
            fed.jobs[JobId(a)].message = "placed, its write on its way"  # not announced yet
            watch = api.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=numbered))
            snapshot = await read_watch(watch, 4 if numbered else 3)
            assert [(m.job_id, m.message) for m in snapshot[:3]] == [
                (a, "placed, its write on its way"), (b, fed.jobs[JobId(b)].message), (c, fed.jobs[JobId(c)].message)]
            fed.notify([fed.jobs[JobId(a)]])  # the write is done: announced
            announced = fed.history.revision
            _said(fed, b, "after the snapshot")
            got = await read_watch(watch, 2 if again else 1)
            if again:
                assert (got[0].job_id, got[0].message) == (a, "placed, its write on its way")
                repeat = types_pb2.Job()
                repeat.CopyFrom(got[0])
                repeat.revision = snapshot[0].revision
                assert repeat == snapshot[0]  # the very state the snapshot sent
                assert got[0].revision == (announced if numbered else 0)
            assert (got[-1].job_id, got[-1].message) == (b, "after the snapshot")
            watch.cancel()

    asyncio.run(main())
    fed.store.close()


def test_the_window_of_recent_sends_is_the_one_jobs_proto_names() -> None:
    """The contract names the window a client may see a repeat past: the two must not drift apart."""
    text = (Path(__file__).resolve().parents[2] / "proto/federator/v1/jobs.proto").read_text()
    assert f"remembers only the\n// states of its last {watch_stream.RECENT_SENDS} messages" in text
