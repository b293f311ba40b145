"""The federator's custom resources as plain dicts: FederatedJob status, MemberCluster. Pure functions.

A FederatedJob's status is the durable record of its job in Kubernetes mode
(`store.KubeJobStore`): everything needed to rebuild the federator's `Job`
after a restart or a leader change is in it (job id, phase, placements with
their fencing generation, timestamps), next to what `kubectl get fj` shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from federator.backends.kube.workloads.common import placement_label
from federator.jobfile import API_VERSION, parse_job
from federator.model import (
    BUILTIN_WORKLOAD_KINDS,
    MILLI,
    ClusterCapacity,
    ClusterState,
    Job,
    JobHold,
    JobId,
    JobKind,
    JobPhase,
    JobSpec,
    Placement,
    PlacementId,
    Reason,
    ReasonCode,
    format_accelerator_milli_free_of_total,
    format_free_of_total,
    format_job_accelerators,
    format_placements,
    pool_unit,
    run_seconds,
)
from federator.model.cluster import left_out_text
from federator.model.cordon import Cordon
from federator.podtemplates import JOB_LABEL
from federator.security.authz import owner_of, recorded_owner
from federator.timestamps import utc_micro

FINALIZER = "federator.io/placements"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

Obj = dict[str, Any]


def timestamp(t: float) -> str:
    """RFC 3339 with microseconds, as Kubernetes writes them; "" for 0."""
    if not t:
        return ""
    return utc_micro(t)


def parse_timestamp(text: object) -> float:
    if not isinstance(text, str) or not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def job_document(cr: Mapping[str, Any]) -> Obj:
    """The job-file document of a FederatedJob object: what `parse_job` validates.

    Server-side metadata (uid, managedFields, kubectl's last-applied copy of the
    spec) is dropped; labels and annotations are the user's. So is the object's own
    spec.ttlSecondsAfterFinished: its lifetime, not the job's (finished_ttl.py).
    """
    meta = cr.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    doc_meta: Obj = {"name": meta.get("name"), "namespace": meta.get("namespace", "default")}
    if meta.get("labels"):
        doc_meta["labels"] = dict(meta["labels"])
    if annotations:
        doc_meta["annotations"] = annotations
    return {"apiVersion": cr.get("apiVersion", API_VERSION), "kind": cr.get("kind"), "metadata": doc_meta,
            "spec": {k: v for k, v in (cr.get("spec") or {}).items() if k != "ttlSecondsAfterFinished"}}


def spec_of(cr: Mapping[str, Any]) -> JobSpec:
    """Validate a FederatedJob with the one validator files and the API use; raises JobFileError."""
    meta = cr.get("metadata") or {}
    return parse_job(job_document(cr), source=f"FederatedJob {meta.get('namespace')}/{meta.get('name')}")


def condition(kind: str, ok: bool, reason: str, message: str, now: str, generation: int,
               old: Mapping[str, Mapping[str, Any]]) -> Obj:
    status = "True" if ok else "False"
    prev = old.get(kind)
    since = prev.get("lastTransitionTime") if prev and prev.get("status") == status else now
    return {"type": kind, "status": status, "reason": reason, "message": message[:1024],
            "lastTransitionTime": since or now, "observedGeneration": generation}


def end_conditions(phase: JobPhase, reason: str, message: str, now: str, generation: int,
                   old: Mapping[str, Mapping[str, Any]]) -> list[Obj]:
    """`Succeeded` and `Failed`, the outcome a pipeline waits on as it does on a batch/v1 Job's `Complete` and
    `Failed` (`Finished` is True for every end, its reason the outcome; outside QA G2). `Failed` is True for a
    Failed or Cancelled job, and for a FederatedJob the federator refused (`reason` then the refusal's, e.g.
    Invalid): every end but success, so `kubectl wait --for=condition=Failed` never waits out its timeout on a job
    that will not succeed. Both False until the job ends, their reason its phase."""
    succeeded, failed = phase is JobPhase.SUCCEEDED, phase.is_terminal and phase is not JobPhase.SUCCEEDED
    return [condition("Succeeded", succeeded, reason, message if succeeded else "", now, generation, old),
            condition("Failed", failed, reason, message if failed else "", now, generation, old)]


def available(job: Job, now: str, generation: int, old: Mapping[str, Mapping[str, Any]]) -> Obj:
    """An inference job's `Available`: True while it runs with every replica spec.replicas asks ready to serve
    (status.readyReplicas), as a Deployment's or a LeaderWorkerSet's: what a blue/green cut-over (a GitOps tool's
    health check, `kubectl wait --for=condition=Available`) waits on before the old job is deleted (outside QA
    G11). Its reason is ReplicasReady, ReplicasNotReady while it runs short, else the phase."""
    ready, wanted = job.replicas_ready, job.spec.replicas
    running = job.phase is JobPhase.RUNNING
    ok = running and ready >= wanted
    reason = ("ReplicasReady" if ok else "ReplicasNotReady") if running else job.phase.value
    message = f"{ready} of {wanted} replicas ready" if job.phase.is_active else ""
    return condition("Available", ok, reason, message, now, generation, old)


def job_status(job: Job, *, generation: int = 0, old_conditions: list[Mapping[str, Any]] | None = None,
               now: float) -> Obj:
    """The FederatedJob status for a job (what `kubectl get fj` shows, and the durable record)."""
    clusters = sorted({p.cluster for p in job.placements})
    regions = sorted({p.region for p in job.placements})
    reason = job.pending_reason
    stamp = timestamp(now)
    old = {str(c.get("type")): c for c in old_conditions or []}
    phase = job.phase
    placed = phase in (JobPhase.PLACED, JobPhase.RUNNING) or bool(job.placed_at)
    conditions = [
        condition("Placed", placed, reason.code.value if reason and not placed else phase.value,
                   (reason.message if reason and not placed else
                    f"placed in {', '.join(clusters)}" if clusters else ""), stamp, generation, old),
        condition("Running", phase is JobPhase.RUNNING, phase.value, job.message if phase.is_terminal else "",
                   stamp, generation, old),
        condition("Finished", phase.is_terminal, phase.value, job.message if phase.is_terminal else "", stamp,
                   generation, old),
        *end_conditions(phase, phase.value, job.message if phase.is_terminal else "", stamp, generation, old),
    ]
    if job.spec.kind is JobKind.INFERENCE:
        conditions.append(available(job, stamp, generation, old))
    user, groups = owner_of(job.spec)
    return {
        "jobId": job.job_id,
        # Who submitted it over the gRPC API ("" for a FederatedJob made with kubectl): the owner a job is rebuilt
        # with, from the status only the federator writes, not from annotations anyone who may edit the object can.
        "owner": {"user": user, "groups": ",".join(sorted(groups))},
        "phase": phase.value,
        "cluster": ",".join(clusters),
        "region": ",".join(regions),
        "placementId": job.placements[0].placement_id if job.placements else "",
        "placementIds": [p.placement_id for p in job.placements],
        # Every part of a spread job, for `kubectl get fj -o wide` (a printer column's JSONPath cannot join a list)
        "placementSummary": format_placements(job),
        "accelerators": format_job_accelerators(job),
        # Pending: the scheduler's reason; Placed: what the member waits for (e.g. Kueue's reason); then the end.
        "message": job.message or (reason.message if reason and phase is JobPhase.PENDING else ""),
        "pendingReason": {"code": reason.code.value, "message": reason.message} if reason else None,
        "observedGeneration": generation,
        "placementGeneration": job.generation,
        # Replicas a Placed or Running job is short (a spread job that lost a part; pendingReason says why they
        # wait): derived from spec.replicas and the placements, which are what a restart reads back.
        "replicasWaiting": job.replicas_waiting,
        # Of the replicas it asked for, those its members say run, and of those the ones ready to serve (derived
        # from the placements' counts, JobUpdate.replicas_running/replicas_ready): the number an SRE reads and
        # alerts on where the message is prose (outside QA F2). kubectl's READY "2/4" is readyReplicas/spec.
        "runningReplicas": job.replicas_running,
        "readyReplicas": job.replicas_ready,
        # What the live placements hold, starting or running: the scale subresource's status replicas (`kubectl
        # scale`, an autoscaler), so spec.replicas against it says how far the job is from its count.
        "replicas": sum(p.replicas for p in job.placements if p.phase.is_active) if job.phase.is_active else 0,
        # The scale subresource's selector (labelSelectorPath): a HorizontalPodAutoscaler refuses a target without
        # one, even one scaled by external metrics. The label is on every pod of the job, in whichever member.
        "selector": f"{JOB_LABEL}={placement_label(job.job_id)}",
        # The early failure the job was placed again after (server/early_failures.py): at most once, so a restart
        # must know it was.
        "earlyFailure": job.early_failure,
        # How many times a placement ended for a cause not the job's own and it was queued again, and the last
        # one's reason and time (server/restarts.py): kubectl's Restarts column. A restart reads them back.
        "restarts": job.restarts,
        # Of them, those after a failure, counted toward spec.failurePolicy.maxRestarts (server/failure_restarts.py):
        # a restart or a new leader reads it back, so a spent restart is never granted again.
        "failureRestarts": job.failure_restarts,
        # Its cluster only when one member's report was the cause (Job.last_restart_cluster): a restart reads it back.
        "lastRestart": ({"code": job.last_restart_reason.code.value, "message": job.last_restart_reason.message,
                         "at": timestamp(job.last_restart_at),
                         **({"cluster": job.last_restart_cluster} if job.last_restart_cluster else {})}
                        if job.last_restart_reason else None),
        "submittedAt": timestamp(job.submitted_at),
        "placedAt": timestamp(job.placed_at),
        # The run-time clock spec.maxRunSeconds is checked against (server/run_limits.py): a restart reads it back.
        "startedAt": timestamp(job.started_at),
        "ranSeconds": job.ran_seconds,  # the earlier attempts only: the clock's stored part, read back above
        # What a user asks "how long did it run" of: every attempt, the current one up to `now` (its end once it
        # ended), as the RUN column shows it (outside QA, HPC H5: ranSeconds read as that and was 0 for a job
        # that ran once). Derived, never read back; as of the status's writing.
        "totalRunSeconds": round(run_seconds(job, now), 3),
        "finishedAt": timestamp(job.finished_at),
        # When its current (or latest) wait began, if not at submission: a scale-up, a lost part (Job.waiting_since)
        "waitingSince": timestamp(job.waiting_since),
        # Who held it and when, while it is held (Job.hold, server/job_holds.py): never placed until released.
        # Read back by a restart; null when not held, and once the job ended: a hold is of a waiting job and ends
        # with it, so kubectl's Held column (status.hold.by) is empty for a job cancelled (or deleted) while held.
        "hold": hold_status(job.hold) if job.hold and not phase.is_terminal else None,
        "placements": [
            {
                "placementId": p.placement_id,
                "cluster": p.cluster,
                "region": p.region,
                "replicas": p.replicas,
                "acceleratorVendor": p.accelerator_vendor,
                "acceleratorModel": p.accelerator_model,
                "acceleratorResource": p.accelerator_resource,
                "acceleratorMilli": p.accelerator_milli,
                "alternative": p.alternative,
                "generation": p.generation,
                "phase": p.phase.value,
                "message": p.message,
                **({} if p.replicas_running is None else {"runningReplicas": p.replicas_running}),
                **({} if p.replicas_ready is None else {"readyReplicas": p.replicas_ready}),
                # When it reached its final phase (Placement.ended_at, JobUpdate.ended_at as checked): what its
                # usage record, the job's finishedAt and run time end at, so a restart or a new leader bills as
                # the standalone store does. Absent while it has not ended.
                **({"endedAt": timestamp(p.ended_at)} if p.ended_at else {}),
            }
            for p in job.placements
        ],
        "conditions": conditions,
    }


def invalid_status(message: str, *, generation: int, now: float, reason: str = "Invalid") -> Obj:
    """The status of a FederatedJob the federator refused (the message names the fields, or the rule)."""
    stamp = timestamp(now)
    return {"phase": JobPhase.FAILED.value, "message": message, "observedGeneration": generation,
            "pendingReason": None,
            "conditions": [condition("Finished", True, reason, message, stamp, generation, {}),
                           *end_conditions(JobPhase.FAILED, reason, message, stamp, generation, {})]}


def refused(cr: Mapping[str, Any]) -> bool:
    """Whether the federator already judged this FederatedJob and refused it: a Failed status with no job, which
    only `invalid_status` writes (a job's own status always names it). A refusal holds for the spec it judged
    (status.observedGeneration): a federator that starts, or a new leader, leaves it alone instead of judging it
    again: judged before every member had reported, an unknown accelerator model was only a warning, and the
    refused object came back as a Pending job (outside QA F15). A newer spec (the CRD lets a refused object's
    change: unadmitted.py) is judged again, once every member has reported."""
    status = cr.get("status") or {}
    return status.get("phase") == JobPhase.FAILED.value and not status.get("jobId")


def accepted_of(spec: JobSpec) -> Obj:
    """status.accepted: what the federator took of its FederatedJob's metadata and spec.replicas when it accepted
    the job (and each scale it took since), which a restart rebuilds the job from. The spec is immutable but for
    spec.replicas; metadata is not, so a label or annotation edited on an accepted object (an annotation
    federator.io/master-port of "abc", a 65th label), or a scale the federator refused, is no part of the job: a
    rebuild from the live object failed the running job at the next start and orphaned its workload (outside QA
    G10), or read a count the federator had refused (G4)."""
    return {**({} if spec.workload_json else {"replicas": spec.replicas}), "labels": dict(spec.labels),
            "annotations": dict(spec.annotations)}


def as_accepted(cr: Mapping[str, Any]) -> Obj:
    """The object as the federator accepted it: its spec, with status.accepted's replicas, labels and annotations
    where the status has them (a status written before the field: the live object's, as then)."""
    accepted = (cr.get("status") or {}).get("accepted")
    if not isinstance(accepted, Mapping):
        return dict(cr)
    meta = {k: v for k, v in (cr.get("metadata") or {}).items() if k not in ("labels", "annotations")}
    for key in ("labels", "annotations"):  # written every time, so missing is none (an empty map may not be kept)
        meta[key] = dict(accepted[key]) if isinstance(accepted.get(key), Mapping) else {}
    spec = dict(cr.get("spec") or {})
    if isinstance(accepted.get("replicas"), int) and "workload" not in spec:
        spec["replicas"] = accepted["replicas"]
    return {**cr, "metadata": meta, "spec": spec}


def _accepted_spec(cr: Mapping[str, Any]) -> JobSpec:
    """The spec of `as_accepted(cr)`. Its labels and annotations were checked when they were accepted and are taken
    as they are, not judged again: a newer federator's stricter check (fewer labels, say) must not fail the job at
    its first start."""
    doc = as_accepted(cr)
    if doc is cr or not isinstance((cr.get("status") or {}).get("accepted"), Mapping):
        return spec_of(cr)
    labels, annotations = doc["metadata"].pop("labels"), doc["metadata"].pop("annotations")
    return replace(spec_of(doc), labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
                   annotations=tuple(sorted((str(k), str(v)) for k, v in annotations.items())))


def job_from_resource(cr: Mapping[str, Any]) -> Job | None:
    """Rebuild the federator's Job from a FederatedJob it wrote status to; None if it never did. The spec is the
    one the federator accepted (`as_accepted`), not whatever the object's metadata says now."""
    status = cr.get("status") or {}
    job_id = status.get("jobId")
    if not job_id:
        return None
    spec = _accepted_spec(cr)
    owner = status.get("owner")
    if isinstance(owner, Mapping):  # else a status written before the owner was (the annotations, as then)
        spec = recorded_owner(spec, str(owner.get("user") or ""), str(owner.get("groups") or ""))
    reason: Mapping[str, Any] = status.get("pendingReason") or {}
    code = str(reason.get("code", ""))
    return Job(
        job_id=JobId(job_id),
        spec=spec,
        submitted_at=parse_timestamp(status.get("submittedAt")),
        phase=JobPhase(status.get("phase", JobPhase.PENDING.value)),
        pending_reason=Reason(ReasonCode(code), str(reason.get("message", "")))
        if code in {c.value for c in ReasonCode}
        else None,
        placements=[
            Placement(
                placement_id=PlacementId(p["placementId"]),
                job_id=JobId(job_id),
                cluster=p["cluster"],
                region=p.get("region", ""),
                replicas=int(p.get("replicas", 1)),
                accelerator_model=p.get("acceleratorModel", ""),
                generation=int(p.get("generation", 0)),
                phase=JobPhase(p.get("phase", "Placed")),
                message=p.get("message", ""),
                accelerator_vendor=str(p.get("acceleratorVendor", "")),
                accelerator_resource=str(p.get("acceleratorResource", "")),
                accelerator_milli=int(p.get("acceleratorMilli", 0)),
                alternative=int(p.get("alternative", 0)),
                replicas_running=_count(p.get("runningReplicas")),
                replicas_ready=_count(p.get("readyReplicas")),
                ended_at=parse_timestamp(p.get("endedAt")),  # 0: not ended, or a status from before the field
            )
            for p in status.get("placements") or []
        ],
        placed_at=parse_timestamp(status.get("placedAt")),
        started_at=parse_timestamp(status.get("startedAt")),
        ran_seconds=_seconds(status.get("ranSeconds")),
        finished_at=parse_timestamp(status.get("finishedAt")),
        # A Pending job's status message repeats its pending reason (for kubectl's Message column): not its own.
        message="" if status.get("phase") == JobPhase.PENDING.value and status.get("message") == reason.get("message")
        else str(status.get("message", "")),
        generation=int(status.get("placementGeneration", 0)),
        early_failure=str(status.get("earlyFailure") or ""),
        waiting_since=parse_timestamp(status.get("waitingSince")),
        hold=_hold(status.get("hold")),
        **_restarts(status),
    )


def _restarts(status: Obj) -> dict[str, Any]:
    """The restart count and the last restart read back from a status (a status from before 0.17.0 has none: its
    placementGeneration less its current placement, as the store's codec reads an old job)."""
    last = status.get("lastRestart") or {}
    code = str(last.get("code", ""))
    reason = Reason(ReasonCode(code), str(last.get("message", ""))) if code in {c.value for c in ReasonCode} \
        else None
    count = status.get("restarts")
    if not isinstance(count, int) or count < 0:
        count = max(0, int(status.get("placementGeneration", 0) or 0) - (1 if status.get("placements") else 0))
    spent = status.get("failureRestarts")
    return {"restarts": count, "failure_restarts": spent if isinstance(spent, int) and spent > 0 else 0,
            "last_restart_reason": reason,
            "last_restart_at": parse_timestamp(last.get("at")) if reason else 0.0,
            "last_restart_cluster": str(last.get("cluster") or "") if reason else ""}


def hold_status(hold: JobHold) -> Obj:
    """A hold as status.hold writes it (`by`, `at`, `admin`)."""
    return {"by": hold.by, "at": timestamp(hold.at), "admin": hold.admin}


def _hold(raw: object) -> JobHold | None:
    """A status's hold (Job.hold); None where there is none (not held, or a status from before 0.14.0)."""
    if not isinstance(raw, Mapping):
        return None
    return JobHold(by=str(raw.get("by") or ""), at=parse_timestamp(raw.get("at")), admin=raw.get("admin") is True)


# -- MemberCluster ------------------------------------------------------------


def _seconds(raw: object) -> float:
    """A status's seconds (ranSeconds): 0 where it is missing (a status from before the field) or not a number."""
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0 else 0.0


def _count(raw: object) -> int | None:
    """A placement's replica count as stored in the status (None where its agent never said, or it is not one)."""
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else None


def member_cluster(name: str, *, region: str, labels: Mapping[str, str]) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "MemberCluster",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "federator"}},
            "spec": {"region": region, "labels": dict(labels)}}


