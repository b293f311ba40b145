"""A job's message is what its placements say now: a Running job does not keep the message it had while Placed."""

from __future__ import annotations

from server_support import Clock, MemoryStore, join, make, spec

from federator.model import JobPhase


def test_a_running_job_drops_the_message_it_had_while_placed() -> None:
    fed = make(MemoryStore(), Clock())
    rec = join(fed, "west-1")
    job = fed.submit(spec("train", gpus=8, replicas=2))
    fed.schedule_once()
    (p,) = job.placements
    fed.job_update(rec, p.placement_id, JobPhase.PLACED, "0 of 2 replicas running")
    assert (job.phase, job.message) == (JobPhase.PLACED, "0 of 2 replicas running")
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
    assert (job.phase, job.message) == (JobPhase.RUNNING, "")
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "2 of 2 replicas running")
    assert job.message == "2 of 2 replicas running"
