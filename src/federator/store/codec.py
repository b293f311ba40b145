"""A job as a JSON document: the job store's row format (`federator get jobs -o json` prints cli/job_document.py's).

Why by hand, not `dataclasses.asdict`: every accepted Submit is encoded here
before its reply goes out, and `asdict` (recursive, deep-copying) was the
largest share of the writer's time. Why lenient on read: a store outlives the
code that wrote it. Documents written before accelerators had vendors use the
GPU-era names (`gpu_models`, `gpu_milli`, `gpu_model`); they load unchanged,
and a reason code this version no longer knows becomes a plain wait (the next
cycle gives the job a fresh reason anyway). Every field that a placement or a
spec carries is written, so a restarted federator holds the same reservations
and runs the same chosen alternative as before it stopped.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from federator.jobfile_affinity import clusters_document, parse_clusters
from federator.jobfile_failure_policy import failure_policy_document, parse_failure_policy
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
    Placement,
    PlacementId,
    Preference,
    Reason,
    ReasonCode,
    Resources,
)
from federator.model.pod_sets import PodSetAsk


def spec_bytes(spec: JobSpec) -> int:
    """A spec's size as the store writes it (its part of the job's JSON document: compact, ASCII-escaped, as
    `SqliteJobStore.put` encodes): what the byte budgets on unfinished jobs count (server/job_bytes.py)."""
    return len(json.dumps(spec_to_dict(spec), separators=(",", ":")))


def job_to_dict(job: Job) -> dict[str, Any]:
    reason = job.pending_reason
    return {
        "job_id": job.job_id,
        "spec": spec_to_dict(job.spec),
        "submitted_at": job.submitted_at,
        "phase": job.phase.value,
        "pending_reason": {"code": reason.code.value, "message": reason.message} if reason else None,
        "placements": [
            {"placement_id": p.placement_id, "job_id": p.job_id, "cluster": p.cluster, "region": p.region,
             "replicas": p.replicas, "accelerator_model": p.accelerator_model, "generation": p.generation,
             "phase": p.phase.value, "message": p.message, "accelerator_vendor": p.accelerator_vendor,
             "accelerator_resource": p.accelerator_resource, "accelerator_milli": p.accelerator_milli,
             "alternative": p.alternative, "replicas_running": p.replicas_running,
             "replicas_ready": p.replicas_ready, "ended_at": p.ended_at,
             **({"unit_milli": p.unit_milli} if p.unit_milli else {})}  # only when set: as 0.11.0 wrote it
            for p in job.placements
        ],
        "placed_at": job.placed_at,
        "finished_at": job.finished_at,
        "message": job.message,
        "generation": job.generation,
        "early_failure": job.early_failure,
        "started_at": job.started_at,
        "ran_seconds": job.ran_seconds,
        "waiting_since": job.waiting_since,
        # only when held: a job never held is the document (and its row) it was; a federator before 0.14.0 ignores
        # the key, and places the job (docs/operators.md, "Upgrading to 0.14.0")
        **({"hold": {"by": job.hold.by, "at": job.hold.at, "admin": job.hold.admin}} if job.hold else {}),
        # the restart count (server/restarts.py): a key of the document, so the schema stays 4
        "restarts": job.restarts, "last_restart_at": job.last_restart_at,
        # of them, those after a failure (server/failure_restarts.py): only when any, so a job that never failed is
        # the document it was; a federator before 0.18.0 ignores the key
        **({"failure_restarts": job.failure_restarts} if job.failure_restarts else {}),
        "last_restart_reason": ({"code": job.last_restart_reason.code.value,
                                 "message": job.last_restart_reason.message} if job.last_restart_reason else None),
        # the cluster a failure restart was for (server/restored_cooldowns.py): only when known, so other jobs are
        # the documents they were; a federator before 0.20.0 ignores the key
        **({"last_restart_cluster": job.last_restart_cluster} if job.last_restart_cluster else {}),
    }


def spec_to_dict(s: JobSpec) -> dict[str, Any]:
    """A spec's part of the job's document."""
    r = s.resources
    doc: dict[str, Any] = {
        "name": s.name, "kind": s.kind.value, "replicas": s.replicas,
        "resources": {"cpu_milli": r.cpu_milli, "memory_bytes": r.memory_bytes,
                      "accelerator_milli": r.accelerator_milli},
        "accelerator_models": list(s.accelerator_models), "queue": s.queue, "priority": s.priority,
        "preferred_regions": list(s.preferred_regions), "namespace": s.namespace,
        "labels": dict(s.labels), "annotations": dict(s.annotations),
        "pod_template_json": s.pod_template_json, "preemptible": s.preemptible, "min_regions": s.min_regions,
        "user_region": s.user_region, "max_latency_ms": s.max_latency_ms, "workload_json": s.workload_json,
        "group_size": s.group_size,
        "accelerators": [_alternative_dict(a) for a in s.accelerators],
    }
    if s.max_run_seconds:  # only when set: a spec without one is the document (and the byte count) it was
        doc["max_run_seconds"] = s.max_run_seconds
    if s.allowed_regions:  # only when set, as max_run_seconds
        doc["allowed_regions"] = list(s.allowed_regions)
    # only when set: spec.clusters as the job file writes it (jobfile_affinity.py), but sameAs apart: 0.18.0 reads
    # "clusters" strictly and would refuse to start on a file holding it; it ignores a key it does not know
    clusters = clusters_document(replace(s.clusters, same_as=()))
    if clusters:
        doc["clusters"] = clusters
    if s.clusters.same_as:
        doc["cluster_same_as"] = list(s.clusters.same_as)
    if s.failure_policy.set:  # only when set: spec.failurePolicy as the job file writes it (jobfile_failure_policy.py)
        doc["failure_policy"] = failure_policy_document(s.failure_policy)
    if s.region_weights:  # only when set: spec.regions.weights as the job file writes it (jobfile_placement_asks.py)
        doc["region_weights"] = dict(s.region_weights)
    if s.prefer:  # only when set, as the rest of 0.19.0's asks
        doc["prefer"] = s.prefer.value
    if s.pod_sets:  # only when set; 0.19.0 ignores the key and reads the job as `replicas` equal ones, as it ran them
        doc["pod_sets"] = [{"name": p.name, "count": p.count, "resources": _resources_dict(p.resources)}
                           for p in s.pod_sets]
    if s.min_replicas:  # only when set; 0.20.0 ignores the key and reads the job as a whole gang (model/elastic.py)
        doc["min_replicas"] = s.min_replicas
    return doc


def _resources_dict(r: Resources) -> dict[str, int]:
    return {"cpu_milli": r.cpu_milli, "memory_bytes": r.memory_bytes, "accelerator_milli": r.accelerator_milli}


def _pod_sets_of(docs: list[dict[str, Any]] | None) -> tuple[PodSetAsk, ...]:
    """spec.pod_sets as stored (derived from spec.workload when the job was submitted)."""
    return tuple(PodSetAsk(str(d["name"]), int(d["count"]), Resources(
        cpu_milli=int(d["resources"].get("cpu_milli", 0)), memory_bytes=int(d["resources"].get("memory_bytes", 0)),
        accelerator_milli=int(d["resources"].get("accelerator_milli", 0)))) for d in docs or ())


def _alternative_dict(a: AcceleratorAlternative) -> dict[str, Any]:
    out: dict[str, Any] = {"milli": a.milli, "model": a.model, "vendor": a.vendor,
                           "min_memory_mib": a.min_memory_mib, "pod_template_json": a.pod_template_json}
    if a.resource_name:  # only when set: a 0.10.0 job's document (and its byte count) stays what it was
        out["resource_name"] = a.resource_name
    return out


def _clusters_of(doc: dict[str, Any] | None, same_as: list[str] | None) -> ClusterAffinity:
    """spec.clusters as stored (checked when the job was submitted), sameAs kept apart; a document that no longer
    reads is a bug."""
    def bad(field: str, problem: str) -> None:
        raise ValueError(f"stored {field}: {problem}")

    affinity = parse_clusters(doc, bad) if doc else ClusterAffinity()
    return replace(affinity, same_as=tuple(str(k) for k in same_as)) if same_as else affinity


def _failure_policy_of(doc: dict[str, Any] | None) -> FailurePolicy:
    """spec.failurePolicy as stored (checked when the job was submitted); a document that no longer reads is a bug."""
    if not doc:
        return FailurePolicy()

    def bad(field: str, problem: str) -> None:
        raise ValueError(f"stored {field}: {problem}")

    return parse_failure_policy(doc, bad)


def job_from_dict(doc: dict[str, Any]) -> Job:
    s = doc["spec"]
    res = s["resources"]
    spec = JobSpec(
        name=s["name"], kind=JobKind(s["kind"]), replicas=s["replicas"],
        resources=Resources(cpu_milli=res.get("cpu_milli", 0), memory_bytes=res.get("memory_bytes", 0),
                            accelerator_milli=res.get("accelerator_milli", res.get("gpu_milli", 0))),
        accelerator_models=tuple(s.get("accelerator_models", s.get("gpu_models", ()))), queue=s["queue"],
        priority=s["priority"], preferred_regions=tuple(s["preferred_regions"]), namespace=s["namespace"],
        labels=tuple(sorted(s["labels"].items())), annotations=tuple(sorted(s["annotations"].items())),
        pod_template_json=s["pod_template_json"], preemptible=s.get("preemptible", False),
        min_regions=s.get("min_regions", 1), user_region=s.get("user_region", ""),
        max_latency_ms=s.get("max_latency_ms", 0), workload_json=s.get("workload_json", ""),
        group_size=s.get("group_size", 1), max_run_seconds=s.get("max_run_seconds", 0),
        allowed_regions=tuple(s.get("allowed_regions", ())),
        clusters=_clusters_of(s.get("clusters"), s.get("cluster_same_as")),
        failure_policy=_failure_policy_of(s.get("failure_policy")),
        region_weights=tuple(sorted((str(r), int(w)) for r, w in s.get("region_weights", {}).items())),
        prefer=Preference(s.get("prefer", "")),
        pod_sets=_pod_sets_of(s.get("pod_sets")),
        min_replicas=int(s.get("min_replicas", 0)),
        accelerators=tuple(
            AcceleratorAlternative(milli=a["milli"], model=a.get("model", ""), vendor=a.get("vendor", ""),
                                   min_memory_mib=a.get("min_memory_mib", 0),
                                   pod_template_json=a.get("pod_template_json", ""),
                                   resource_name=a.get("resource_name", ""))
            for a in s.get("accelerators") or ()),
    )
    return Job(
        job_id=JobId(doc["job_id"]), spec=spec, submitted_at=doc["submitted_at"], phase=JobPhase(doc["phase"]),
        pending_reason=_reason(doc.get("pending_reason")),
        placements=[
            Placement(placement_id=PlacementId(p["placement_id"]), job_id=JobId(p["job_id"]), cluster=p["cluster"],
                      region=p["region"], replicas=p["replicas"],
                      accelerator_model=p.get("accelerator_model", p.get("gpu_model", "")),
                      generation=p["generation"], phase=JobPhase(p["phase"]), message=p["message"],
                      accelerator_vendor=p.get("accelerator_vendor", ""),
                      accelerator_resource=p.get("accelerator_resource", ""),
                      accelerator_milli=p.get("accelerator_milli", 0), alternative=p.get("alternative", 0),
                      replicas_running=p.get("replicas_running"), replicas_ready=p.get("replicas_ready"),
                      ended_at=p.get("ended_at", 0.0), unit_milli=p.get("unit_milli", 0))
            for p in doc["placements"]
        ],
        placed_at=doc["placed_at"], finished_at=doc["finished_at"], message=doc["message"],
        generation=doc.get("generation", 0), early_failure=doc.get("early_failure", ""),
        started_at=doc.get("started_at", 0.0), ran_seconds=doc.get("ran_seconds", 0.0),
        waiting_since=doc.get("waiting_since", 0.0), hold=_hold(doc.get("hold")),
        restarts=doc["restarts"] if "restarts" in doc else restarts_before(doc),
        last_restart_reason=_reason(doc.get("last_restart_reason")), last_restart_at=doc.get("last_restart_at", 0.0),
        failure_restarts=doc.get("failure_restarts", 0), last_restart_cluster=doc.get("last_restart_cluster", ""),
    )


def restarts_before(doc: dict[str, Any]) -> int:
    """The restarts of a job stored before 0.17.0 counted them: each placement but the current one had a generation
    of its own, so its generation less the one it holds now (exact for a gang; a spread job's parts placed apart
    count too). Why: an upgrade must not show a job placed three times as never restarted."""
    return max(0, int(doc.get("generation", 0)) - (1 if doc.get("placements") else 0))


def _hold(doc: dict[str, Any] | None) -> JobHold | None:
    if not doc:
        return None
    return JobHold(by=str(doc.get("by", "")), at=float(doc.get("at", 0.0)), admin=bool(doc.get("admin", False)))


def _reason(doc: dict[str, Any] | None) -> Reason | None:
    if not doc:
        return None
    try:
        return Reason(ReasonCode(doc["code"]), doc["message"])
    except ValueError:  # a code of another version: the job waits, and its next cycle says why
        return Reason(ReasonCode.WAITING, f"{doc['code']}: {doc['message']}")


__all__ = ["job_from_dict", "job_to_dict"]
