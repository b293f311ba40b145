"""Every field a job carries survives the store, and a new one cannot slip in without the schema version being
looked at (outside operator DR QA D7).

0.14.0 added `spec.regions.allowed` and holds and kept schema version 3, so 0.13.0, which reads version 3, ran on
a 0.14 file and rewrote its jobs without them: a job allowed only in east ran in west, for good. 0.15.0 writes
version 4 (store/schema.py), which every older release refuses. These tests hold the rule for the next field:

- a job with every field set (none at its default) comes back equal from the store, the few fields kept out of
  the store on purpose (`NOT_STORED`) aside;
- the fields of a stored job are pinned, with the schema version they were pinned at (`PINNED`): a field added to
  Job, JobSpec or what they hold fails here, and the failure says what to decide (raise SCHEMA_VERSION unless the
  previous release reads and keeps the field; then pin the new list at the version the file says);
- a file written by this build is refused by a reader of the previous version (its check, as shipped).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import typing
from pathlib import Path
from typing import Any

import pytest

from federator.model import (
    AcceleratorAlternative,
    ClusterAffinity,
    FailurePolicy,
    Job,
    JobHold,
    JobId,
    JobKind,
    JobPhase,
    JobSpec,
    LabelOperator,
    LabelRequirement,
    Placement,
    PlacementId,
    Preference,
    Reason,
    ReasonCode,
    Resources,
)
from federator.model.elastic_left import ElasticLeft
from federator.model.job import NeverRunnable
from federator.model.pod_sets import PodSetAsk
from federator.store import SqliteJobStore, StoreUnreadable, schema
from federator.store import sqlite as sqlite_store
from federator.store.codec import job_from_dict, job_to_dict, spec_to_dict

# The fields of a stored job, pinned at a schema version. A change here is a change of what the store holds: if the
# release before reads a version-N file and would drop (or ignore) the new field, the version must go up.
PINNED_AT = 4
PINNED = frozenset({
    "Job.job_id", "Job.spec", "Job.submitted_at", "Job.phase", "Job.pending_reason", "Job.placements",
    "Job.placed_at", "Job.finished_at", "Job.message", "Job.generation", "Job.early_failure", "Job.started_at",
    "Job.ran_seconds", "Job.waiting_since", "Job.hold", "Job.waiting_on",
    # 0.17.0's restart count (server/restarts.py), at 4 still: 0.16.0 reading a 0.17.0 file drops these three keys
    # when it rewrites a job, and a later 0.17.0 counts that job's restarts from its generation again
    # (store/codec.restarts_before: exact for a gang), so a downgrade loses no job and no placement, only the last
    # restart's reason.
    "Job.restarts", "Job.last_restart_reason", "Job.last_restart_at",
    "JobSpec.name", "JobSpec.kind", "JobSpec.replicas", "JobSpec.resources", "JobSpec.accelerator_models",
    "JobSpec.queue", "JobSpec.priority", "JobSpec.preferred_regions", "JobSpec.namespace", "JobSpec.labels",
    "JobSpec.annotations", "JobSpec.pod_template_json", "JobSpec.preemptible", "JobSpec.min_regions",
    "JobSpec.user_region", "JobSpec.max_latency_ms", "JobSpec.workload_json", "JobSpec.group_size",
    "JobSpec.accelerators", "JobSpec.max_run_seconds", "JobSpec.allowed_regions",
    # 0.17.0's spec.clusters, pinned at 4 for now: 0.16.0 reads a version-4 file and would drop it on rewrite
    # (a rollback loses the bound; docs/operators.md's "Upgrading to 0.17.0" says so). The lead decides on 5.
    "JobSpec.clusters",
    "ClusterAffinity.names", "ClusterAffinity.match_labels", "ClusterAffinity.match_expressions",
    # 0.19.0's spec.clusters.sameAs, at 4: 0.18.0 reads spec.clusters strictly, so a file holding a job that sets it
    # is refused at start naming the row (StoreUnreadable), never stripped (docs/operators.md's "Upgrading to
    # 0.19.0" says how to roll back)
    "ClusterAffinity.same_as",
    "LabelRequirement.key", "LabelRequirement.operator", "LabelRequirement.values",
    # 0.18.0's spec.failurePolicy and its spent count (server/failure_restarts.py), at 4 as 0.17.0's fields: 0.17.0
    # reads a version-4 file, ignores both keys and drops them when it rewrites a job (a rollback ends such a job at
    # its next failure, and the budget is gone from each job 0.17.0 wrote; docs/operators.md's "Upgrading to
    # 0.18.0" says so). The lead decides on 5.
    "JobSpec.failure_policy", "FailurePolicy.max_restarts", "Job.failure_restarts",
    # 0.20.0's cluster of the last restart (server/restored_cooldowns.py), at 4: 0.19.0 ignores the key and drops it
    # when it rewrites a job; all a rollback loses is a cool-down kept across a restart (30 s), never a job.
    "Job.last_restart_cluster",
    # 0.19.0's spec.regions.weights and spec.prefer (scheduler/weights.py, cheapest.py), at 4 as 0.18.0's fields:
    # 0.18.0 reads a version-4 file, ignores both keys and drops them when it rewrites a job (a rollback places such
    # a job by room and policy from then on; docs/operators.md's "Upgrading to 0.19.0" says so). The lead decides
    # on 5.
    "JobSpec.region_weights", "JobSpec.prefer",
    # 0.20.0's pod sets of a brought workload (model/pod_sets.py), at 4: 0.19.0 reads a version-4 file, ignores the
    # key and holds and bills such a job as `replicas` x `resources` (the largest role's ask), as it did; it drops the
    # key when it rewrites the job, and 0.20.0 then holds that job so too (docs/operators.md's "Upgrading to 0.20.0").
    "JobSpec.pod_sets", "PodSetAsk.name", "PodSetAsk.count", "PodSetAsk.resources",
    # 0.21.0's elastic gang minimum (model/elastic.py), at 4: 0.20.0 reads a version-4 file and ignores the key (a
    # pending one is a whole gang again); it drops the key when it rewrites the job, and it would place a gang
    # running below its size again for the rest, so docs/operators.md's "Upgrading to 0.21.0" says to end those
    # before a rollback. The lead decides on 5.
    "JobSpec.min_replicas",
    "Resources.cpu_milli", "Resources.memory_bytes", "Resources.accelerator_milli",
    "AcceleratorAlternative.milli", "AcceleratorAlternative.model", "AcceleratorAlternative.vendor",
    "AcceleratorAlternative.min_memory_mib", "AcceleratorAlternative.pod_template_json",
    "AcceleratorAlternative.resource_name",
    "Reason.code", "Reason.message", "Reason.never",
    "Placement.placement_id", "Placement.job_id", "Placement.cluster", "Placement.region", "Placement.replicas",
    "Placement.accelerator_model", "Placement.generation", "Placement.phase", "Placement.message",
    "Placement.accelerator_vendor", "Placement.accelerator_resource", "Placement.accelerator_milli",
    "Placement.alternative", "Placement.unit_milli", "Placement.replicas_running", "Placement.replicas_ready",
    "Placement.nodes", "Placement.ended_at",
    "JobHold.by", "JobHold.at", "JobHold.admin", "Job.throttled",
    "Job.elastic_left", "ElasticLeft.cluster", "ElasticLeft.replicas", "ElasticLeft.at",
})
# Kept out of the store on purpose (model/job.py says why for each): judged again, or said again, after a restart.
NOT_STORED = frozenset({"Reason.never", "Placement.nodes", "Job.waiting_on", "Job.throttled", "Job.elastic_left"})
SHIPPED_0_14 = 3  # the version 0.8.0 to 0.14.0 write and read up to


def _fields(cls: type, sample: Any, seen: set[type] | None = None) -> set[str]:
    """"Class.field" of `cls` and of every dataclass its fields hold (in a list, a tuple, an Optional), as their type
    hints say and as `sample` (a `cls` with every field set) holds. Both: a class mypyc compiled keeps only the outer
    class of a hint (`list` for list[Placement], `type` for Reason | None), so on the compiled build only the
    sample's values name the dataclasses inside; interpreted, the hints name one that the sample left out too."""
    seen = set() if seen is None else seen
    if cls in seen:
        return set()
    seen.add(cls)
    out: set[str] = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        out.add(f"{cls.__name__}.{f.name}")
        value = getattr(sample, f.name, None)
        held: dict[type, Any] = {c: None for c in _dataclasses_in(hints[f.name])}
        for v in (value if isinstance(value, list | tuple) else [value]):
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                held[type(v)] = v
        for inner, inner_sample in held.items():
            out |= _fields(inner, inner_sample, seen)
    return out


