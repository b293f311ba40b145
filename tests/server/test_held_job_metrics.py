"""A held job is counted under its reason, Held, and left out of the oldest-pending age (server/state_sample.py).

A job its owner or an admin held waits because they said so, for as long as they like (server/job_holds.py): counted
in the age FederatorJobsPendingTooLong alerts on, one job held over a weekend fired the alert for its queue, and the
runbook's advice (add capacity, shrink the job) does not apply to it.
"""

from __future__ import annotations

import asyncio

from server_support import Clock, MemoryStore, job_api, make

from federator.api.v1 import jobs_pb2
from federator.metrics import Metrics
from federator.server.state_sample import state_sample

from builders import job


def _samples(metrics: Metrics, name: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels.values()): s.value for f in metrics.registry.collect() if f.name == name
            for s in f.samples}


def test_a_held_job_is_counted_as_held_and_left_out_of_the_oldest_pending_age() -> None:
    clock, metrics = Clock(), Metrics()
    fed = make(MemoryStore(), clock, metrics=metrics)
    metrics.watch_state(lambda: state_sample(fed))
    held = fed.submit(job("held", gpus=8, models=("H100",)))  # no cluster: both wait
    clock.now += 600
    fed.submit(job("waits", gpus=8, models=("H100",)))

    async def scenario() -> None:
        async with job_api(fed) as jobs:  # held and released as a user does: `federator hold` / `release`
            await jobs.Hold(jobs_pb2.HoldJobRequest(job_id=held.job_id))
            fed.schedule_once()
            clock.now += 100
            assert _samples(metrics, "federator_oldest_pending_job_age_seconds") == {("default",): 100.0}  # not 700
            pending = _samples(metrics, "federator_pending_jobs")
            assert pending[("default", "Held")] == 1.0
            await jobs.Release(jobs_pb2.ReleaseJobRequest(job_id=held.job_id))
            assert _samples(metrics, "federator_oldest_pending_job_age_seconds") == {("default",): 700.0}

    asyncio.run(scenario())