def kinds_text(capacity: ClusterCapacity) -> str:
    """"Deployment,Job,JobSet,StatefulSet": the kinds a member runs, by kind name (unique across groups)."""
    return ",".join(sorted(k.split(".", 1)[0] for k in capacity.workload_kinds or BUILTIN_WORKLOAD_KINDS))


def devices(accelerator_milli: int) -> int | float:
    """Milli whole-device equivalents as a MemberCluster's status says them: 8, or 11.75 where MIG partitions
    make a fraction (the CRD's type is number)."""
    whole, rest = divmod(accelerator_milli, MILLI)
    return whole if not rest else accelerator_milli / MILLI


def member_event(name: str, uid: str, *, reason: str, message: str, now: float, instance: str,
                 warning: bool = True) -> Obj:
    """A core v1 Event about MemberCluster `name` (cluster-scoped: the Event lives in `default`, as a Node's do),
    which `kubectl describe mc NAME` lists."""
    stamp = timestamp(now)
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{name}.", "namespace": "default",
                     "labels": {"app.kubernetes.io/managed-by": "federator"}},
        "involvedObject": {"apiVersion": API_VERSION, "kind": "MemberCluster", "name": name, "uid": uid},
        "reason": reason, "message": message[:1024], "type": "Warning" if warning else "Normal",
        "source": {"component": "federator"}, "reportingComponent": "federator", "reportingInstance": instance[:128],
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


