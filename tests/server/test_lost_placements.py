"""A placement its agent lost (lost_placements.py) is never placed again on its cluster, whatever rule would have
done it: the early-failure rule for any job, the spread rule for a part of an inference job that failed after
running. Its pods may still run on the member, so placing it there again would run it twice
(backends/kube/stranded.py).

A spread (inference) job with other live parts loses only that part: the others keep serving, untouched, and the
lost replicas are placed elsewhere. Before, the job failed and its healthy parts on other providers' clusters were
cancelled ("another part of the job failed"): one agent's words took down every region. A gang still fails whole.
JobUpdate.lost alone says it (since 0.10.0): the words 0.7.0 agents sent instead are an ordinary failure.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client import generate_latest
from server_support import Clock, MemoryStore, join, make, spec
from test_partial_failover import drain, inference, running_on, spread_over_a_and_b

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.lost_placements import lost_message
from federator.model import AgentFeature, JobPhase, ReasonCode
from federator.security.limits import RejectReason
from federator.server.clusters import FAILOVER_ANNOTATION
from federator.server.federator import Federator
from federator.server.orders import CancelOrder, LaunchOrder
from federator.server.validation import check_update

WHY = "the placement runs in namespace w-research, which it no longer watches"


def lost_count(fed: Federator, cluster: str) -> str:
    scrape = generate_latest(fed.metrics.registry).decode()
    return next(line.rsplit(" ", 1)[1] for line in scrape.splitlines()
                if line.startswith(f'federator_placements_lost_total{{cluster="{cluster}"}}'))


@pytest.mark.parametrize("after", [3.0, 3_600.0], ids=["early", "after-an-hour"])
def test_a_lost_part_of_a_spread_job_ends_alone_the_others_keep_serving_and_its_replicas_go_elsewhere(
        after: float) -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    pa = next(p for p in job.placements if p.cluster == "a")
    pb = next(p for p in job.placements if p.cluster == "b")
    kept = (pb.placement_id, pb.generation, pb.phase)
    clock.now += after
    fed.heard(a), fed.heard(b)
    said = lost_message("a", WHY)
    fed.job_update(a, pa.placement_id, JobPhase.FAILED, said, lost=True)
    assert job.phase is JobPhase.RUNNING and not job.early_failure and job.finished_at == 0
    assert [(p.placement_id, p.generation, p.phase) for p in job.placements] == [kept]  # b untouched
    assert drain(b) == [] and not any(isinstance(o, CancelOrder) for o in drain(a))  # no cancel anywhere
    assert job.replicas_waiting == 2
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.REFUSED_BY_CLUSTER
    assert "2 of 4 replicas placed; 2 waiting" in job.message
    assert "its part on a (2 replicas) was lost by the agent of a: " in job.message
    assert lost_count(fed, "a") == "1.0"
    c = join(fed, "c", region="north")
    fed.schedule_once()
    assert not any(isinstance(o, LaunchOrder) for o in drain(a))  # not placed again where its pods may run
    assert any(isinstance(o, LaunchOrder) for o in drain(c) + drain(b))  # owed, so placed elsewhere
    assert job.replicas_waiting == 0 and "a" not in {p.cluster for p in job.placements}
    assert (pb.placement_id, pb.generation) in {(p.placement_id, p.generation) for p in job.placements}


def test_a_lost_part_of_a_spread_job_kept_from_failover_fails_the_job_as_any_failed_part() -> None:
    """`failover: keep` says never place it again: a failed part fails the job whole, lost or not (the user's
    choice, as for any failed part)."""
    fed = make(MemoryStore(), Clock())
    a, b = join(fed, "a", region="east"), join(fed, "b", region="west")
    serve = inference("serve")
    job = fed.submit(replace(serve, annotations=(*serve.annotations, (FAILOVER_ANNOTATION, "keep"))))
    fed.schedule_once()
    running_on(fed, job, a, b)
    pa = next(p for p in job.placements if p.cluster == "a")
    fed.job_update(a, pa.placement_id, JobPhase.FAILED, lost_message("a", WHY), lost=True)
    assert job.phase is JobPhase.FAILED


def test_a_lost_training_gang_fails_and_is_never_placed_again() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    a = join(fed, "a")
    job = fed.submit(spec("train"))
    fed.schedule_once()
    (pa,) = job.placements
    fed.acked(a, pa.placement_id)
    fed.job_update(a, pa.placement_id, JobPhase.RUNNING, "")
    clock.now += 3.0
    said = lost_message("a", WHY)
    fed.job_update(a, pa.placement_id, JobPhase.FAILED, said, lost=True)
    assert job.phase is JobPhase.FAILED and not job.early_failure
    assert job.message == f"{said} (not placed again: its pods may still run on a, and the job would run twice)"
    drain(a)
    c = join(fed, "c")
    fed.schedule_once()
    assert not any(isinstance(o, LaunchOrder) for o in drain(c) + drain(a))
    assert lost_count(fed, "a") == "1.0"


def _failed_soon_after_start(marks: bool, message: str, *, lost: bool) -> Federator:
    """A training job running on `a` (whose agent lists the feature "lost" if `marks`), reported Failed 3 s after
    it started with `message` and JobUpdate.lost = `lost`."""
    clock = Clock()
    fed = make(MemoryStore(), clock)
    a = join(fed, "a")
    a.features = frozenset({AgentFeature.LOST}) if marks else frozenset()
    job = fed.submit(spec("train"))
    fed.schedule_once()
    (pa,) = job.placements
    fed.acked(a, pa.placement_id)
    fed.job_update(a, pa.placement_id, JobPhase.RUNNING, "")
    clock.now += 3.0
    fed.job_update(a, pa.placement_id, JobPhase.FAILED, message, lost=lost)
    return fed


@pytest.mark.parametrize(("marks", "message", "lost", "is_lost"), [
    (True, "our control plane lost it", True, True),
    (False, "our control plane lost it", True, True),
    (True, f"lost by the agent of a: {WHY}", False, False),
    (False, f"lost by the agent of a: {WHY}", False, False),
], ids=["field-from-an-agent-that-marks", "field-from-one-that-does-not-say", "words-from-an-agent-that-marks",
        "words-from-a-0.7.0-agent"])
def test_jobupdate_lost_alone_is_the_mark_and_the_words_of_0_7_0_are_only_words(
        marks: bool, message: str, lost: bool, is_lost: bool) -> None:
    """JobUpdate.lost (agent.proto) alone says a placement is lost, from any agent. The words "lost by the agent of
    <cluster>: " that 0.7.0 agents sent instead counted from an agent whose Hello did not list "lost" through
    0.9.x; since 0.10.0 they are only words (a workload's own message may begin so): an ordinary failure, to which
    the early-failure rule applies."""
    fed = _failed_soon_after_start(marks, message, lost=lost)
    (job,) = fed.jobs.values()
    if is_lost:
        assert job.phase is JobPhase.FAILED and not job.early_failure
        assert job.message == f"{message} (not placed again: its pods may still run on a, and the job would run twice)"
        assert lost_count(fed, "a") == "1.0"
    else:
        assert job.phase is JobPhase.PENDING and job.early_failure.startswith("a after 3s")
        assert lost_count(fed, "a") == "0.0"


@pytest.mark.parametrize("phase", [JobPhase.PLACED, JobPhase.RUNNING, JobPhase.SUCCEEDED, JobPhase.CANCELLED])
def test_jobupdate_lost_with_a_phase_other_than_failed_is_refused_naming_the_field(phase: JobPhase) -> None:
    update = agent_pb2.JobUpdate(placement_id="j.g1.a", phase=convert.phase_to_pb(phase), lost=True)
    refusal = check_update(update, JobPhase.PLACED)
    assert refusal is not None and refusal.reason is RejectReason.MALFORMED
    assert refusal.message.startswith("job_update.lost: only a Failed placement is reported lost; j.g1.a is ")
