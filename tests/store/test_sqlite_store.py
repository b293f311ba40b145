from __future__ import annotations

from pathlib import Path

from federator.model import Job, JobId, JobPhase, Placement, PlacementId, Reason, ReasonCode
from federator.store import SqliteJobStore

from builders import job


def test_jobs_and_placements_survive_reopen(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    store = SqliteJobStore(db)
    j = Job(JobId("a-1"), job("a", replicas=2, gpus=8, models=("H100",)), submitted_at=1.0,
            pending_reason=Reason(ReasonCode.GANG_DOES_NOT_FIT, "x"))
    store.put([j])
    j.phase = JobPhase.RUNNING
    j.generation = 3
    j.placements = [Placement(PlacementId("a-1.g3.c"), j.job_id, "c", "r", 2, "H100", 3, JobPhase.RUNNING)]
    store.put([j, Job(JobId("b-1"), job("b"), submitted_at=2.0)])
    store.close()

    loaded = SqliteJobStore(db).load()
    assert [x.job_id for x in loaded] == ["a-1", "b-1"]
    assert loaded[0] == j
    assert loaded[0].placements[0].generation == 3
