"""A job its member reports Failed is placed again while spec.failurePolicy.maxRestarts allows
(server/failure_restarts.py).

Outside migration QA, M12: a job that failed at hour 30 (an NCCL timeout, a node's ECC error) was Failed for good,
and its user resubmitted by hand; SkyPilot's max_restarts_on_errors, JobSet's failurePolicy.maxRestarts and
Slurm's --requeue place it again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from server_support import Clock, MemoryStore, join, make

from federator.api.convert import WireError, job_from_pb, job_to_pb, spec_from_pb, spec_to_pb
from federator.jobfile import JobFileError, parse_job
from federator.jobfile_writing import spec_to_document
from federator.model import FailurePolicy, Job, JobPhase, JobSpec, ReasonCode
from federator.model.array import ArrayRequest
from federator.server.arrays import submit_array
from federator.server.early_failures import EARLY_FAILURE_ANNOTATION, EarlyFailurePolicy
from federator.server.federator import Federator
from federator.server.job_message import THEN
from federator.store import SqliteJobStore
from federator.store.codec import job_from_dict, job_to_dict

NCCL = "NCCL watchdog timeout: rank 3 (exit 1)"
EARLY = 300.0
HOURS = 30 * 3600.0


def budgeted(name: str, max_restarts: int | None = 2, **annotations: str) -> JobSpec:
    body: dict[str, Any] = {"kind": "training", "replicas": 1,
                            "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}
    if max_restarts is not None:
        body["failurePolicy"] = {"maxRestarts": max_restarts}
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": annotations}, "spec": body})


def fed_of(clock: Clock, store: Any = None) -> Federator:
    return make(store if store is not None else MemoryStore(), clock,
                early_failures=EarlyFailurePolicy(seconds=EARLY))


def fleet(*clusters: str) -> tuple[Clock, Federator]:
    """A federator on a fake clock, early failures within EARLY seconds, with `clusters` joined."""
    clock = Clock()
    fed = fed_of(clock)
    for name in clusters:
        join(fed, name)
    return clock, fed


def placed(fed: Federator, job: Job) -> tuple[str, str]:
    """(cluster, placement id) of the job's one placement, placed by a cycle now."""
    fed.schedule_once()
    assert job.phase is JobPhase.PLACED, job.pending_reason
    (p,) = job.placements
    return p.cluster, p.placement_id


def fail(fed: Federator, job: Job, clock: Clock, *, after: float = HOURS, message: str = NCCL,
         lost: bool = False) -> str:
    """The job is placed, runs `after` seconds and its member reports it Failed (`lost`: its agent lost it): the
    cluster it failed on."""
    cluster, pid = placed(fed, job)
    rec = fed.clusters[cluster]
    fed.acked(rec, pid)
    fed.job_update(rec, pid, JobPhase.RUNNING, "")
    clock.now += after
    fed.job_update(rec, pid, JobPhase.FAILED, message, lost=lost)
    return cluster


def test_a_job_failing_three_times_with_a_budget_of_two_ends_failed_after_the_third() -> None:
    clock, fed = fleet("east-1", "west-1")
    job = fed.submit(budgeted("pretrain", 2))
    where = []
    for n in (1, 2):
        where.append(fail(fed, job, clock))
        assert job.phase is JobPhase.PENDING, job.message
        assert (job.restarts, job.failure_restarts) == (n, n)
        assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_RESTARTING
        assert job.pending_reason.message == (
            f"failed on {where[-1]} after 30h0m0s: {NCCL}; placing it again, elsewhere first "
            f"(restart {n} of 2 on failure, spec.failurePolicy.maxRestarts)")
        assert job.last_restart_reason == job.pending_reason
    assert where[1] != where[0]  # elsewhere first: the cluster it failed on is avoided a while
    third = fail(fed, job, clock)
    assert third != where[1]
    assert job.phase is JobPhase.FAILED
    assert job.message == f"{NCCL} (not placed again: restarted 2 of 2 times on failure, " \
                          "spec.failurePolicy.maxRestarts)"
    assert (job.restarts, job.failure_restarts) == (2, 2)
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_placement_retries_total{reason="FailedRestarting"} 2.0' in scrape


def test_the_wait_keeps_its_code_and_says_the_failure_first_until_placed_again() -> None:
    clock, fed = fleet("only")
    job = fed.submit(budgeted("pretrain", 1))
    fail(fed, job, clock)
    fed.schedule_once()  # the one cluster is avoided for it a while: it waits
    assert job.phase is JobPhase.PENDING
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_RESTARTING
    assert job.pending_reason.message.startswith(f"failed on only after 30h0m0s: {NCCL}; placing it again")
    assert THEN in job.pending_reason.message, job.pending_reason
    clock.now += 3600  # past the cool-down: the same cluster again (elsewhere first, then any)
    fed.schedule_once()
    assert job.phase is JobPhase.PLACED and job.placements[0].cluster == "only"