def member_cluster_status(*, state: ClusterState, connected: bool, last_report_at: float,
                          capacity: ClusterCapacity | None, gang_admission: str = "", message: str = "",
                          summary: str = "", maintenance: Cordon | None = None, over_bound: str = "",
                          drain_jobs_left: int | None = None, kept: Obj | None = None,
                          conditions: list[Obj] | None = None, orphans: int = 0) -> Obj:
    """`message`: why the cluster is not Ready when the federator knows more than its state (its agent cannot
    reach the member's API server: server/member_health.py); None otherwise, which the status merge patch
    reads as "remove it", so a cluster Ready again does not keep the last one. Likewise `maintenance` (its
    provider's, server/maintenance.py) and `over_bound` (the federator's words for a clamped report,
    server/over_bound.py), named as jobs.proto's ClusterStatus names them. `summary`: the State column,
    `state` and what else holds as `federator get clusters` says it (model/state_words.py; `state` alone
    when not given), while `state` stays the lease's state a restart reads back. `drain_jobs_left`: while an
    admin's drain holds (spec.drain, server/drains.py), the jobs it has yet to move (ClusterStatus.drain_jobs_left);
    None otherwise, removed. `kept`: what a restart must read back of the member (`member_facts`). `conditions`:
    what holds that an admin must fix (a `RegionMismatch`: server/region_mismatch.py); removed when none.
    `orphans`: ClusterStatus.orphan_placements (server/orphans.py); removed when 0."""
    status: Obj = {**(kept or {}), "state": state.value, "stateSummary": summary or state.value, "connected": connected,
                   "lastReportTime": timestamp(last_report_at), "message": message or None,
                   "maintenance": maintenance.reason if maintenance is not None else None,
                   "maintenanceSince": timestamp(maintenance.at) or None if maintenance is not None else None,
                   "overBound": over_bound or None, "drainJobsLeft": drain_jobs_left,
                   "conditions": conditions or None, "orphanPlacements": orphans or None}
    if gang_admission:
        status["gangAdmission"] = gang_admission
    if capacity is not None:
        status.update(
            {
                # Whole-device equivalents, as `federator get clusters` (a MIG partition its share); the
                # per-model rows below count the pool's own units, "partitions" for MIG.
                "acceleratorsFree": devices(capacity.free_accelerator_milli),
                "acceleratorsTotal": devices(capacity.total_accelerator_milli),
                "cpuMilliFree": capacity.cpu_milli_free,
                "cpuMilliAllocatable": capacity.cpu_milli_allocatable,
                "vendors": ", ".join(f"{v} {format_accelerator_milli_free_of_total(free, total)}"
                                     for v, (free, total) in capacity.by_vendor().items()),
                "models": ", ".join(f"{p.accelerator_model} "
                                    + format_free_of_total(p.free_accelerators, p.total_accelerators,
                                                           p.quota_held_accelerators, pool_unit(p.sharing))
                                    for p in capacity.accelerator_pools),
                "accelerators": [
                    {
                        "vendor": p.vendor,
                        "model": p.accelerator_model,
                        **({"family": p.family} if p.family else {}),
                        "memoryMiB": p.memory_mib,
                        "resourceName": p.resource_name,
                        "total": p.total_accelerators,
                        "allocatable": p.allocatable_accelerators,
                        "free": p.free_accelerators,
                        "nodesByFree": list(p.nodes_by_free),
                        **({"sharing": p.sharing} if p.sharing else {}),
                        **({"unitMilli": p.unit_milli} if p.unit_milli else {}),
                        **({"quotaHeld": p.quota_held_accelerators} if p.quota_held_accelerators else {}),
                        **({"largestNode": p.largest_node_accelerators} if p.largest_node_accelerators else {}),
                    }
                    for p in capacity.accelerator_pools
                ],
                "workloadKinds": kinds_text(capacity),
                # devices its agent sees and does not offer, and why (None: none, which the merge patch removes)
                "leftOut": left_out_text(capacity.left_out) or None,
            }
        )
    return status


