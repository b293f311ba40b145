"""spec.ttlSecondsAfterFinished: a finished FederatedJob is deleted that long after it finished (outside QA G13)."""

from __future__ import annotations

from typing import Any

import pytest

from federator.backends.kube.finished_ttl import due_at, expired, finished_at
from federator.backends.kube.resources import invalid_status, job_document, job_status, spec_of, timestamp
from federator.model import Job, JobId, JobPhase

SPEC = {"kind": "training", "replicas": 1, "resources": {"nvidia.com/gpu": 1}}


def federated_job(ttl: object = None, *, status: dict[str, Any] | None = None,
                  deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "run-x7", "namespace": "ci", "uid": "u1", "generation": 1}
    if deleting:
        meta["deletionTimestamp"] = timestamp(500.0)
    spec = {**SPEC, **({} if ttl is None else {"ttlSecondsAfterFinished": ttl})}
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": meta, "spec": spec,
            **({"status": status} if status is not None else {})}


def status_of(phase: JobPhase, *, finished: float = 0.0) -> dict[str, Any]:
    job = Job(job_id=JobId("run-x7-abc"), spec=spec_of(federated_job()), submitted_at=10.0, phase=phase,
              finished_at=finished)
    return job_status(job, now=finished or 20.0)


def test_the_ttl_is_the_objects_lifetime_not_part_of_the_job() -> None:
    assert "ttlSecondsAfterFinished" not in job_document(federated_job(60))["spec"]
    assert spec_of(federated_job(60)) == spec_of(federated_job())  # the validator never sees it: no refusal


@pytest.mark.parametrize("phase", [JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.CANCELLED])
def test_a_finished_job_is_due_its_ttl_after_it_finished(phase: JobPhase) -> None:
    obj = federated_job(60, status=status_of(phase, finished=100.0))
    assert finished_at(obj) == 100.0
    assert due_at(obj) == 160.0
    assert expired([obj], 159.9) == [] and expired([obj], 160.0) == [obj]
    assert expired([federated_job(0, status=status_of(phase, finished=100.0))], 100.0) != []  # 0: at once


@pytest.mark.parametrize("phase", [JobPhase.PENDING, JobPhase.PLACED, JobPhase.RUNNING])
def test_a_job_not_finished_is_never_due(phase: JobPhase) -> None:
    assert due_at(federated_job(0, status=status_of(phase))) is None
    assert due_at(federated_job(0)) is None  # no status yet


def test_a_refused_object_is_due_from_its_refusal() -> None:
    obj = federated_job(30, status=invalid_status("spec.resources: asks for nothing", generation=1, now=200.0))
    assert due_at(obj) == 230.0


@pytest.mark.parametrize("ttl", [None, -1, "60", True, 1.5])
def test_without_a_ttl_the_object_is_kept(ttl: object) -> None:
    """No server default, as batch/v1: absent (or not an integer of 0 or more, which the CRD refuses) keeps it."""
    assert due_at(federated_job(ttl, status=status_of(JobPhase.SUCCEEDED, finished=100.0))) is None


def test_an_object_being_deleted_is_not_deleted_again() -> None:
    assert due_at(federated_job(0, status=status_of(JobPhase.SUCCEEDED, finished=100.0), deleting=True)) is None