def test_a_job_without_a_budget_fails_at_its_first_failure_as_before() -> None:
    clock, fed = fleet("east-1")
    job = fed.submit(budgeted("plain", None))
    fail(fed, job, clock)
    assert job.phase is JobPhase.FAILED and job.message == NCCL
    assert (job.restarts, job.failure_restarts) == (0, 0)


def test_an_early_failure_is_placed_once_more_free_and_the_next_one_spends_the_budget() -> None:
    clock, fed = fleet("a", "b", "c")
    job = fed.submit(budgeted("crashy", 1))
    fail(fed, job, clock, after=4)
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_EARLY
    assert (job.restarts, job.failure_restarts) == (1, 0)  # the early rule's own once-more placement
    fail(fed, job, clock, after=4)
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_RESTARTING
    assert (job.restarts, job.failure_restarts) == (2, 1)
    fail(fed, job, clock, after=4)
    assert job.phase is JobPhase.FAILED and "restarted 1 of 1 times on failure" in job.message


def test_an_early_failure_of_a_job_annotated_to_fail_is_final_but_a_late_one_restarts() -> None:
    """The user said a crash at start is the job's own (no run to pay for twice); a crash at hour 30 is not."""
    clock, fed = fleet("east-1", "west-1")
    early = fed.submit(budgeted("own-bug", 2, **{EARLY_FAILURE_ANNOTATION: "fail"}))
    fail(fed, early, clock, after=4)
    assert early.phase is JobPhase.FAILED and early.failure_restarts == 0
    assert f"not placed again: {EARLY_FAILURE_ANNOTATION}: fail" in early.message
    late = fed.submit(budgeted("late", 2, **{EARLY_FAILURE_ANNOTATION: "fail"}))
    fail(fed, late, clock)
    assert late.phase is JobPhase.PENDING and late.failure_restarts == 1


def test_a_placement_its_agent_lost_is_never_restarted() -> None:
    clock, fed = fleet("east-1")
    job = fed.submit(budgeted("lost", 2))
    fail(fed, job, clock, message="lost: the agent can no longer follow it", lost=True)
    assert job.phase is JobPhase.FAILED and job.failure_restarts == 0


def test_a_job_cancelled_while_it_waits_to_restart_ends_cancelled() -> None:
    clock, fed = fleet("only")
    job = fed.submit(budgeted("pretrain", 3))
    fail(fed, job, clock)
    assert job.phase is JobPhase.PENDING
    fed.cancel(job.job_id)
    assert job.phase is JobPhase.CANCELLED and job.failure_restarts == 1
    fed.schedule_once()
    assert job.phase is JobPhase.CANCELLED and not job.placements


def test_the_spent_budget_is_kept_across_a_federator_restart(tmp_path: Path) -> None:
    clock = Clock()
    db = tmp_path / "fed.db"
    store = SqliteJobStore(db)
    fed = fed_of(clock, store)
    join(fed, "east-1")
    join(fed, "west-1")
    job_id = fed.submit(budgeted("pretrain", 1)).job_id
    fail(fed, fed.jobs[job_id], clock)
    store.close()

    again = fed_of(clock, SqliteJobStore(db))
    job = again.jobs[job_id]
    assert job.phase is JobPhase.PENDING and job.failure_restarts == 1 and job.restarts == 1
    assert job.spec.failure_policy == FailurePolicy(max_restarts=1)
    join(again, "east-1")
    join(again, "west-1")
    fail(again, job, clock)
    assert job.phase is JobPhase.FAILED and "restarted 1 of 1 times on failure" in job.message


def test_the_store_and_the_wire_keep_the_policy_and_the_count() -> None:
    clock, fed = fleet("east-1")
    job = fed.submit(budgeted("pretrain", 2))
    fail(fed, job, clock)
    back = job_from_dict(job_to_dict(job))
    assert back.spec.failure_policy.max_restarts == 2 and back.failure_restarts == 1
    over = job_from_pb(job_to_pb(job))
    assert over.spec.failure_policy.max_restarts == 2 and over.failure_restarts == 1
    plain = Job(job_id=job.job_id, spec=budgeted("plain", None), submitted_at=1.0)
    assert "failure_policy" not in job_to_dict(plain)["spec"] and "failure_restarts" not in job_to_dict(plain)
    assert not job_to_pb(plain).spec.HasField("failure_policy")  # unset: what a 0.17.0 federator's reply looks like
    assert spec_to_document(job.spec)["spec"]["failurePolicy"] == {"maxRestarts": 2}
    assert parse_job(spec_to_document(job.spec)).failure_policy.max_restarts == 2