def member_facts(*, features: Iterable[str], certificate_not_after: float, resizes_owed: Iterable[str],
                 lost_at: float) -> Obj:
    """What a MemberCluster's status keeps of a member for a restart or a new leader, as the standalone members store
    keeps it (store/members.py): its agent's Hello features, its certificate's notAfter, the Resizes it has not
    acknowledged, when it went Lost. None or [] where there is none: the merge patch removes or empties it."""
    return {"features": sorted(features), "certificateNotAfter": timestamp(certificate_not_after) or None,
            "resizesOwed": sorted(resizes_owed), "lostAt": timestamp(lost_at) or None}


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """`member_facts` read back from a status (each empty or 0 where missing or not of its type: a status written
    before the fields, or by hand)."""

    features: frozenset[str] = frozenset()
    certificate_not_after: float = 0.0
    resizes_owed: frozenset[str] = frozenset()
    lost_at: float = 0.0


def read_member_facts(status: Mapping[str, Any]) -> MemberFacts:
    return MemberFacts(features=_strings(status.get("features")),
                       certificate_not_after=parse_timestamp(status.get("certificateNotAfter")),
                       resizes_owed=_strings(status.get("resizesOwed")), lost_at=parse_timestamp(status.get("lostAt")))


def _strings(raw: object) -> frozenset[str]:
    return frozenset(x for x in raw if isinstance(x, str) and x) if isinstance(raw, list) else frozenset()


__all__ = [
    "FINALIZER", "MemberFacts", "accepted_of", "as_accepted", "available", "condition", "end_conditions",
    "hold_status", "invalid_status", "job_document", "job_from_resource", "job_status", "kinds_text", "member_cluster",
    "member_cluster_status", "member_event", "member_facts", "parse_timestamp", "read_member_facts", "refused",
    "spec_of", "timestamp",
]
