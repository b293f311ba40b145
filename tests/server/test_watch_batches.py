"""JobService.WatchBatches (server/watch_stream.py `batches`): Watch's stream several Jobs a message, so that a
snapshot costs the event loop a turn per batch, not per job.

Soak finding S7: a Watch snapshot of 30,000 jobs took 10 minutes on a loaded federator, one message per job, and
each message a write that waits at least one turn of the loop (its completion comes from gRPC core through the
loop). Counted here in writes, not time: a spinning task's count of loop turns measured the machine's load as
much as the stream (8,334 turns for Watch's 601 messages, 12 to 762 for WatchBatches' 3 on a loaded machine);
`bench/soak.py --loop-hog-ms 40 --watch-batches` measures it on a loaded loop (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from server_support import Clock, job_api, spec

from federator.api.v1 import jobs_pb2
from federator.model import JobId
from federator.server.federator import Federator
from federator.server.watch_stream import BATCH_JOBS
from federator.store import SqliteJobStore

JOBS = 600


def _key(pb: object) -> tuple[str, int, bool]:
    return pb.job_id, pb.revision, pb.bookmark  # type: ignore[attr-defined]


def test_a_snapshot_costs_a_turn_per_batch_and_the_stream_is_watchs_in_the_same_order(tmp_path: Path) -> None:
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=Clock())
    for i in range(JOBS):
        fed.submit(spec(f"j{i:04d}", gpus=0))

    async def main() -> tuple[list[tuple[str, int, bool]], list[list[tuple[str, int, bool]]],
                              list[tuple[str, int, bool]]]:
        request = jobs_pb2.WatchJobsRequest(send_bookmarks=True)
        async with job_api(fed) as api:
            one_by_one: list[tuple[str, int, bool]] = []
            stream = api.Watch(request)
            async with asyncio.timeout(60):
                while not one_by_one or not one_by_one[-1][2]:  # to the bookmark
                    one_by_one.append(_key(await stream.read()))
            stream.cancel()

            batched: list[list[tuple[str, int, bool]]] = []
            stream = api.WatchBatches(request)
            async with asyncio.timeout(60):
                while not batched or not batched[-1][-1][2]:
                    batched.append([_key(pb) for pb in (await stream.read()).jobs])
            # a change after the snapshot comes in a batch of its own, without waiting for more
            job = fed.jobs[JobId(one_by_one[0][0])]
            job.message = "waiting: changed"
            fed.notify([job])
            async with asyncio.timeout(60):
                after = [_key(pb) for pb in (await stream.read()).jobs]
            stream.cancel()
        return one_by_one, batched, after

    one_by_one, batched, after = asyncio.run(main())
    fed.store.close()
    assert len(one_by_one) == JOBS + 1  # every job, then the bookmark: a write each
    assert [m for b in batched for m in b] == one_by_one  # the same messages, the same order and revisions
    assert all(0 < len(b) <= BATCH_JOBS for b in batched)
    assert len(batched) == -(-(JOBS + 1) // BATCH_JOBS)  # 3 writes for 601 messages: full batches, the rest
    assert [(job_id, bookmark) for job_id, _, bookmark in after] == [(one_by_one[0][0], False)]
    assert after[0][1] > one_by_one[-1][1]  # at its change's revision, past the bookmark's