def _dataclasses_in(hint: Any) -> list[type]:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return [hint]
    return [c for arg in typing.get_args(hint) for c in _dataclasses_in(arg)]


def _every_field_set() -> Job:
    """A job with no field at its default, so that a field the store drops cannot compare equal by chance."""
    spec = JobSpec(
        name="train", kind=JobKind.INFERENCE, replicas=4, resources=Resources(2000, 8 << 30, 8000),
        accelerator_models=("H100",), queue="research", priority=7, preferred_regions=("west",), namespace="team-a",
        labels=(("app", "llm"), ("tier", "a")), annotations=(("federator.io/depends-on", "afterok:prep-3f9a1c"),
                                                             ("federator.io/user", "alice")),
        pod_template_json='{"spec":{}}', preemptible=True, min_regions=2, user_region="east", max_latency_ms=40,
        workload_json='{"apiVersion":"apps/v1","kind":"Deployment"}', group_size=2,
        accelerators=(AcceleratorAlternative(8000, model="H100", vendor="nvidia", min_memory_mib=81920,
                                             pod_template_json='{"a":1}', resource_name="nvidia.com/gpu"),),
        max_run_seconds=3600, allowed_regions=("east", "west"),
        clusters=ClusterAffinity(names=("east-1",), match_labels=(("federator.io/provider", "oregon-dc"),),
                                 match_expressions=(LabelRequirement("tier", LabelOperator.IN, ("gold",)),),
                                 same_as=("learner-3f9a1c",)),
        failure_policy=FailurePolicy(max_restarts=3), region_weights=(("east", 3), ("west", 1)),
        prefer=Preference.CHEAPEST,
        pod_sets=(PodSetAsk("learner", 2, Resources(2000, 8 << 30, 8000)),
                  PodSetAsk("rollout", 2, Resources(1000, 1 << 30, 1000))), min_replicas=2)
    placement = Placement(
        placement_id=PlacementId("train-1.g3.east-1"), job_id=JobId("train-1"), cluster="east-1", region="east",
        replicas=2, accelerator_model="H100", generation=3, phase=JobPhase.RUNNING, message="2/2 running",
        accelerator_vendor="nvidia", accelerator_resource="nvidia.com/gpu", accelerator_milli=8000, alternative=1,
        unit_milli=1000, replicas_running=2, replicas_ready=1, nodes=(("node-1", 2),), ended_at=1_796_520_100.0)
    return Job(
        job_id=JobId("train-1"), spec=spec, submitted_at=1_796_520_000.0, phase=JobPhase.RUNNING,
        pending_reason=Reason(ReasonCode.INSUFFICIENT_CPU, "needs 4 x 64", never=NeverRunnable.QUOTA),
        placements=[placement], placed_at=1_796_520_010.0, finished_at=1_796_520_200.0, message="placed",
        generation=3, early_failure="east-2 after 4s: ImagePullBackOff", started_at=1_796_520_020.0,
        ran_seconds=12.5, waiting_since=1_796_520_005.0, hold=JobHold(by="admin", at=1_796_519_990.0, admin=True),
        restarts=2, last_restart_at=1_796_520_004.0,
        last_restart_reason=Reason(ReasonCode.CLUSTER_NOT_READY, "east-1 was Lost", never=NeverRunnable.QUOTA),
        waiting_on=(JobId("prep-3f9a1c"),), throttled=True, failure_restarts=1, last_restart_cluster="east-2",
        elastic_left=ElasticLeft("east-1", 3, 1_796_520_003.0))


