"""FederatedJob status is the job's durable record: writing it and reading it back gives the same job."""

from __future__ import annotations

from typing import Any

import pytest

from federator.backends.kube.resources import invalid_status, job_document, job_from_resource, job_status, spec_of
from federator.jobfile import JobFileError
from federator.model import Job, JobHold, JobId, JobPhase, Placement, PlacementId, Reason, ReasonCode


def federated_job(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": "llm", "namespace": "team", "uid": "u1", "generation": 1, "resourceVersion": "9",
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}",
                                     "federator.io/sim-duration": "3s"},
                     "finalizers": ["federator.io/placements"]},
        "spec": spec or {"kind": "training", "replicas": 2, "queue": "research", "priority": 0,
                         "resources": {"nvidia.com/gpu": 8, "cpu": "4", "memory": "16Gi"},
                         "acceleratorModels": ["H100"]},
    }


def test_the_job_document_is_the_users_not_the_servers() -> None:
    doc = job_document(federated_job())
    assert doc["metadata"] == {"name": "llm", "namespace": "team", "annotations": {"federator.io/sim-duration": "3s"}}
    assert spec_of(federated_job()).queue == "research"


@pytest.mark.parametrize("key", ["acceleratorModels", "gpuModels"])
def test_an_invalid_spec_is_refused_by_the_same_validator_as_files(key: str) -> None:
    bad = federated_job({"kind": "training", "resources": {"cpu": "4"}, key: ["H100"]})
    with pytest.raises(JobFileError, match=rf"spec.{key}: is set but spec.resources asks for no nvidia.com/gpu"):
        spec_of(bad)


def test_a_federated_job_written_with_the_old_name_gpuModels_is_the_same_job() -> None:
    old = federated_job()
    old["spec"]["gpuModels"] = old["spec"].pop("acceleratorModels")
    assert spec_of(old) == spec_of(federated_job())
    assert spec_of(old).accelerator_models == ("H100",)


@pytest.mark.parametrize("phase", [JobPhase.PENDING, JobPhase.RUNNING, JobPhase.SUCCEEDED])
def test_status_round_trip(phase: JobPhase) -> None:
    spec = spec_of(federated_job())
    job = Job(job_id=JobId("llm-abc123"), spec=spec, submitted_at=1_700_000_000.25, phase=phase, generation=3,
              message="done" if phase.is_terminal else "")
    if phase is JobPhase.PENDING:
        job.pending_reason = Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "needs 16 H100")
    else:
        job.placed_at = 1_700_000_001.5
        job.waiting_since = 1_700_000_001.25  # a scale-up's wait, stored (Job.waiting_since)
        job.placements = [Placement(PlacementId("llm-abc123.g3.a"), JobId("llm-abc123"), "a", "east", 2,
                                    "NVIDIA-H100-80GB-HBM3", 3, phase, "2 replicas running")]
    if phase.is_terminal:
        job.finished_at = 1_700_000_009.0
    status = job_status(job, generation=1, now=1_700_000_010.0)
    assert status["phase"] == phase.value
    assert status["accelerators"] == "16"
    cr = {**federated_job(), "status": status}
    back = job_from_resource(cr)
    assert back == job
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Placed"]["status"] == ("False" if phase is JobPhase.PENDING else "True")
    assert conditions["Running"]["status"] == ("True" if phase is JobPhase.RUNNING else "False")
    assert conditions["Finished"]["status"] == ("True" if phase.is_terminal else "False")
    if phase is JobPhase.PENDING:
        assert conditions["Placed"]["reason"] == "InsufficientAccelerators"
        assert status["pendingReason"] == {"code": "InsufficientAccelerators", "message": "needs 16 H100"}


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    spec = spec_of(federated_job())
    job = Job(job_id=JobId("j"), spec=spec, submitted_at=1.0, phase=JobPhase.RUNNING, placed_at=2.0)
    first = job_status(job, now=100.0)["conditions"]
    again = job_status(job, now=200.0, old_conditions=first)["conditions"]
    assert [c["lastTransitionTime"] for c in again] == [c["lastTransitionTime"] for c in first]


def test_a_federated_job_never_submitted_has_no_job() -> None:
    assert job_from_resource(federated_job()) is None


