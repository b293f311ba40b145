"""Which Kubernetes Events a job's durable change records on its FederatedJob."""

from __future__ import annotations

from dataclasses import replace

import pytest

from federator.backends.kube.events import EventReason, Seen, event_object, job_events, seen
from federator.model import Job, JobId, JobPhase, Placement, PlacementId, Reason, ReasonCode

from builders import job

PREEMPTED = Reason(ReasonCode.PREEMPTED, "preempted by team-a/urgent (priority 10)")
LOST = Reason(ReasonCode.CLUSTER_NOT_READY, "member-a was Lost; re-placing (was generation 1)")
QUOTA = Reason(ReasonCode.QUOTA_EXCEEDED, "quota of queue research on H100: 8 of 8 accelerators in use")


def state(phase: JobPhase, generation: int, reason: Reason | None = None, message: str = "") -> Job:
    placements = [Placement(PlacementId(f"j.g{generation}.member-a"), JobId("j"), "member-a", "east", 2,
                            "NVIDIA-H100", generation)] if phase.is_active else []
    return Job(JobId("j"), job("j", gpus=8, replicas=2), submitted_at=0.0, phase=phase, pending_reason=reason,
               placements=placements, message=message, generation=generation)


@pytest.mark.parametrize(("before", "after", "expected"), [
    pytest.param(None, state(JobPhase.PENDING, 0), [], id="submitted"),
    pytest.param(Seen(JobPhase.PENDING, 0), state(JobPhase.PENDING, 0, QUOTA), [], id="still-waiting"),
    pytest.param(Seen(JobPhase.PENDING, 0), state(JobPhase.PLACED, 1), [EventReason.PLACED], id="placed"),
    pytest.param(Seen(JobPhase.PLACED, 1), state(JobPhase.PLACED, 1), [], id="placed-rewritten"),
    pytest.param(Seen(JobPhase.PLACED, 1), state(JobPhase.RUNNING, 1), [], id="running"),
    pytest.param(Seen(JobPhase.RUNNING, 1), state(JobPhase.PENDING, 1, PREEMPTED), [EventReason.PREEMPTED],
                 id="preempted"),
    pytest.param(Seen(JobPhase.RUNNING, 1), state(JobPhase.PENDING, 1, LOST), [EventReason.REQUEUED],
                 id="requeued-cluster-lost"),
    pytest.param(Seen(JobPhase.PENDING, 1), state(JobPhase.PLACED, 2), [EventReason.PLACED], id="placed-again"),
    pytest.param(Seen(JobPhase.RUNNING, 1), state(JobPhase.FAILED, 1, message="exit code 1"), [EventReason.FAILED],
                 id="failed"),
    pytest.param(Seen(JobPhase.FAILED, 1), state(JobPhase.FAILED, 1, message="exit code 1"), [],
                 id="failed-rewritten"),
    pytest.param(Seen(JobPhase.RUNNING, 1), state(JobPhase.SUCCEEDED, 1), [], id="succeeded"),
])
def test_job_events(before: Seen | None, after: Job, expected: list[EventReason]) -> None:
    assert [e.reason for e in job_events(before, after)] == expected


MOVING = "moving 2 replicas from east to west, nearer your users"


@pytest.mark.parametrize(("before", "message", "expected"), [
    pytest.param(Seen(JobPhase.RUNNING, 1), f"{MOVING}; 2 more replicas placed on west-1, not started yet",
                 (EventReason.MOVING, MOVING, False), id="moving"),
    pytest.param(Seen(JobPhase.RUNNING, 2, moving=MOVING), f"{MOVING}; member-a: 2 of 2 replicas running", None,
                 id="moving-rewritten"),
    pytest.param(Seen(JobPhase.RUNNING, 2, moving=MOVING), "moved 2 replicas from east to west, nearer your users; "
                 "2 of 2 replicas running", (EventReason.MOVED, "moved 2 replicas from east to west, nearer your "
                                                                "users", False), id="moved"),
    pytest.param(Seen(JobPhase.RUNNING, 2, moving=MOVING), "could not move 2 replicas to west: they keep serving in "
                 "east; 2 of 2 replicas running", (EventReason.MOVE_FAILED, "could not move 2 replicas to west: they "
                                                   "keep serving in east", True), id="failed"),
])
def test_a_move_back_near_the_users_is_an_event_once(before: Seen, message: str,
                                                     expected: tuple[EventReason, str, bool] | None) -> None:
    """server/rebalancing.py's words at the head of a job's message: `kubectl describe fj` tells the move's story."""
    after = state(JobPhase.RUNNING, 2, message=message)
    events = [(e.reason, e.message, e.warning) for e in job_events(before, after)]
    assert events == ([expected] if expected else [])
    assert seen(after).moving == message.split("; ")[0]


