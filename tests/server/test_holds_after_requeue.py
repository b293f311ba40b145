"""A hold and a re-queue (server/job_holds.py, server/requeue.py): what a Slurm user expects of each order.

- A job held, released, placed, then re-queued (its cluster Lost) is placed again: a re-queue is Slurm's plain
  `scontrol requeue`, which does not hold the job again (`requeuehold` would; the federator has no such verb). The
  release was the user's word, and the re-queue is the federator's, not the user's.
- A job re-queued, and held while it waits to be placed again, stays held: its cluster coming back and reporting
  the superseded placement neither places it nor lets it go, and its reason stays Held; a release places it.
- A Hold refused while the job ran is the caller's answer, not kept: the re-queue holds nothing. (A FederatedJob's
  spec.held: true refused so is kept, since the object still says it: tests/kube/test_kube_hold_testbed.py.)
"""

from __future__ import annotations

import asyncio

import pytest
from server_support import LOST_AFTER, Clock, MemoryStore, join, make

from federator.model import Job, JobPhase, ReasonCode
from federator.server.federator import Federator
from federator.server.job_holds import Actor, HoldRefused, hold_async, release_async

from builders import job


def hold(fed: Federator, j: Job, actor: Actor) -> Job:
    """JobService.Hold's path (server/hold_calls.py), its write awaited as the call awaits it."""
    return asyncio.run(hold_async(fed, j, actor))


def release(fed: Federator, j: Job, actor: Actor) -> Job:
    return asyncio.run(release_async(fed, j, actor))


def test_a_released_job_requeued_runs_again_unheld() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    west = join(fed, "west-1")
    j = fed.submit(job("a", gpus=8))
    hold(fed, fed.jobs[j.job_id], Actor("alice"))
    fed.schedule_once()
    a = fed.jobs[j.job_id]
    assert a.phase is JobPhase.PENDING and a.hold is not None
    release(fed, a, Actor("alice"))
    fed.schedule_once()
    assert a.phase is JobPhase.PLACED and a.placements[0].cluster == "west-1"
    with pytest.raises(HoldRefused):  # a placed job is not held, and the refusal is not remembered
        hold(fed, a, Actor("alice"))
    fed.disconnect(west)
    clock.now += LOST_AFTER + 1
    fed.check_leases()  # west-1 Lost: the job is re-queued
    join(fed, "east-1")
    assert a.phase is JobPhase.PENDING and a.hold is None
    assert a.pending_reason is not None and a.pending_reason.code is not ReasonCode.HELD
    fed.schedule_once()
    assert a.phase is JobPhase.PLACED and a.placements[-1].cluster == "east-1"  # not held again


def test_a_job_held_after_a_requeue_stays_held_until_released() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    west = join(fed, "west-1")
    j = fed.submit(job("a", gpus=8))
    fed.schedule_once()
    a = fed.jobs[j.job_id]
    old = a.placements[0].placement_id
    fed.disconnect(west)
    clock.now += LOST_AFTER + 1
    fed.check_leases()  # west-1 Lost, and no other cluster: the job waits, re-queued
    assert a.phase is JobPhase.PENDING and not a.placements
    hold(fed, a, Actor("alice"))
    back = join(fed, "west-1", old)  # west-1 back, still running the superseded placement
    fed.job_update(back, old, JobPhase.RUNNING, "still running")
    fed.schedule_once()
    fed.schedule_once()
    assert a.phase is JobPhase.PENDING and not a.placements and a.hold is not None  # room free, not placed
    assert a.pending_reason is not None and a.pending_reason.code is ReasonCode.HELD
    release(fed, a, Actor("alice"))
    fed.schedule_once()
    assert a.phase is JobPhase.PLACED and a.hold is None