def _at_defaults(obj: Any, name: str) -> list[str]:
    """Fields of `obj` (and of the dataclasses it holds) left at their default: the sample must set each."""
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        if value == default:
            out.append(f"{name}.{f.name}")
        for inner in (value if isinstance(value, list | tuple) else [value]):
            if dataclasses.is_dataclass(inner) and not isinstance(inner, type):
                out += _at_defaults(inner, type(inner).__name__)
    return out


def _without_unstored(job: Job) -> Job:
    return dataclasses.replace(
        job, waiting_on=(), throttled=False, elastic_left=None,
        pending_reason=dataclasses.replace(job.pending_reason, never=None) if job.pending_reason else None,
        last_restart_reason=(dataclasses.replace(job.last_restart_reason, never=None) if job.last_restart_reason
                             else None),
        placements=[dataclasses.replace(p, nodes=()) for p in job.placements])


def test_the_fields_of_a_stored_job_are_pinned_at_the_schema_version() -> None:
    now = _fields(Job, _every_field_set())
    assert now == PINNED and PINNED_AT == schema.SCHEMA_VERSION, (
        f"the fields of a stored job changed (added: {sorted(now - PINNED)}, gone: {sorted(PINNED - now)}) or the "
        f"schema version did ({PINNED_AT} -> {schema.SCHEMA_VERSION}). If the release before this one reads a file "
        "of this version and would drop or ignore the new field (it rewrites each job with the fields it knows: "
        "0.13.0 stripped 0.14.0's regions.allowed and holds), raise SCHEMA_VERSION in store/schema.py with a step; "
        "then set PINNED to the new fields and PINNED_AT to the version, and set the field in _every_field_set")


