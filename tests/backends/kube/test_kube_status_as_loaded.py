"""A new leader sends no status write of a FederatedJob whose object says that already (backends/kube/
status_as_loaded.py), and sends every other: the digest `load` keeps of a job's status and the one `_write` takes
of the status it is about to send are one computation (KubeJobStore._said) over one set of fields, for a job of
every phase. Review63: the load side counted `_status_fields(job)` and the write side every key of the status it
built, two lists that only agreed by chance. The real API server's side (nulls pruned, 2.0 read back as 2, a
restart's first cycles) is tests/kube/test_kube_restart_writes_testbed.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from federator.backends.kube import store as kube_store
from federator.backends.kube.store import KubeJobStore
from federator.jobfile_loading import parse_job_documents
from federator.model import Job, JobHold, JobId, JobPhase, Placement, PlacementId, Reason, ReasonCode

from kube_fakes import FlakyApi

T0 = 1_800_000_000.0
JOB = """
apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: NAME, namespace: research}
spec: {kind: training, replicas: 2, resources: {cpu: "1"}}
"""


def job(phase: JobPhase, *, held: bool = False) -> Job:
    """A job of `phase` with what that phase carries: a reason and a hold while pending, placements once placed,
    an end once ended."""
    name = f"{phase.value.lower()}{'-held' if held else ''}"
    job_id = JobId(f"{name}-1")
    out = Job(job_id, parse_job_documents(JOB.replace("NAME", name))[0], submitted_at=T0, phase=phase)
    if phase is JobPhase.PENDING:
        out.pending_reason = Reason(ReasonCode.QUOTA_EXCEEDED, "queue research: 2 of 2 cpu in use")
        out.hold = JobHold(by="alice", at=T0 + 1) if held else None
        return out
    out.placements = [Placement(PlacementId(f"{job_id}.g1.east-1"), job_id, "east-1", "east", 2, "H100", 1, phase,
                                replicas_running=2 if phase is JobPhase.RUNNING else None)]
    out.generation, out.placed_at = 1, T0 + 2
    if phase is not JobPhase.PLACED:
        out.started_at = T0 + 3
    if phase.is_terminal:
        out.finished_at, out.message = T0 + 60.5, f"{phase.value} after a minute"
    return out


JOBS = [job(phase) for phase in JobPhase] + [job(JobPhase.PENDING, held=True)]


def written(api: FlakyApi) -> list[Job]:
    """The jobs, written once by a leader over `api`, as the next leader loads them."""
    first = KubeJobStore(api, clock=lambda: T0 + 100)  # type: ignore[arg-type]
    first.put([replace(j, phase=JobPhase.PENDING, placements=[]) for j in JOBS])  # submitted: their objects made
    first.put(JOBS)
    return sorted(KubeJobStore(api, clock=lambda: T0 + 200).load(), key=lambda j: j.job_id)  # type: ignore[arg-type]


def test_the_digest_of_a_loaded_status_is_the_digest_of_the_status_a_write_would_send_in_every_phase() -> None:
    api = FlakyApi()
    loaded = written(api)
    assert sorted(j.phase for j in loaded) == sorted(j.phase for j in JOBS)  # every phase, and a held job
    store = KubeJobStore(api, clock=lambda: T0 + 300)  # type: ignore[arg-type]
    for again in store.load():
        owner = store.owner_of(again.job_id)
        assert owner is not None
        status = store._status_of(again, generation=owner.generation)
        assert status.keys() == store._status_fields(again), again.phase  # one set of fields, both sides
        assert store._said(status, again) == store._loaded[again.job_id], again.phase
    writes = api.writes
    store.put(store.load())
    assert api.writes == writes and store.unchanged == len(JOBS)  # nothing sent: the objects say that already


@pytest.mark.parametrize("phase", list(JobPhase), ids=[p.value for p in JobPhase])
def test_a_job_changed_since_it_was_loaded_is_written(phase: JobPhase) -> None:
    api = FlakyApi()
    written(api)
    store = KubeJobStore(api, clock=lambda: T0 + 300)  # type: ignore[arg-type]
    (changed,) = [j for j in store.load() if j.phase is phase and j.hold is None]
    changed.message = "said otherwise"
    writes = api.writes
    store.put([changed])
    assert api.writes == writes + 1 and store.unchanged == 0
    assert api.objects[("research", changed.spec.name)]["status"]["message"] == "said otherwise"


def test_a_field_a_write_sets_that_load_did_not_count_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """A field added to the written status alone (a newer `job_status` than the one `load` learned the fields of)
    makes the write be sent, never taken as unchanged: the object does not hold it yet."""
    api = FlakyApi()
    written(api)
    store = KubeJobStore(api, clock=lambda: T0 + 300)  # type: ignore[arg-type]
    jobs = store.load()
    plain = kube_store.job_status

    def newer(job: Job, **kw: Any) -> dict[str, Any]:
        return {**plain(job, **kw), "newField": "set"}

    monkeypatch.setattr(kube_store, "job_status", newer)
    writes = api.writes
    store.put(jobs)
    assert api.writes == writes + len(JOBS) and store.unchanged == 0
    assert all(obj["status"]["newField"] == "set" for obj in api.objects.values())