@pytest.mark.parametrize("value, problem", [
    (-1, "spec.failurePolicy.maxRestarts: must be an integer from 0 to 100"),
    (101, "spec.failurePolicy.maxRestarts: must be an integer from 0 to 100"),
    ("2", "spec.failurePolicy.maxRestarts: must be an integer from 0 to 100"),
    (True, "spec.failurePolicy.maxRestarts: must be an integer from 0 to 100"),
    (1.5, "spec.failurePolicy.maxRestarts: must be an integer from 0 to 100"),
], ids=["negative", "over-100", "string", "bool", "float"])
def test_a_bad_max_restarts_is_refused_naming_the_field(value: object, problem: str) -> None:
    with pytest.raises(JobFileError) as err:
        budgeted("bad", value)  # type: ignore[arg-type]
    assert problem in str(err.value)


@pytest.mark.parametrize("spec_part, problem", [
    ({"failurePolicy": 3}, "spec.failurePolicy: must be a mapping (maxRestarts), got 3"),
    ({"failurePolicy": {"maxRetries": 3}}, "spec.failurePolicy.maxRetries: is not a known field (known: maxRestarts)"),
    ({"maxRestarts": 3}, "spec.maxRestarts: is not a known field; did you mean spec.failurePolicy.maxRestarts?"),
    ({"backoffLimit": 3}, "spec.backoffLimit: is not a known field; did you mean spec.failurePolicy.maxRestarts?"),
], ids=["not-a-mapping", "unknown-key", "top-level", "backoff-limit"])
def test_a_misplaced_failure_policy_is_refused_naming_the_field(spec_part: dict[str, Any], problem: str) -> None:
    body = {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}, **spec_part}
    with pytest.raises(JobFileError) as err:
        parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "x"},
                   "spec": body})
    assert problem in str(err.value)


def test_a_wire_count_out_of_range_is_an_error_naming_the_field() -> None:
    pb = spec_to_pb(budgeted("ok", 2))
    assert pb.failure_policy.max_restarts == 2 and spec_from_pb(pb).failure_policy.max_restarts == 2
    pb.failure_policy.max_restarts = -3
    with pytest.raises(WireError, match=r"^spec.failurePolicy.maxRestarts: must be an integer from 0 to 100"):
        spec_from_pb(pb)


def test_a_gang_restarts_whole() -> None:
    """A gang of 4 replicas, one placement on one cluster: its failure queues all 4 again, placed as one elsewhere."""
    clock, fed = fleet("east-1", "west-1")
    gang = fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                 "metadata": {"name": "gang"},
                                 "spec": {"kind": "training", "replicas": 4, "failurePolicy": {"maxRestarts": 1},
                                          "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 8}}}))
    first = fail(fed, gang, clock)
    assert gang.phase is JobPhase.PENDING and not gang.placements
    fed.schedule_once()
    assert [(p.cluster, p.replicas) for p in gang.placements] == [(next(c for c in ("east-1", "west-1")
                                                                        if c != first), 4)]


def test_an_array_task_restarts_alone_keeping_its_slot() -> None:
    """Each task is a job: one task's failure restarts it; its siblings run on, and no throttled task is let go in
    its place (it has not ended: server/arrays.py)."""
    async def scenario() -> None:
        clock, fed = fleet("a-1", "b-1", "c-1")
        made = await submit_array(fed, budgeted("sweep", 1), ArrayRequest((0, 1, 2), 2), request_id="r",
                                  hold=None, visible=lambda named: named, taken=lambda task, rid: None)
        tasks = [fed.jobs[t.job_id] for t in made.tasks]
        fed.schedule_once()
        assert [t.phase for t in tasks] == [JobPhase.PLACED, JobPhase.PLACED, JobPhase.PENDING]
        (p,) = tasks[0].placements
        rec = fed.clusters[p.cluster]
        fed.acked(rec, p.placement_id)
        fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
        clock.now += HOURS
        fed.job_update(rec, p.placement_id, JobPhase.FAILED, NCCL)
        assert tasks[0].phase is JobPhase.PENDING and tasks[0].failure_restarts == 1
        assert tasks[1].phase is JobPhase.PLACED and tasks[1].restarts == 0  # its sibling untouched
        fed.schedule_once()
        assert tasks[0].phase is JobPhase.PLACED
        assert tasks[2].phase is JobPhase.PENDING and tasks[2].throttled  # the restarting task kept its slot
    asyncio.run(scenario())