def test_every_field_of_a_job_survives_the_store(tmp_path: Path) -> None:
    sample = _every_field_set()
    assert _at_defaults(sample, "Job") == []  # a field at its default would pass below even if dropped
    assert {f for f in PINNED if f in NOT_STORED} == NOT_STORED
    store = SqliteJobStore(tmp_path / "db")
    store.put([sample])
    store.close()
    again = SqliteJobStore(tmp_path / "db")
    try:
        assert again.load() == [_without_unstored(sample)]
    finally:
        again.close()


def test_a_file_this_build_wrote_is_refused_by_a_reader_of_the_previous_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The previous release's check, as shipped (0.8.0 to 0.14.0 read "up to 3"): it stops at start, one line, and
    writes nothing; 0.13.0 on a 0.15 file is refused, not a silent strip of regions.allowed and holds."""
    db = tmp_path / "db"
    store = SqliteJobStore(db)
    store.put([_every_field_set()])
    store.close()
    before = db.read_bytes()
    monkeypatch.setattr(sqlite_store, "SCHEMA_VERSION", SHIPPED_0_14)
    with pytest.raises(StoreUnreadable) as got:
        SqliteJobStore(db)
    assert str(got.value) == (f"job store {db}: schema version '{schema.SCHEMA_VERSION}' found, this federator reads "
                              f"versions up to {SHIPPED_0_14}: use the federator that wrote it")
    assert db.read_bytes() == before
    c = sqlite3.connect(db)
    assert c.execute("SELECT count(*) FROM jobs").fetchone() == (1,)
    c.close()


def test_same_as_is_stored_apart_from_what_0_18_0_reads_strictly() -> None:
    """0.18.0 reads a stored job's "clusters" strictly (a key it does not know fails the row, and the store with it)
    and ignores a top-level key it does not know: sameAs is kept apart, so a rollback starts, the job's other bounds
    kept and its co-location dropped, as region_weights and prefer are."""
    job = _every_field_set()
    doc = job_to_dict(job)
    assert "sameAs" not in doc["spec"]["clusters"] and doc["spec"]["cluster_same_as"] == ["learner-3f9a1c"]
    assert job_from_dict(doc).spec.clusters == job.spec.clusters
    alone = dataclasses.replace(job.spec, clusters=ClusterAffinity(same_as=("learner-3f9a1c",)))
    assert "clusters" not in spec_to_dict(alone)
