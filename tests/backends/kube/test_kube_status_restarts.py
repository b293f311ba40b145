"""A FederatedJob's status carries the job's restart count and its last restart (status.restarts, lastRestart:
server/restarts.py), in the CRD's schema, and a restart of the federator reads them back; a status written before
0.17.0 counts from its placementGeneration (outside pretraining QA, P5)."""

from __future__ import annotations

from typing import Any

from federator.backends.kube.resources import job_from_resource, job_status, spec_of
from federator.model import Job, JobId, JobPhase, Placement, PlacementId, Reason, ReasonCode


def _cr() -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": "pretrain", "namespace": "team", "uid": "u1", "generation": 1},
            "spec": {"kind": "training", "replicas": 4, "queue": "research",
                     "resources": {"nvidia.com/gpu": 8, "cpu": "4", "memory": "16Gi"}}}


def _job(cr: dict[str, Any]) -> Job:
    placed = Placement(PlacementId("pretrain-abc.g2.nv-b"), JobId("pretrain-abc"), "nv-b", "east", 4, "H100", 2,
                       JobPhase.RUNNING, "4 replicas running")
    return Job(job_id=JobId("pretrain-abc"), spec=spec_of(cr), submitted_at=1_700_000_000.0,
               phase=JobPhase.RUNNING, generation=2, placed_at=1_700_000_100.0, placements=[placed],
               restarts=1, last_restart_reason=Reason(ReasonCode.CLUSTER_NOT_READY, "nv-a was Lost; re-placing"),
               last_restart_at=1_700_000_090.0)


def test_the_status_says_the_restarts_and_reads_them_back() -> None:
    cr = _cr()
    job = _job(cr)
    status = job_status(job, generation=1, now=1_700_000_200.0)
    assert status["restarts"] == 1
    assert status["lastRestart"] == {"code": "ClusterNotReady", "message": "nv-a was Lost; re-placing",
                                     "at": "2023-11-14T22:14:50.000000Z"}
    back = job_from_resource({**cr, "status": status})
    assert back == job


def test_a_job_never_restarted_says_zero_and_no_last_restart() -> None:
    cr = _cr()
    job = _job(cr)
    job.restarts, job.last_restart_reason, job.last_restart_at = 0, None, 0.0
    status = job_status(job, generation=1, now=1_700_000_200.0)
    assert status["restarts"] == 0 and status["lastRestart"] is None
    assert job_from_resource({**cr, "status": status}) == job


def test_a_status_from_before_the_count_counts_from_its_placement_generation() -> None:
    cr = _cr()
    status = job_status(_job(cr), generation=1, now=1_700_000_200.0)
    del status["restarts"], status["lastRestart"]  # as 0.16.0 wrote it
    back = job_from_resource({**cr, "status": status})
    assert back is not None and back.restarts == 1 and back.last_restart_reason is None


def test_the_cluster_a_failure_restart_was_for_is_said_and_read_back() -> None:
    """status.lastRestart.cluster: what a restarted federator keeps the job off for what is left of its cool-down
    (server/restored_cooldowns.py); absent when no one member's report was the cause, as above."""
    cr = _cr()
    job = _job(cr)
    job.last_restart_reason = Reason(ReasonCode.FAILED_RESTARTING, "worded any way")
    job.last_restart_cluster = "nv-a"
    status = job_status(job, generation=1, now=1_700_000_200.0)
    assert status["lastRestart"]["cluster"] == "nv-a"
    assert job_from_resource({**cr, "status": status}) == job
