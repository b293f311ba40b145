"""The audit trail's comparisons (server/audit_trail.py), job states handed to it directly: a move that ends a
placement in place (the rebalancer's, a surge's) is an `unplace` with the phase it ended in; the jobs loaded at a
restart are a baseline, audited by nothing; a job handed again after its end (a restated message, retention)
writes nothing more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from federator.model import Job, JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources
from federator.security.audit import AuditLog
from federator.server.audit_trail import AuditTrail

from support import audit_lines


def _job(name: str, *clusters: str) -> Job:
    job = Job(JobId(f"{name}-1a2b3c"), JobSpec(name=name, kind=JobKind.INFERENCE, replicas=2, queue="hosp-a",
                                              resources=Resources(1000, 1 << 30, 1000)), submitted_at=0.0)
    job.placements = [_placement(job, c, 1) for c in clusters]
    job.phase = JobPhase.RUNNING if clusters else JobPhase.PENDING
    return job


def _placement(job: Job, cluster: str, generation: int) -> Placement:
    return Placement(PlacementId(f"{job.job_id}.g{generation}.{cluster}"), job.job_id, cluster,
                     cluster.split("-")[0], 1, "H100", generation, phase=JobPhase.RUNNING)


def _lines(path: Path) -> list[dict[str, Any]]:
    return audit_lines(path)


def test_a_move_in_place_is_an_unplace_with_its_phase_and_the_new_placement_says_where_from(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "a.jsonl")
    trail = AuditTrail(audit, provider_of=lambda name: "")
    job = _job("serve", "central-1", "central-2")
    trail.load([job])  # a restart: what runs now is the baseline
    assert audit.flush() and not _lines(tmp_path / "a.jsonl")
    job.placements.append(_placement(job, "east-1", 2))  # the rebalancer's surge, nearer the users
    trail.observe([job])
    job.placements[0].phase, job.placements[0].message = JobPhase.CANCELLED, "moved to east-1, nearer your users"
    job.placements = job.placements[1:] + [job.placements[0]]
    trail.observe([job])
    job.placements = [job.placements[0], job.placements[1]]  # the ended one dropped from the record later: no line
    trail.observe([job])
    job.placements.append(_placement(job, "east-2", 3))
    trail.observe([job])
    job.phase = JobPhase.CANCELLED
    for p in job.placements:
        p.phase = JobPhase.CANCELLED
    trail.observe([job])
    trail.observe([job])  # handed again after its end (a restated message): nothing more
    got = [(x["action"], x["object"].get("cluster", ""), x["object"].get("phase", ""), x["object"].get("from", []))
           for x in _lines(tmp_path / "a.jsonl")]
    assert got == [
        ("place", "east-1", "", []),
        ("unplace", "central-1", "Cancelled", []),
        ("place", "east-2", "", ["central-1 (central)"]),
        ("finish", "", "Cancelled", []),
    ], got
    finish = _lines(tmp_path / "a.jsonl")[-1]
    assert finish["object"]["on"] == ["central-2 (central)", "east-1 (east)", "east-2 (east)"]


def test_a_job_that_had_ended_when_loaded_writes_nothing(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "a.jsonl")
    trail = AuditTrail(audit, provider_of=lambda name: "")
    job = _job("done", "west-1")
    job.phase = job.placements[0].phase = JobPhase.SUCCEEDED
    trail.load([job])
    trail.observe([job])
    assert _lines(tmp_path / "a.jsonl") == []
