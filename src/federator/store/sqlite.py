"""The embedded job store: one SQLite file in WAL mode.

A job accepted by Submit is committed here before the reply goes out, so a
federator killed at any moment restarts with every accepted job and every
placement it had handed out (the fencing generations included).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from federator.model import (
    Job,
    JobId,
    JobKind,
    JobPhase,
    JobSpec,
    Placement,
    PlacementId,
    Reason,
    ReasonCode,
    Resources,
)

SCHEMA_VERSION = 1


class JobStore(Protocol):
    def put(self, jobs: Iterable[Job]) -> None:
        """Persist these jobs' current state atomically."""

    def load(self) -> list[Job]: ...

    def close(self) -> None: ...


def job_to_dict(job: Job) -> dict[str, Any]:
    doc = asdict(job)
    doc["spec"]["labels"] = dict(job.spec.labels)
    doc["spec"]["annotations"] = dict(job.spec.annotations)
    return doc


def job_from_dict(doc: dict[str, Any]) -> Job:
    s = doc["spec"]
    spec = JobSpec(
        name=s["name"], kind=JobKind(s["kind"]), replicas=s["replicas"], resources=Resources(**s["resources"]),
        accelerator_models=tuple(s["accelerator_models"]), queue=s["queue"], priority=s["priority"],
        preferred_regions=tuple(s["preferred_regions"]), namespace=s["namespace"],
        labels=tuple(sorted(s["labels"].items())), annotations=tuple(sorted(s["annotations"].items())),
        pod_template_json=s["pod_template_json"], preemptible=s.get("preemptible", False),
        min_regions=s.get("min_regions", 1), user_region=s.get("user_region", ""),
        max_latency_ms=s.get("max_latency_ms", 0), workload_json=s.get("workload_json", ""),
        group_size=s.get("group_size", 1),
    )
    reason = doc.get("pending_reason")
    return Job(
        job_id=JobId(doc["job_id"]), spec=spec, submitted_at=doc["submitted_at"], phase=JobPhase(doc["phase"]),
        pending_reason=Reason(ReasonCode(reason["code"]), reason["message"]) if reason else None,
        placements=[
            Placement(placement_id=PlacementId(p["placement_id"]), job_id=JobId(p["job_id"]), cluster=p["cluster"],
                      region=p["region"], replicas=p["replicas"], accelerator_model=p["accelerator_model"],
                      generation=p["generation"], phase=JobPhase(p["phase"]), message=p["message"])
            for p in doc["placements"]
        ],
        placed_at=doc["placed_at"], finished_at=doc["finished_at"], message=doc["message"],
        generation=doc.get("generation", 0),
    )


class SqliteJobStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, phase TEXT NOT NULL, doc TEXT NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def put(self, jobs: Iterable[Job]) -> None:
        rows = [(j.job_id, j.phase.value, json.dumps(job_to_dict(j), separators=(",", ":"))) for j in jobs]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def load(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM jobs ORDER BY rowid").fetchall()
        return [job_from_dict(json.loads(doc)) for (doc,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
