"""A spread inference job's failing parts judged by their own run times (server/early_failures.py,
server/failure_restarts.py).

Outside QA (new59, N4): an inference job of 2 replicas spread over two clusters, maxRestarts 1, both parts failing
in the same instant 2 s after their start (--early-failure-seconds 1). The first part was placed again; the
second's failure was then judged "after 0s", read from the part just placed again: a late failure took the
early-failure path (a free placement), and the restart after it nested its cause inside itself ("failed on east-1
after 0s: ... (failed on east-1 after 0s: ...)") and placed nothing new: only that part was superseded while the
part placed a moment before still held the job, whose failure then ended it.
"""

from __future__ import annotations

from server_support import Clock, MemoryStore, drained, join, make, spec
from test_failure_restarts import budgeted, fail

from federator.jobfile import parse_job
from federator.jobfile_writing import spec_to_document
from federator.model import Job, JobPhase, JobSpec, ReasonCode
from federator.model.job import waited
from federator.server.clusters import FAILOVER_ANNOTATION
from federator.server.early_failures import EarlyFailurePolicy
from federator.server.federator import Federator
from federator.server.orders import CancelOrder

FAILED = "failed after 2s (exit code 1)"
POLICY = EarlyFailurePolicy(seconds=1.0)


def serving(replicas: int = 8, max_restarts: int = 1) -> JobSpec:
    """8 replicas of 8 accelerators: a cluster of the harness holds 4, so the job spreads over two."""
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "infr"},
                      "spec": {"kind": "inference", "replicas": replicas,
                               "failurePolicy": {"maxRestarts": max_restarts},
                               "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})


def spread(clock: Clock, *clusters: str) -> tuple[Federator, Job]:
    """The job spread over `clusters`, a part on each, all of it placed."""
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    for name in clusters:
        join(fed, name)
    job = fed.submit(serving())
    fed.schedule_once()
    assert len(job.placements) == 2 and job.replicas_waiting == 0, job.message
    return fed, job


def run(fed: Federator, job: Job) -> None:
    """Every placement of the job not yet Running starts now."""
    for p in list(job.placements):
        if p.phase is JobPhase.PLACED:
            rec = fed.clusters[p.cluster]
            fed.acked(rec, p.placement_id)
            fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")


def test_a_parts_late_failure_is_timed_from_its_own_start_not_from_a_part_placed_again_since() -> None:
    clock = Clock()
    fed, job = spread(clock, "central-1", "west-1")
    join(fed, "east-1")  # room for a part placed again
    run(fed, job)
    first, second = job.placements
    clock.now += 2  # both fail in the same instant, 2 s after their start, past --early-failure-seconds 1
    fed.job_update(fed.clusters[first.cluster], first.placement_id, JobPhase.FAILED, FAILED)
    assert job.pending_reason is not None and job.pending_reason.message.startswith(
        f"its part on {first.cluster} failed after 2s")
    fed.schedule_once()  # its replicas placed again, on the third cluster, before the other part's report is read
    (again,) = [p for p in job.placements if p.placement_id not in (first.placement_id, second.placement_id)]
    assert job.placed_at == clock.now
    fed.job_update(fed.clusters[second.cluster], second.placement_id, JobPhase.FAILED, FAILED)
    # a late failure: that part placed again alone, no free once-more placement, no restart spent
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.REFUSED_BY_CLUSTER, \
        job.pending_reason
    assert job.pending_reason.message.startswith(f"its part on {second.cluster} failed after 2s"), job.pending_reason
    assert not job.early_failure
    assert job.failure_restarts == 0
    assert [p.placement_id for p in job.placements] == [again.placement_id]
    assert job.phase is JobPhase.PLACED and job.replicas_waiting == second.replicas


def test_a_parts_start_is_kept_while_other_placements_start_and_end_after_it() -> None:
    """Starts were kept for the early window only (oldest dropped at each new start), then the job's latest
    placement stood in for a dropped one: a part running long before a part placed again failed "after 0s"."""
    clock = Clock()
    fed, job = spread(clock, "central-1", "west-1")
    join(fed, "east-1")
    run(fed, job)
    first, second = job.placements
    for n in range(3):
        join(fed, f"batch-{n}")
    clock.now += 2
    others = [fed.submit(spec(f"batch{n}", gpus=1)) for n in range(80)]  # more starts than a sweep lets by
    fed.schedule_once()
    for other in others:
        run(fed, other)
        (p,) = other.placements
        fed.job_update(fed.clusters[p.cluster], p.placement_id, JobPhase.SUCCEEDED, "")
    fed.job_update(fed.clusters[first.cluster], first.placement_id, JobPhase.FAILED, FAILED)
    fed.schedule_once()
    run(fed, job)  # the part placed again starts: a start after the window of the parts' own
    clock.now += 1  # ... the other part has run 3 s
    fed.job_update(fed.clusters[second.cluster], second.placement_id, JobPhase.FAILED, FAILED)
    assert job.pending_reason is not None and job.pending_reason.message.startswith(
        f"its part on {second.cluster} failed after 3s"), job.pending_reason
    assert not job.early_failure


def test_a_restart_after_an_early_failure_says_the_failure_once_and_the_ending_names_both() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    join(fed, "a")
    join(fed, "b")
    job = fed.submit(budgeted("crashy", 1))
    first = fail_alone(fed, job, clock)
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_EARLY
    second = fail_alone(fed, job, clock)  # its once-more placement fails early too: the budget is next
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_RESTARTING
    assert job.pending_reason.message == (
        f"failed on {second} after 0s: {FAILED}; placing it again, elsewhere first "
        "(restart 1 of 1 on failure, spec.failurePolicy.maxRestarts)")
    clock.now += 3600  # past the cool-down of both clusters
    third = fail_alone(fed, job, clock)
    assert job.phase is JobPhase.FAILED
    assert job.message == (f"{FAILED} (failed on {third} after 0s: {FAILED}; it had failed on {first} after 0s: "
                           f"{FAILED} and was placed once more) (not placed again: restarted 1 of 1 times on "
                           "failure, spec.failurePolicy.maxRestarts)")


def fail_alone(fed: Federator, job: Job, clock: Clock) -> str:
    """The job's one placement, placed by a cycle now, starts and fails half a second later: its cluster."""
    return fail(fed, job, clock, after=0.5, message=FAILED)


def test_a_parts_second_early_failure_while_another_part_serves_places_that_part_again_and_spends_nothing() -> None:
    """Its once-more placement spent, a spread job's part failing early while another part serves is placed again
    alone, as at any time: the job did not fail. It spent the restart budget on superseding that part alone, and
    the part placed a moment before then ended the job ("restart 1 of 1" placed nothing new)."""
    clock = Clock()
    fed, job = spread(clock, "central-1", "west-1")
    join(fed, "east-1")
    run(fed, job)
    first, second = job.placements
    clock.now += 0.5
    fed.job_update(fed.clusters[first.cluster], first.placement_id, JobPhase.FAILED, FAILED)
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_EARLY
    fed.schedule_once()
    (again,) = [p for p in job.placements if p is not second]
    assert again.cluster == "east-1"
    run(fed, job)
    clock.now += 0.5
    fed.job_update(fed.clusters[second.cluster], second.placement_id, JobPhase.FAILED, FAILED)
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.REFUSED_BY_CLUSTER, \
        job.pending_reason
    assert job.pending_reason.message.startswith(f"its part on {second.cluster} failed after 1s: {FAILED}")
    assert job.failure_restarts == 0 and job.phase is JobPhase.RUNNING
    assert [p.placement_id for p in job.placements] == [again.placement_id]
    fed.schedule_once()  # both clusters it failed on avoided a while: the part waits
    clock.now += 0.5
    fed.job_update(fed.clusters[again.cluster], again.placement_id, JobPhase.FAILED, FAILED)  # the last part
    assert job.phase is JobPhase.PENDING and job.placements == [] and job.failure_restarts == 1
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_RESTARTING
    assert job.pending_reason.message.count("failed on") == 1, job.pending_reason
    clock.now += 3600
    fed.schedule_once()  # the restart places the job, whole
    assert job.phase is JobPhase.PLACED and sum(p.replicas for p in job.placements) == 8, job.message


def test_a_restart_places_the_whole_job_again_even_a_spread_one_kept_whole() -> None:
    """`federator.io/failover: keep` takes a spread job whole: a part's failure is the job's, and its restart
    cancels the other parts and places the job again whole, not that part alone beside the others."""
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    join(fed, "central-1")
    join(fed, "west-1")
    body = spec_to_document(serving())
    body["metadata"]["annotations"] = {FAILOVER_ANNOTATION: "keep"}
    job = fed.submit(parse_job(body))
    fed.schedule_once()
    run(fed, job)
    first, second = job.placements
    clock.now += 60
    fed.job_update(fed.clusters[first.cluster], first.placement_id, JobPhase.FAILED, FAILED)
    assert job.phase is JobPhase.PENDING and job.placements == [] and job.failure_restarts == 1, job.message
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_RESTARTING
    cancels = [o for o in drained(fed.clusters[second.cluster]) if isinstance(o, CancelOrder)]
    assert [o.placement_id for o in cancels] == [second.placement_id]


def test_a_job_failed_while_owing_replicas_keeps_its_latest_wait_which_counts_no_more() -> None:
    """waitingSince stays on a finished job by design (types.proto Job.waiting_since: WAIT is then the time its
    latest wait took); what must not happen is that wait counting on after the end."""
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    join(fed, "central-1")
    join(fed, "west-1")
    job = fed.submit(serving(max_restarts=0))
    fed.schedule_once()
    run(fed, job)
    first, second = job.placements
    clock.now += 60
    fed.job_update(fed.clusters[first.cluster], first.placement_id, JobPhase.FAILED, FAILED)
    assert job.waiting_since == clock.now and job.replicas_waiting == first.replicas
    fed.schedule_once()  # the cluster it failed on avoided: the part waits
    clock.now += 60
    fed.job_update(fed.clusters[second.cluster], second.placement_id, JobPhase.FAILED, FAILED)
    assert job.phase is JobPhase.FAILED and job.replicas_waiting == 0
    assert waited(job, clock.now) == 60 and waited(job, clock.now + 3600) == 60