def test_a_spread_job_short_of_replicas_round_trips_and_says_so() -> None:
    # An inference job of 4 that lost one cluster's part (server/partial.py): its status holds the kept
    # placement (at its own generation, older than the job's), what it owes and why, and a restart reads
    # back the same job, still owing 2.
    cr = federated_job({"kind": "inference", "replicas": 4,
                        "resources": {"nvidia.com/gpu": 8, "cpu": "4", "memory": "16Gi"}})
    spec = spec_of(cr)
    job = Job(job_id=JobId("llm-abc123"), spec=spec, submitted_at=1_700_000_000.25, phase=JobPhase.RUNNING,
              generation=2, placed_at=1_700_000_001.5,
              pending_reason=Reason(ReasonCode.CLUSTER_NOT_READY, "a was Lost; re-placing (was generation 1)"),
              placements=[Placement(PlacementId("llm-abc123.g1.b"), JobId("llm-abc123"), "b", "west", 2,
                                    "NVIDIA-H100-80GB-HBM3", 1, JobPhase.RUNNING, "2 of 2 replicas running")],
              message="2 of 4 replicas placed; 2 waiting: ClusterNotReady: a was Lost; re-placing (was generation "
                      "1); 2 of 2 replicas running")
    status = job_status(job, generation=1, now=1_700_000_010.0)
    assert status["replicasWaiting"] == 2 and status["phase"] == "Running"
    assert status["pendingReason"]["code"] == "ClusterNotReady"
    assert status["message"].startswith("2 of 4 replicas placed; 2 waiting")
    back = job_from_resource({**cr, "status": status})
    assert back == job and back is not None and back.replicas_waiting == 2


def test_a_placements_end_is_kept_in_the_status_as_endedAt() -> None:
    """Placement.ended_at (JobUpdate.ended_at as checked) is what a usage record and finishedAt end at: a restart in
    Kubernetes mode reads it back, as the standalone store does; absent while a placement has not ended."""
    spec = spec_of(federated_job())
    job = Job(job_id=JobId("llm-abc123"), spec=spec, submitted_at=1_700_000_000.25, phase=JobPhase.RUNNING,
              generation=3, placed_at=1_700_000_001.5)
    ended, running = (Placement(PlacementId(f"llm-abc123.g3.{c}"), JobId("llm-abc123"), c, "east", 1,
                                "NVIDIA-H100-80GB-HBM3", 3, phase) for c, phase in (("a", JobPhase.SUCCEEDED),
                                                                                     ("b", JobPhase.RUNNING)))
    ended.ended_at = 1_700_000_008.123456
    job.placements = [ended, running]
    status = job_status(job, generation=1, now=1_700_000_010.0)
    assert [p.get("endedAt") for p in status["placements"]] == ["2023-11-14T22:13:28.123456Z", None]
    back = job_from_resource({**federated_job(), "status": status})
    assert back is not None
    assert [p.ended_at for p in back.placements] == [pytest.approx(1_700_000_008.123456, abs=1e-6), 0.0]


@pytest.mark.parametrize(("phase", "succeeded", "failed"), [
    (JobPhase.PENDING, "False", "False"), (JobPhase.RUNNING, "False", "False"), (JobPhase.SUCCEEDED, "True", "False"),
    (JobPhase.FAILED, "False", "True"), (JobPhase.CANCELLED, "False", "True")])
def test_the_outcome_is_a_condition_a_pipeline_waits_on(phase: JobPhase, succeeded: str, failed: str) -> None:
    """`kubectl wait --for=condition=Succeeded` (or `Failed`) as on a batch/v1 Job: `Finished` alone is True for every
    end (outside QA G2). A cancelled job has not succeeded: `Failed`, its reason saying Cancelled."""
    job = Job(job_id=JobId("j"), spec=spec_of(federated_job()), submitted_at=1.0, phase=phase,
              message="how it ended" if phase.is_terminal else "")
    conditions = {c["type"]: c for c in job_status(job, generation=4, now=100.0)["conditions"]}
    assert (conditions["Succeeded"]["status"], conditions["Failed"]["status"]) == (succeeded, failed)
    assert conditions["Finished"]["status"] == ("True" if phase.is_terminal else "False")
    assert conditions["Succeeded"]["reason"] == conditions["Failed"]["reason"] == phase.value
    assert conditions["Failed"]["observedGeneration"] == 4
    assert conditions["Failed"]["message"] == ("how it ended" if failed == "True" else "")
    assert "Available" not in conditions  # a training job serves nothing


def test_a_refused_federated_job_has_failed() -> None:
    conditions = {c["type"]: c for c in invalid_status("spec.acceleratorModels[0]: unknown accelerator model 'H1000'",
                                                       generation=1, now=100.0, reason="Invalid")["conditions"]}
    assert {t: (c["status"], c["reason"]) for t, c in conditions.items()} == {
        "Finished": ("True", "Invalid"), "Succeeded": ("False", "Invalid"), "Failed": ("True", "Invalid")}
    assert conditions["Failed"]["message"].startswith("spec.acceleratorModels[0]: unknown")


