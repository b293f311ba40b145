from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from federator.model import Job, JobId, JobPhase, Placement, PlacementId, Reason, ReasonCode
from federator.store import SqliteJobStore, job_to_dict

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


def test_a_database_of_the_first_schema_loads_and_request_ids_survive_reopen(tmp_path: Path) -> None:
    """Request ids need no migration: they live in the job's document (its spec's annotations)."""
    from federator.server.federator import REQUEST_ID_ANNOTATION, Federator

    db = tmp_path / "old.db"
    old = sqlite3.connect(db)  # what a federator of schema version 1 wrote, before request ids existed
    old.executescript("""
        CREATE TABLE jobs (job_id TEXT PRIMARY KEY, phase TEXT NOT NULL, doc TEXT NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
    """)
    legacy = job_to_dict(Job(JobId("old-1"), job("old"), submitted_at=1.0, phase=JobPhase.SUCCEEDED))
    old.execute("INSERT INTO jobs VALUES (?, ?, ?)", ("old-1", "Succeeded", json.dumps(legacy)))
    old.commit()
    old.close()

    store = SqliteJobStore(db)
    fed = Federator(store=store)
    assert [j.job_id for j in fed.list_jobs()] == ["old-1"]
    new = fed.submit(job("new"), request_id="req-1")
    store.close()
    for _ in range(2):  # opening twice more changes nothing: the schema statements are idempotent
        store = SqliteJobStore(db)
        reopened = Federator(store=store)
        assert [j.job_id for j in reopened.list_jobs()] == ["old-1", new.job_id]
        assert reopened.jobs[new.job_id].spec.annotation(REQUEST_ID_ANNOTATION) == "req-1"
        assert reopened.submit(job("new"), request_id="req-1").job_id == new.job_id
        store.close()
    assert sqlite3.connect(db).execute("SELECT value FROM meta").fetchall() == [("4",)]  # taken forward


def test_a_brought_workload_survives_reopen(tmp_path: Path) -> None:
    from dataclasses import replace

    db = tmp_path / "f.db"
    lws = json.dumps({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "spec": {}})
    j = Job(JobId("l-1"), replace(job("l", replicas=8, gpus=8), workload_json=lws, group_size=4), submitted_at=1.0)
    store = SqliteJobStore(db)
    store.put([j])
    store.close()
    (loaded,) = SqliteJobStore(db).load()
    assert loaded.spec == j.spec and loaded.spec.workload_kind == "LeaderWorkerSet.leaderworkerset.x-k8s.io"


def test_alternatives_and_the_chosen_alternative_survive_reopen(tmp_path: Path) -> None:
    """A restarted federator must run the alternative it chose and hold what that alternative holds."""
    from dataclasses import replace

    from federator.model import AcceleratorAlternative

    spec = replace(job("either", replicas=2, gpus=8, models=("H100",)), accelerators=(
        AcceleratorAlternative(milli=8000, model="H100"),
        AcceleratorAlternative(milli=16000, model="Ascend910B", vendor="huawei", min_memory_mib=65536,
                               pod_template_json='{"spec":{"containers":[{"image":"train:cann8"}]}}'),
    ))
    j = Job(JobId("e-1"), spec, submitted_at=1.0, phase=JobPhase.RUNNING, generation=2)
    j.placements = [Placement(PlacementId("e-1.g2.asc"), j.job_id, "asc", "r", 2, "Ascend910B3", 2, JobPhase.RUNNING,
                              accelerator_vendor="huawei", accelerator_resource="huawei.com/Ascend910",
                              accelerator_milli=16000, alternative=1)]
    store = SqliteJobStore(tmp_path / "f.db")
    store.put([j])
    store.close()

    (loaded,) = SqliteJobStore(tmp_path / "f.db").load()
    assert loaded == j
    assert loaded.spec.accelerators[1].pod_template_json.endswith('"train:cann8"}]}}')
    assert (loaded.placements[0].alternative, loaded.placements[0].accelerator_resource) == (1, "huawei.com/Ascend910")


def test_a_document_of_the_gpu_era_loads(tmp_path: Path) -> None:
    """Rows written before the accelerator rename (gpu_models, gpu_milli, gpu_model) and reason codes this
    version does not know load as they were meant; the federator starts instead of failing on its own store."""
    doc = job_to_dict(Job(JobId("old-1"), job("old", replicas=2, gpus=8, models=("H100",)), submitted_at=1.0,
                          phase=JobPhase.RUNNING, generation=1,
                          placements=[Placement(PlacementId("old-1.g1.c"), JobId("old-1"), "c", "r", 2, "H100", 1,
                                                JobPhase.RUNNING)]))
    spec = doc["spec"]
    spec["gpu_models"] = spec.pop("accelerator_models")
    spec["resources"]["gpu_milli"] = spec["resources"].pop("accelerator_milli")
    for key in ("accelerators", "workload_json", "group_size"):
        del spec[key]
    p = doc["placements"][0]
    p["gpu_model"] = p.pop("accelerator_model")
    for key in ("accelerator_vendor", "accelerator_resource", "accelerator_milli", "alternative"):
        del p[key]
    waiting = dict(doc, job_id="old-2", phase="Pending", placements=[],
                   pending_reason={"code": "NoGpuModel", "message": "no cluster has H100"})
    db = tmp_path / "old.db"
    SqliteJobStore(db).close()
    raw = sqlite3.connect(db)
    raw.executemany("INSERT INTO jobs VALUES (?, ?, ?)", [("old-1", "Running", json.dumps(doc)),
                                                          ("old-2", "Pending", json.dumps(waiting))])
    raw.commit()
    raw.close()

    running, pending = SqliteJobStore(db).load()
    assert running.spec.accelerator_models == ("H100",) and running.spec.resources.accelerator_milli == 8000
    assert running.placements[0].accelerator_model == "H100"
    assert pending.pending_reason == Reason(ReasonCode.WAITING, "NoGpuModel: no cluster has H100")
