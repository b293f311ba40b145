"""A job no member will take fails after --max-refusals refusals in a row (server/giving_up.py, refusals.py).

Outside QA (an ML user, F2): a container without an image, a nodeSelector no node has, a missing volume claim:
each job was placed, refused, placed again, for ever, holding accelerators on every try, never Failed.
"""

from __future__ import annotations

from server_support import Clock, MemoryStore, join, make, spec

from federator.model import JobPhase
from federator.server.federator import Federator
from federator.server.refusals import RecentRefusals

INVALID = ("the member cluster refused the Job: spec.template.spec.containers[0].image: Required value "
           "(HTTP 422 Invalid; federator-workloads/x)")


def refuse_until_pending(fed: Federator, clock: Clock, job_name: str, times: int) -> None:
    job = next(j for j in fed.jobs.values() if j.spec.name == job_name)
    for _ in range(times):
        clock.now += 400  # past the longest back-off: the cluster is tried again
        fed.schedule_once()
        (p,) = job.placements
        fed.refused(fed.clusters[p.cluster], p.placement_id, INVALID)


def test_a_job_refused_max_refusals_times_in_a_row_fails_with_the_last_words() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    fed.refusals.limit = 3
    join(fed, "east-1")
    job = fed.submit(spec("no-image"))
    refuse_until_pending(fed, clock, "no-image", 3)
    assert job.phase is JobPhase.PENDING
    fed.schedule_once()
    assert job.phase is JobPhase.FAILED
    assert job.message == f"refused 3 times in a row without running, the last by east-1: {INVALID} (--max-refusals 3)"
    assert not job.placements and job.pending_reason is None
    fed.schedule_once()  # nothing more is placed
    assert job.phase is JobPhase.FAILED and not job.placements


def test_a_job_that_ran_between_refusals_starts_counting_again() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    fed.refusals.limit = 3
    east = join(fed, "east-1")
    job = fed.submit(spec("busy"))
    refuse_until_pending(fed, clock, "busy", 2)
    clock.now += 400
    fed.schedule_once()
    (p,) = job.placements
    fed.acked(east, p.placement_id)
    fed.job_update(east, p.placement_id, JobPhase.RUNNING, "")
    fed.job_update(east, p.placement_id, JobPhase.CANCELLED, "evicted by the member's preemption")
    refuse_until_pending(fed, clock, "busy", 1)
    fed.schedule_once()
    assert job.phase is not JobPhase.FAILED


def test_fences_do_not_count_and_0_never_gives_up() -> None:
    r = RecentRefusals(limit=2)
    for _ in range(5):
        r.note("j", "a", 0.0, "fenced by the agent of a after losing the federator", counted=True)
    assert r.given_up("j") is None
    r.note("j", "a", 0.0, "no", counted=True)
    r.note("j", "a", 0.0, "no", counted=True)
    assert r.given_up("j") is not None
    r.limit = 0
    assert r.given_up("j") is None
