"""WAIT counts from when the replicas a job waits for were asked for: its submission, else its latest scale-up (or
the loss of a part), not from its submission (Job.waiting_since, model.waited).

Outside QA (an inference team): a service Running for 16 minutes and scaled up showed WAIT 16m for replicas it had
asked for seconds before. The wait's start is stored with the job, so a restart does not move it, and it reaches
the CLI over the wire (types.proto, Job.waiting_since)."""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, make
from test_partial_failover import inference, lose, spread_over_a_and_b

from federator.api import convert
from federator.cli.output import job_wait
from federator.model import JobPhase, waited
from federator.server.federator import Federator

SIXTEEN_MINUTES = 16 * 60.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _shown(job_id: str, fed: Federator, now: float) -> float:
    """WAIT as `federator get jobs` computes it, from the job as the API sends it."""
    job = fed.jobs[job_id]
    return job_wait(convert.job_from_pb(convert.job_to_pb(job)), now)


def test_the_replicas_of_a_scale_up_wait_from_the_scale_up(clock: Clock) -> None:
    store = MemoryStore()
    fed = make(store, clock)
    clock.now += 3.0
    job, a, b = spread_over_a_and_b(fed)  # submitted at 1003, placed at once
    assert _shown(job.job_id, fed, clock.now + 60) == 0.0  # placed in the cycle it was submitted in

    clock.now += SIXTEEN_MINUTES
    scaled_at = clock.now
    fed.scale(job.job_id, 10)  # room for 4 more on a and b: 2 wait for room
    assert job.replicas_waiting == 6 and job.waiting_since == scaled_at
    assert store.docs[job.job_id].waiting_since == scaled_at  # stored with the scaled spec
    assert _shown(job.job_id, fed, scaled_at + 5) == 5.0  # not 16 minutes and 5 seconds

    clock.now += 2.0
    fed.schedule_once()  # 4 of the 6 placed; 2 still wait, since the scale-up
    assert job.phase is JobPhase.RUNNING and job.replicas_waiting == 2
    assert _shown(job.job_id, fed, scaled_at + 30) == 30.0
    assert store.docs[job.job_id].waiting_since == scaled_at


def test_a_scale_up_placed_whole_shows_how_long_it_waited(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    clock.now += SIXTEEN_MINUTES
    fed.scale(job.job_id, 6)
    clock.now += 4.0
    fed.schedule_once()
    assert job.replicas_waiting == 0
    assert _shown(job.job_id, fed, clock.now + 600) == 4.0  # the scale-up's wait, done


def test_a_scale_up_of_a_pending_job_waits_on_from_its_submission(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job = fed.submit(inference("serve"))  # no cluster: Pending
    clock.now += 100
    fed.scale(job.job_id, 6)
    assert job.phase is JobPhase.PENDING and waited(job, clock.now) == 100.0


def test_the_replicas_of_a_lost_part_wait_from_its_loss(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    clock.now += SIXTEEN_MINUTES
    lose(fed, clock, a, b)  # a's part is placed again: no other cluster, so it waits
    assert job.phase is JobPhase.RUNNING and job.replicas_waiting == 2
    lost_at = job.waiting_since
    assert lost_at > job.submitted_at + SIXTEEN_MINUTES
    assert _shown(job.job_id, fed, lost_at + 7) == 7.0
