"""What a removed job leaves behind (outside QA, soak S5 and S6): a drained 6-minute churn left index entries of
placements whose jobs were all gone, and a parked queue's empty set per queue name ever used."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from server_support import LEASE, LOST_AFTER, Clock, join, spec

from federator.model import JobId, JobPhase, Reason, ReasonCode
from federator.server.federator import Federator
from federator.server.parking import ParkingLot
from federator.server.retention import Retention, RetentionPolicy
from federator.store import SqliteJobStore


def test_a_removed_job_leaves_no_placement_of_an_earlier_attempt_in_the_index(tmp_path: Path) -> None:
    clock = Clock()
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=clock, lease_seconds=LEASE,
                    lost_after_seconds=LOST_AFTER)
    join(fed, "east-1")
    join(fed, "west-1")
    job = fed.submit(spec("gang"))
    attempts = []
    for _ in range(3):  # refused twice, placed a third time: three placements, two of them superseded
        fed.schedule_once()
        (p,) = job.placements
        attempts.append(p.placement_id)
        rec = fed.clusters[p.cluster]
        if len(attempts) < 3:
            fed.refused(rec, p.placement_id, "no room after all")
            clock.now += 120  # past the refusal's avoidance
    fed.acked(rec, p.placement_id)
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "running")
    fed.job_update(rec, p.placement_id, JobPhase.SUCCEEDED, "done")
    assert job.phase is JobPhase.SUCCEEDED and len(set(attempts)) == 3
    assert sorted(fed.placement_index) == sorted(attempts)  # kept while the job lives (server/orphans.py)
    clock.now += 10
    removed = asyncio.run(Retention(fed, RetentionPolicy(ttl_seconds=1, max_per_owner=0)).sweep())
    assert removed == [job.job_id] and fed.jobs.get(job.job_id) is None
    assert fed.placement_index == {}
    fed.store.close()


def test_parked_jobs_hold_nothing_for_a_queue_once_its_jobs_are_gone() -> None:
    lot = ParkingLot()
    full = Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "no room")
    for i in range(100):  # a hundred queue names (a user's to choose), each with one parked job
        lot.park(JobId(f"j{i}"), replace(spec(f"j{i}"), queue=f"org-{i:03d}"), full)
    assert len(lot) == 100
    for i in range(50):  # brought back by a cycle or a change of room
        lot.unpark(JobId(f"j{i}"))
    for i in range(50, 100):  # a job of the queue ended: its quota may admit the others
        lot.queue_released(f"org-{i:03d}")
    assert len(lot) == 0
    assert len(lot._by_queue) == 0  # no empty set per queue name ever parked