def test_event_messages_say_where_and_why() -> None:
    (placed,) = job_events(Seen(JobPhase.PENDING, 0), state(JobPhase.PLACED, 1))
    assert placed.message == "placed in member-a (2x on NVIDIA-H100), generation 1" and not placed.warning
    (preempted,) = job_events(seen(state(JobPhase.RUNNING, 1)), state(JobPhase.PENDING, 1, PREEMPTED))
    assert preempted.message == PREEMPTED.message and preempted.warning


def test_the_event_object_is_about_the_federated_job() -> None:
    (placed,) = job_events(None, state(JobPhase.PLACED, 1))
    obj = event_object(placed, namespace="team", name="llm", uid="u1", now=1_700_000_000.5, instance="fed-0")
    assert obj["involvedObject"] == {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                     "namespace": "team", "name": "llm", "uid": "u1"}
    assert (obj["reason"], obj["type"], obj["metadata"]["namespace"]) == ("Placed", "Normal", "team")
    assert obj["metadata"]["generateName"] == "llm."
    assert obj["firstTimestamp"] == obj["lastTimestamp"] == "2023-11-14T22:13:20Z"


def test_a_spread_job_losing_a_part_records_it_and_its_new_part_is_all_the_placed_event_names() -> None:
    """Outside QA: no Event said a part was lost (the job stayed Running), and the Placed Event of the new part
    listed the parts that served on under the new generation."""
    def spread(generation: int, *parts: tuple[str, int]) -> Job:
        placements = [Placement(PlacementId(f"j.g{g}.{c}"), JobId("j"), c, c, 2, "NVIDIA-H100", g) for c, g in parts]
        return Job(JobId("j"), job("j", gpus=8, replicas=4), submitted_at=0.0,
                   phase=JobPhase.PLACED if any(g == generation for _, g in parts) and generation > 1
                   else JobPhase.RUNNING, pending_reason=LOST, placements=placements, generation=generation)

    short = spread(1, ("member-b", 1))
    (lost,) = job_events(Seen(JobPhase.RUNNING, 1), short)
    assert (lost.reason, lost.warning) == (EventReason.REQUEUED, True)
    assert lost.message.startswith("2 of 4 replicas placed; 2 waiting: ClusterNotReady: member-a was Lost")
    assert job_events(seen(short), short) == []  # said once
    whole = spread(2, ("member-b", 1), ("member-c", 2))
    whole.pending_reason = None
    (placed,) = job_events(seen(short), whole)
    assert placed.message == "placed in member-c (2x on NVIDIA-H100), generation 2"


def test_a_spread_job_whose_part_is_preempted_records_preempted_not_requeued() -> None:
    placements = [Placement(PlacementId("j.g1.member-b"), JobId("j"), "member-b", "west", 2, "NVIDIA-H100", 1)]
    part = Reason(ReasonCode.PREEMPTED, "its part on member-a preempted for train (queue default, priority 10)")
    short = Job(JobId("j"), job("j", gpus=8, replicas=4), submitted_at=0.0, phase=JobPhase.RUNNING,
                pending_reason=part, placements=placements, generation=1)
    (event,) = job_events(Seen(JobPhase.RUNNING, 1), short)
    assert (event.reason, event.warning) == (EventReason.PREEMPTED, True)
    assert event.message.startswith("2 of 4 replicas placed; 2 waiting: Preempted: its part on member-a preempted")


def test_a_scale_down_in_place_says_which_parts_shrank() -> None:
    scaled = state(JobPhase.RUNNING, 2, message="scaled from 6 to 4: east-1 shrank 6 → 4 in place; shrinking to 4 "
                                                "replicas in place")
    scaled.spec = replace(scaled.spec, replicas=4)
    scaled.placements[0].replicas = 4
    (event,) = job_events(Seen(JobPhase.RUNNING, 1, 0, 6), scaled)
    assert (event.reason, event.message) == (EventReason.SCALED,
                                             "spec.replicas: scaled from 6 to 4: east-1 shrank 6 → 4 in place")
