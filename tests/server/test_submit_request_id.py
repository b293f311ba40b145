"""Idempotent Submit: a request id the federator has seen returns the job it made, whatever its phase.

No sockets: the state machine with a fake clock and an in-memory store (the
gRPC edge is in test_services_edge.py, real processes in tests/reliability).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from server_support import Clock, MemoryStore, join, make, spec

from federator.model import Job, JobPhase, JobSpec
from federator.security.authz import Principal, Submitter, stamp_owner, submitter_of
from federator.server.federator import REQUEST_ID_ANNOTATION, Federator
from federator.server.intake import AlreadyExists, RequestIdConflict, SubmitError
from federator.server.retention import forget_job


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


@pytest.mark.parametrize(("request_id", "annotations"), [
    ("r" * 200, {}),
    ("req-1", {REQUEST_ID_ANNOTATION: "a" * 200}),
], ids=["bad-request-id", "contradicting-annotation"])
def test_an_echoed_request_id_keeps_to_the_80_characters_jobs_proto_promises(
        store: MemoryStore, clock: Clock, request_id: str, annotations: dict[str, str]) -> None:
    """A 200-character id was echoed with 140 of them (outside QA, portal m1); the count is the id's own, not its
    repr's (which counts the quotes)."""
    fed = make(store, clock)
    with pytest.raises(SubmitError) as raised:
        fed.submit(spec("train", **annotations), request_id=request_id)
    message = str(raised.value)
    assert "r" * 81 not in message and "a" * 81 not in message, message
    assert "(200 characters)" in message, message


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


def _by(user: str, name: str) -> JobSpec:
    """A job as the gRPC edge hands it on: its owner recorded from the caller's identity."""
    return stamp_owner(spec(name), Principal(user))


def test_a_request_id_is_its_owners_own_another_owners_same_id_makes_another_job(store: MemoryStore,
                                                                                clock: Clock) -> None:
    """The CLI derives a file's id from its content, the same for every user. Ids shared by every tenant let bob
    submit any job with the id alice's file would use, and her Submit was then refused for good (red team F03)."""
    fed = make(store, clock)
    squat = fed.submit(_by("bob", "squat"), request_id="cli-same")
    alices = fed.submit(_by("alice", "train"), request_id="cli-same")
    kubectl = fed.submit(spec("train-k"), request_id="cli-same")  # no user: its namespace owns the id
    assert len({squat.job_id, alices.job_id, kubectl.job_id}) == 3
    # each owner's retry is still that owner's job
    assert fed.submit(_by("alice", "train"), request_id="cli-same") is alices
    assert fed.submit(_by("bob", "squat"), request_id="cli-same") is squat
    assert fed.submit(spec("train-k"), request_id="cli-same") is kubectl
    with pytest.raises(RequestIdConflict, match=squat.job_id):  # bob's own id with another spec: his own job
        fed.submit(_by("bob", "other"), request_id="cli-same")
    owners = {j.job_id: submitter_of(j.spec) for j in fed.jobs.values()}
    assert owners[alices.job_id] == Submitter(user="alice") and owners[squat.job_id] == Submitter(user="bob")
    assert fed.intake.job_for_request(Submitter(user="alice"), "cli-same") is alices
    assert fed.intake.job_for_request(Submitter(user="carol"), "cli-same") is None


def test_after_a_restart_each_owners_request_id_still_names_its_own_job(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    squat = fed.submit(_by("bob", "squat"), request_id="cli-same")
    alices = fed.submit(_by("alice", "train"), request_id="cli-same")
    again = make(store, clock)  # the index is rebuilt from the stored jobs, keyed by their recorded owners
    assert again.submit(_by("alice", "train"), request_id="cli-same").job_id == alices.job_id
    assert again.submit(_by("bob", "squat"), request_id="cli-same").job_id == squat.job_id
    carols = again.submit(_by("carol", "train-c"), request_id="cli-same")
    assert carols.job_id not in (alices.job_id, squat.job_id) and len(store.docs) == 3


def test_a_removed_jobs_request_id_is_free_for_its_owner_only_once_removed(store: MemoryStore, clock: Clock) -> None:
    """Retention (and a FederatedJob's deletion) frees the id in its owner's scope; another owner's is untouched."""
    fed = make(store, clock)
    bobs = fed.submit(_by("bob", "b"), request_id="cli-same")
    alices = fed.submit(_by("alice", "a"), request_id="cli-same")
    fed.cancel(bobs.job_id)
    forget_job(fed, bobs)
    assert fed.intake.job_for_request(Submitter(user="bob"), "cli-same") is None
    assert fed.intake.job_for_request(Submitter(user="alice"), "cli-same") is alices
    assert fed.submit(_by("bob", "b2"), request_id="cli-same").job_id != bobs.job_id
