"""`federator watch` prints what changed for a user, once: the phase, the clusters, and why the job waits."""

from __future__ import annotations

from federator.cli.watch import watch_lines
from federator.model import Job, JobId, JobPhase, Placement, PlacementId, Reason, ReasonCode

from builders import job as spec


def _job(phase: JobPhase, *, cluster: str = "", message: str = "", reason: Reason | None = None) -> Job:
    placements = [Placement(PlacementId(f"train.g1.{cluster}"), JobId("train"), cluster, "east", 2, "A100", 1)] \
        if cluster else []
    return Job(JobId("train"), spec("train", replicas=2, gpus=8), 0.0, phase=phase, pending_reason=reason,
               placements=placements, message=message)


def test_each_line_says_something_new_and_a_placed_job_says_what_it_waits_for() -> None:
    refused = Reason(ReasonCode.REFUSED_BY_CLUSTER, "member-a stopped placement train.g1.member-a: refused: gang "
                                                     "timeout on member-a")
    kueue = "waiting for Kueue admission on member-b: insufficient quota"
    announced = [
        _job(JobPhase.PLACED, cluster="member-a"),
        _job(JobPhase.PLACED, cluster="member-a"),  # a placement's own phase changed: nothing a line shows
        _job(JobPhase.PENDING, reason=refused),
        _job(JobPhase.PLACED, cluster="member-b", message=kueue),
        _job(JobPhase.PLACED, cluster="member-b", message=kueue),
        _job(JobPhase.RUNNING, cluster="member-b", message="2 replicas running on member-b"),
        _job(JobPhase.SUCCEEDED, cluster="member-b", message="all placements succeeded"),
    ]
    assert list(watch_lines(announced)) == [
        "train Placed member-a",
        f"train Pending - {refused}",
        f"train Placed member-b {kueue}",
        "train Running member-b 2 replicas running on member-b",
        "train Succeeded member-b all placements succeeded",
    ]


def test_the_same_line_of_another_job_is_printed() -> None:
    other = Job(JobId("serve"), spec("serve"), 0.0)
    assert len(list(watch_lines([_job(JobPhase.PENDING), other]))) == 2
