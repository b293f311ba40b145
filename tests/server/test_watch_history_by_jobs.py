"""The Watch history is bounded by jobs, not by changes (outside QA, soak S1).

In a soak with 30,000 parked jobs on 100 clusters their pending reasons were told again at 1,500 to 2,000 changes a
second (server/reason_refresh.py: "70 waiting jobs of queue research" became 72), so a history of the last 50,000
changes held half a minute: four Watch streams whose 30,000-job snapshot took ten minutes were ended "fell too far
behind", and their resumes were OUT_OF_RANGE, again and again. A change of a job whose newer change is held says
nothing a watcher needs (the stream reads the job's state when it sends it), so only the newest change of each job
is kept: a cursor is lost once more than `size` jobs changed after it, however often each did.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from server_support import Clock, job_api, read_watch, spec, submit_request

from federator.api.v1 import jobs_pb2
from federator.model import Job, JobId
from federator.server.federator import Federator
from federator.server.watch_history import WatchHistory
from federator.store import SqliteJobStore


def test_a_cursor_stays_held_while_few_jobs_change_often_and_the_history_stays_bounded() -> None:
    history = WatchHistory(start=1_000, size=10)
    jobs = {JobId(n): Job(job_id=JobId(n), spec=spec(n), submitted_at=0.0) for n in ("a", "b", "c")}
    for _ in range(1_000):  # 3,000 changes: 300 times the history's size, three jobs
        history.record(jobs.values(), jobs)
    assert history.revision == 4_000
    assert history.held(1_000)  # every job changed after it is still answered for
    latest = {c.job_id: c.revision for c in history.after(1_000, limit=100_000)
              if history.newest(c.job_id) == c.revision}
    assert latest == {"a": 3_998, "b": 3_999, "c": 4_000}
    assert history.kept <= 2 * 3 + 10  # superseded changes are compacted away: twice the live ones and a little
    others = {JobId(f"j{i}"): Job(job_id=JobId(f"j{i}"), spec=spec(f"j{i}"), submitted_at=0.0) for i in range(10)}
    history.record(others.values(), others | jobs)  # ten more jobs change: a, b and c's newest leave
    assert not history.held(1_000) and not history.held(3_999) and history.held(4_000)
    assert [history.newest(JobId(n)) for n in "abc"] == [0, 0, 0] and history.kept <= 2 * 10 + 10


def test_a_watch_resumes_after_one_jobs_reason_was_told_more_times_than_the_history_holds(tmp_path: Path) -> None:
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=Clock())
    fed.history.size = 3  # 50,000 in a server; 3 here, so that 20 changes of one job pass it

    async def main() -> list[tuple[str, str, bool]]:
        async with job_api(fed) as api:
            a, b = [(await api.Submit(submit_request(n))).job.job_id for n in ("a", "b")]
            since = fed.history.revision
            for i in range(20):  # a parked job told a new reason again and again
                job = fed.jobs[JobId(a)]
                job.message = f"waiting: {i} jobs of its queue go first"
                fed.notify([job])
            got = await read_watch(api.Watch(jobs_pb2.WatchJobsRequest(since_revision=since,
                                                                       send_bookmarks=True)), 2)
            return [(m.job_id, m.message, m.bookmark) for m in got]

    got = asyncio.run(main())
    fed.store.close()
    a = next(j for j in fed.jobs if j.startswith("a"))
    assert got == [(a, "waiting: 19 jobs of its queue go first", False), ("", "", True)]
