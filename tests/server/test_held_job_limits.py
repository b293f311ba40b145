"""Held jobs count toward the federator's pending cap (--max-pending-jobs), as toward a user's and a queue's.

A held job is no scheduling candidate (server/job_holds.py), and the cap read the candidates: every job held and
left out of a cycle's plan made room for one more, so a tenant could keep any number waiting by holding them.
"""

from __future__ import annotations

import asyncio

import pytest
from server_support import Clock, MemoryStore, job_api, make

from federator.api.v1 import jobs_pb2
from federator.security.limits import Limits
from federator.server.intake import QueueFull

from builders import job


def test_held_jobs_count_toward_the_federators_pending_cap() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs=2, max_pending_jobs_per_queue=10,
                                                    max_pending_jobs_per_user=10))

    async def hold_both() -> None:
        async with job_api(fed) as jobs:  # held as a user holds them: `federator hold`, JobService.Hold
            for name in ("a", "b"):
                submitted = fed.submit(job(name, gpus=8, models=("H100",)))
                await jobs.Hold(jobs_pb2.HoldJobRequest(job_id=submitted.job_id))

    asyncio.run(hold_both())
    assert all(j.hold is not None for j in fed.jobs.values())
    fed.schedule_once()  # the held jobs leave the candidates
    assert fed.cycles.pending_count == 0
    with pytest.raises(QueueFull, match="2 jobs are pending, its limit is 2"):
        fed.submit(job("c", gpus=8, models=("H100",)))