@pytest.mark.parametrize(("phase", "ready", "status", "reason"), [
    (JobPhase.PENDING, None, "False", "Pending"), (JobPhase.PLACED, 0, "False", "Placed"),
    (JobPhase.RUNNING, 1, "False", "ReplicasNotReady"), (JobPhase.RUNNING, 2, "True", "ReplicasReady"),
    (JobPhase.CANCELLED, None, "False", "Cancelled")])
def test_an_inference_job_is_available_when_every_replica_it_asks_is_ready(
        phase: JobPhase, ready: int | None, status: str, reason: str) -> None:
    """Available, as a Deployment's: what a blue/green cut-over waits on before deleting the old job (outside QA G11);
    Running alone is True as soon as replicas run, ready or not."""
    spec = spec_of(federated_job({"kind": "inference", "replicas": 2, "resources": {"nvidia.com/gpu": 1}}))
    job = Job(job_id=JobId("chat"), spec=spec, submitted_at=1.0, phase=phase)
    if ready is not None:
        job.placements = [Placement(PlacementId(f"chat.g1.{c}"), JobId("chat"), c, "east", 1, "H100", 1, phase,
                                    replicas_running=1, replicas_ready=min(1, max(0, ready - i)))
                          for i, c in enumerate("ab")]
    conditions = {c["type"]: c for c in job_status(job, generation=1, now=100.0)["conditions"]}
    assert (conditions["Available"]["status"], conditions["Available"]["reason"]) == (status, reason)
    if phase is JobPhase.RUNNING:
        assert conditions["Available"]["message"] == f"{ready} of 2 replicas ready"
        assert conditions["Running"]["status"] == "True"


@pytest.mark.parametrize(("phase", "ran", "started", "finished", "now", "total"), [
    (JobPhase.SUCCEEDED, 0.0, 1_000.0, 1_020.0, 5_000.0, 20.0),  # ran 20 s once: ranSeconds 0 read as "never ran"
    (JobPhase.RUNNING, 30.0, 1_000.0, 0.0, 1_010.0, 40.0),      # 30 s before a requeue, 10 s of this attempt so far
    (JobPhase.PENDING, 30.0, 0.0, 0.0, 1_010.0, 30.0),          # placed again, not running yet
    (JobPhase.CANCELLED, 0.0, 0.0, 1_005.0, 2_000.0, 0.0),      # never ran
], ids=["ran-once", "running-again", "waiting-again", "never-ran"])
def test_total_run_seconds_is_every_attempt_as_the_run_column_counts(
        phase: JobPhase, ran: float, started: float, finished: float, now: float, total: float) -> None:
    """Outside QA HPC H5: `-o json` `status.ranSeconds` is the earlier attempts only (the stored part of the
    maxRunSeconds clock), 0 for a job that ran 20 s once; totalRunSeconds is the whole, as RUN shows it."""
    job = Job(job_id=JobId("t-1"), spec=spec_of(federated_job()), submitted_at=900.0, phase=phase,
              started_at=started, ran_seconds=ran, finished_at=finished)
    status = job_status(job, now=now)
    assert (status["totalRunSeconds"], status["ranSeconds"]) == (total, ran)


@pytest.mark.parametrize("end", [JobPhase.CANCELLED, JobPhase.FAILED])
def test_a_hold_ends_with_its_job_so_kubectls_held_column_is_empty(end: JobPhase) -> None:
    """status.hold (kubectl's Held column, .status.hold.by) while a job is held; cleared once it ended however
    (cancelled, its FederatedJob deleted, a dependency failed it): a hold is of a waiting job."""
    spec = spec_of(federated_job())
    job = Job(job_id=JobId("llm-abc123"), spec=spec, submitted_at=1_700_000_000.0,
              pending_reason=Reason(ReasonCode.HELD, "Held: held by namespace team"),
              hold=JobHold(by="namespace team", at=1_700_000_001.0))
    status = job_status(job, now=1_700_000_002.0)
    assert status["hold"] == {"by": "namespace team", "at": "2023-11-14T22:13:21.000000Z", "admin": False}
    assert job_from_resource({**federated_job(), "status": status}).hold == job.hold  # a restart keeps the hold
    job.phase, job.finished_at, job.message = end, 1_700_000_003.0, "cancelled by alice"
    ended = job_status(job, now=1_700_000_004.0)
    assert ended["hold"] is None and ended["phase"] == end.value
    assert job_from_resource({**federated_job(), "status": ended}).hold is None
