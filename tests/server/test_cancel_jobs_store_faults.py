"""CancelJobs when the store does not take a cancel: that job is FAILED with the store's words, the page ends at
it, nothing after it is tried, and the next page (its token) starts at that job, so a retry once the disk has room
goes on from there. Each cancel is the single Cancel's, durable first (server/cancel_jobs.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from full_disk import FullDisk
from server_support import job_api, spec

from federator.api.v1 import jobs_pb2
from federator.model import JobPhase
from federator.server.federator import Federator
from federator.store import SqliteJobStore

OUTCOME = jobs_pb2.CancelOutcome


def test_a_full_disk_ends_the_page_at_the_job_it_refused_and_the_retry_goes_on_from_there(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "f.db")
    fed, disk = Federator(store=store), FullDisk(store)
    jobs = [fed.submit(spec(f"j{i}")) for i in range(3)]

    async def scenario() -> tuple[jobs_pb2.CancelJobsResponse, jobs_pb2.CancelJobsResponse]:
        async with job_api(fed) as stub:
            disk.full = True
            first = await stub.CancelJobs(jobs_pb2.CancelJobsRequest(queue="default"))
            assert all(j.phase is JobPhase.PENDING for j in jobs)  # nothing changed, no agent told
            disk.full = False
            rest = await stub.CancelJobs(jobs_pb2.CancelJobsRequest(queue="default",
                                                                    page_token=first.next_page_token))
            return first, rest

    first, rest = asyncio.run(scenario())
    assert [(r.name, r.outcome) for r in first.results] == [("j0", OUTCOME.CANCEL_OUTCOME_FAILED)]
    assert first.results[0].message == "job store: database or disk is full; the job was not cancelled"
    assert first.next_page_token and first.matched == 3
    assert [(r.name, r.outcome) for r in rest.results] == [(f"j{i}", OUTCOME.CANCEL_OUTCOME_CANCELLED)
                                                           for i in range(3)]
    assert rest.operation_id == first.operation_id and rest.matched == 3 and not rest.next_page_token
    assert all(j.phase is JobPhase.CANCELLED for j in jobs)
    store.close()
