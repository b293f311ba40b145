"""Idempotent Submit: a request id the federator has seen returns the job it made, whatever its phase.

No sockets: the state machine with a fake clock and an in-memory store (the
gRPC edge is in test_services_edge.py, real processes in tests/reliability).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from server_support import Clock, MemoryStore, join, make, spec

from federator.model import Job, JobPhase
from federator.server.federator import REQUEST_ID_ANNOTATION, Federator
from federator.server.intake import AlreadyExists, RequestIdConflict, SubmitError


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def _pending(fed: Federator, job: Job) -> None:
    assert job.phase is JobPhase.PENDING


def _running(fed: Federator, job: Job) -> None:
    join(fed, "west-1")
    fed.schedule_once()
    (p,) = job.placements
    fed.job_update(fed.clusters[p.cluster], p.placement_id, JobPhase.RUNNING, "running")
    assert job.phase is JobPhase.RUNNING


def _succeeded(fed: Federator, job: Job) -> None:
    _running(fed, job)
    (p,) = job.placements
    fed.job_update(fed.clusters[p.cluster], p.placement_id, JobPhase.SUCCEEDED, "done")
    assert job.phase is JobPhase.SUCCEEDED


def _cancelled(fed: Federator, job: Job) -> None:
    fed.cancel(job.job_id)
    assert job.phase is JobPhase.CANCELLED


@pytest.mark.parametrize("reach", [_pending, _running, _succeeded, _cancelled],
                         ids=["pending", "running", "succeeded", "cancelled"])
def test_a_seen_request_id_returns_the_original_job_whatever_its_phase(
        store: MemoryStore, clock: Clock, reach: Callable[[Federator, Job], None]) -> None:
    fed = make(store, clock)
    first = fed.submit(spec("train"), request_id="req-1")
    reach(fed, first)
    clock.now += 60
    again = fed.submit(spec("train"), request_id="req-1")
    assert again is first and again.job_id == first.job_id
    assert len(store.docs) == 1 and len(fed.jobs) == 1
    assert fed.metrics.registry.get_sample_value("federator_jobs_submitted_total", {"queue": "default"}) == 1.0


def test_a_request_id_survives_a_restart_of_the_federator(store: MemoryStore, clock: Clock) -> None:
    first = make(store, clock).submit(spec("train"), request_id="req-1")
    restarted = make(store, clock)  # the reply was lost to a crash; the client retries against the new process
    again = restarted.submit(spec("train"), request_id="req-1")
    assert again.job_id == first.job_id
    assert list(store.docs) == [first.job_id]


def test_a_request_id_reused_with_a_different_spec_is_refused_naming_it(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    first = fed.submit(spec("train", gpus=8), request_id="req-1")
    for other in (spec("train", gpus=4), spec("other", gpus=8)):
        with pytest.raises(RequestIdConflict, match=r"request_id: 'req-1' was already used for job " + first.job_id):
            fed.submit(other, request_id="req-1")
    assert list(store.docs) == [first.job_id]


def test_the_request_id_is_kept_with_the_job_as_an_annotation(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    job = fed.submit(spec("train", **{"team": "ml"}), request_id="req-1")
    assert job.spec.annotation(REQUEST_ID_ANNOTATION) == "req-1"
    assert store.docs[job.job_id].spec.annotation(REQUEST_ID_ANNOTATION) == "req-1"
    assert job.spec.annotation("team") == "ml"
    # A spec that carries the annotation (a job file, a FederatedJob) is the same request.
    carried = spec("train", **{"team": "ml", REQUEST_ID_ANNOTATION: "req-1"})
    assert fed.submit(carried).job_id == job.job_id
    assert fed.submit(carried, request_id="req-1").job_id == job.job_id


@pytest.mark.parametrize(("request_id", "annotations", "words"), [
    ("has space", {}, "request_id: must be 1 to 128 characters"),
    ("x" * 129, {}, "request_id: must be 1 to 128 characters"),
    ("caf\u00e9", {}, "request_id: must be 1 to 128 characters"),
    ("", {REQUEST_ID_ANNOTATION: "a/b"}, "request_id: must be 1 to 128 characters"),
    ("req-1", {REQUEST_ID_ANNOTATION: "req-2"}, "request_id: 'req-1' differs from the spec's annotation"),
], ids=["space", "too-long", "not-ascii", "bad-annotation", "contradicts-annotation"])
def test_a_bad_request_id_is_refused_naming_the_field(store: MemoryStore, clock: Clock, request_id: str,
                                                      annotations: dict[str, str], words: str) -> None:
    fed = make(store, clock)
    with pytest.raises(SubmitError, match=words):
        fed.submit(spec("train", **annotations), request_id=request_id)
    assert store.docs == {}
    assert fed.metrics.registry.get_sample_value("federator_messages_rejected_total",
                                                 {"reason": "invalid_job"}) == 1.0


def test_without_a_request_id_an_active_name_is_still_already_exists(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    first = fed.submit(spec("train"), request_id="req-1")
    with pytest.raises(AlreadyExists, match="metadata.name"):
        fed.submit(spec("train"))
    with pytest.raises(AlreadyExists, match="metadata.name"):
        fed.submit(spec("train"), request_id="req-2")  # a new request for a name that is still active
    _cancelled(fed, first)
    second = fed.submit(spec("train"), request_id="req-2")  # the name is free again: a new request, a new job
    assert second.job_id != first.job_id
    assert fed.submit(spec("train"), request_id="req-1").job_id == first.job_id
    assert len(store.docs) == 2
