"""Translate between wire messages and domain types, at the edge only.

Everything inside the federator works on `federator.model`; only the gRPC
transports (server, agent, CLI client) touch generated messages.
"""

from __future__ import annotations

import re

from federator.api.left_out import LeftOutError, left_out_from_pb, left_out_to_pb
from federator.api.pool_vendor import PoolVendorError, pool_vendor
from federator.api.v1 import agent_pb2, jobs_pb2, types_pb2
from federator.catalog import catalog
from federator.model import (
    MAX_RESTARTS_LIMIT,
    AcceleratorAlternative,
    AcceleratorPool,
    ClusterAffinity,
    ClusterCapacity,
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
from federator.model.array import ARRAY_ANNOTATIONS, ArrayTask
from federator.model.dependency import CONDITIONS, DEPENDS_ON_ANNOTATION, Condition, JobDependency, checked
from federator.model.node_room import NodeRoom
from federator.model.pod_sets import PodSetAsk
from federator.model.pool_room import RoomClass, shared_bucket, whole_bucket

_KIND_TO_PB = {JobKind.TRAINING: types_pb2.JOB_KIND_TRAINING, JobKind.INFERENCE: types_pb2.JOB_KIND_INFERENCE}
_KIND_FROM_PB = {v: k for k, v in _KIND_TO_PB.items()}
_PHASE_TO_PB = {
    JobPhase.PENDING: types_pb2.JOB_PHASE_PENDING,
    JobPhase.PLACED: types_pb2.JOB_PHASE_PLACED,
    JobPhase.RUNNING: types_pb2.JOB_PHASE_RUNNING,
    JobPhase.SUCCEEDED: types_pb2.JOB_PHASE_SUCCEEDED,
    JobPhase.FAILED: types_pb2.JOB_PHASE_FAILED,
    JobPhase.CANCELLED: types_pb2.JOB_PHASE_CANCELLED,
}
_PHASE_FROM_PB: dict[int, JobPhase] = {v: k for k, v in _PHASE_TO_PB.items()}


MAX_WORKLOAD_KINDS = 64
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,62}(\.[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?$")


class WireError(ValueError):
    """A message whose fields make no sense; names the field."""


def phase_to_pb(phase: JobPhase) -> types_pb2.JobPhase:
    return _PHASE_TO_PB[phase]


def phase_from_pb(value: int) -> JobPhase:
    try:
        return _PHASE_FROM_PB[value]
    except KeyError:
        raise WireError(f"phase: unknown job phase {value}") from None


def spec_to_pb(spec: JobSpec) -> types_pb2.JobSpec:
    return types_pb2.JobSpec(
        name=spec.name,
        namespace=spec.namespace,
        kind=_KIND_TO_PB[spec.kind],
        replicas=spec.replicas,
        resources=types_pb2.Resources(
            cpu_milli=spec.resources.cpu_milli,
            memory_bytes=spec.resources.memory_bytes,
            accelerator_milli=spec.resources.accelerator_milli,
        ),
        accelerator_models=list(spec.accelerator_models),
        queue=spec.queue,
        priority=spec.priority,
        preferred_regions=list(spec.preferred_regions),
        labels=dict(spec.labels),
        annotations={k: v for k, v in spec.annotations if (k != DEPENDS_ON_ANNOTATION or spec.depends_on is None)
                     and (k not in ARRAY_ANNOTATIONS or spec.array is None)},
        pod_template_json=spec.pod_template_json,
        preemptible=spec.preemptible,
        min_regions=spec.min_regions,
        user_region=spec.user_region,
        max_latency_ms=spec.max_latency_ms,
        workload_json=spec.workload_json,
        group_size=spec.group_size,
        accelerators=[types_pb2.AcceleratorAlternative(
            model=a.model, vendor=a.vendor, milli=a.milli, min_memory_mib=a.min_memory_mib,
            pod_template_json=a.pod_template_json, resource_name=a.resource_name) for a in spec.accelerators],
        max_run_seconds=spec.max_run_seconds,
        allowed_regions=list(spec.allowed_regions),
        clusters=_affinity_to_pb(spec.clusters),
        failure_policy=(types_pb2.FailurePolicy(max_restarts=spec.failure_policy.max_restarts)
                        if spec.failure_policy.set else None),  # unset when none: a reply without it is a 0.17.0's
        region_weights=dict(spec.region_weights),
        prefer=_PREFER_TO_PB[spec.prefer],
        pod_sets=[types_pb2.PodSet(name=p.name, count=p.count, resources=types_pb2.Resources(
            cpu_milli=p.resources.cpu_milli, memory_bytes=p.resources.memory_bytes,
            accelerator_milli=p.resources.accelerator_milli)) for p in spec.pod_sets],
        min_replicas=spec.min_replicas,
        depends_on=_dependency_to_pb(spec.depends_on),
        array=_array_to_pb(spec.array),
    )


def _affinity_to_pb(affinity: ClusterAffinity) -> types_pb2.ClusterAffinity | None:
    """JobSpec.clusters; unset when it bounds nothing, so a reply without it from a federator before 0.17.0 tells
    the client the bound was dropped (cli/submit.py)."""
    if not affinity.bounds:
        return None
    selector = types_pb2.LabelSelector(match_labels=dict(affinity.match_labels), match_expressions=[
        types_pb2.LabelRequirement(key=r.key, operator=r.operator.value, values=list(r.values))
        for r in affinity.match_expressions])
    return types_pb2.ClusterAffinity(names=list(affinity.names), selector=selector, same_as=list(affinity.same_as))


def _affinity_from_pb(pb: types_pb2.JobSpec) -> ClusterAffinity:
    """JobSpec.clusters, structurally: an operator the model does not know is a WireError naming it (parse_job
    checks the rest, as it does a job file's)."""
    if not pb.HasField("clusters"):
        return ClusterAffinity()
    sel = pb.clusters.selector
    requirements: list[LabelRequirement] = []
    for i, r in enumerate(sel.match_expressions):
        try:
            operator = LabelOperator(r.operator)
        except ValueError:
            raise WireError(f"spec.clusters.selector.matchExpressions[{i}].operator: must be one of "
                            f"{', '.join(o.value for o in LabelOperator)}, got {r.operator[:40]!r}") from None
        requirements.append(LabelRequirement(r.key, operator, tuple(r.values)))
    return ClusterAffinity(names=tuple(pb.clusters.names), match_labels=tuple(sorted(sel.match_labels.items())),
                           match_expressions=tuple(requirements), same_as=tuple(pb.clusters.same_as))


def _array_to_pb(task: ArrayTask | None) -> types_pb2.ArrayTask | None:
    """The wire's field of the array annotations a task's spec keeps (model/array.py), sent instead of them."""
    return None if task is None else types_pb2.ArrayTask(array_id=task.array_id, task_id=task.task_id,
                                                         max_running=task.max_running)


def _dependency_to_pb(dep: JobDependency | None) -> types_pb2.JobDependency | None:
    """The wire's field of what the spec keeps as an annotation (model/dependency.py); the annotation is not sent
    beside it, so a federator before 0.14.0 sees no dependency at all, and its reply lacks the field."""
    return None if dep is None else types_pb2.JobDependency(condition=dep.condition.value, jobs=list(dep.jobs))


def _annotations_from_pb(pb: types_pb2.JobSpec) -> tuple[tuple[str, str], ...]:
    """The spec's annotations, with depends_on kept as its annotation (model/dependency.py); WireError naming
    spec.dependsOn when it does not read."""
    out = dict(pb.annotations)
    if pb.HasField("depends_on"):
        try:
            condition = Condition(pb.depends_on.condition or Condition.AFTER_OK.value)
        except ValueError:
            raise WireError(f"spec.dependsOn.condition: must be {CONDITIONS}, got "
                            f"{pb.depends_on.condition[:40]!r}") from None
        dep = checked(condition, tuple(pb.depends_on.jobs))
        if isinstance(dep, str):
            raise WireError(f"spec.dependsOn.{dep}")
        out[DEPENDS_ON_ANNOTATION] = dep.annotation()
    if pb.HasField("array"):  # kept as its annotations; Submit refuses a spec that sets it (server/arrays.py)
        out.update(ArrayTask(pb.array.array_id, pb.array.task_id, pb.array.max_running).annotations())
    return tuple(sorted(out.items()))


def spec_from_pb(pb: types_pb2.JobSpec) -> JobSpec:
    """Structural translation only; semantic validation is federator.jobfile's job."""
    kind = _KIND_FROM_PB.get(pb.kind)
    if kind is None and pb.workload_json and pb.kind == types_pb2.JOB_KIND_UNSPECIFIED:
        kind = JobKind.TRAINING  # derived from the workload on Submit (jobfile.parse_job)
    if kind is None:
        raise WireError(f"spec.kind: must be training or inference, got enum value {pb.kind}")
    if pb.group_size < 0:  # a positive one is replaced by the workload's own, as kind and replicas are
        raise WireError(f"spec.group_size: must not be negative, got {pb.group_size}; leave it 0, the federator "
                        "derives it from workload_json")
    return JobSpec(
        name=pb.name,
        namespace=pb.namespace or "default",
        kind=kind,
        replicas=pb.replicas,
        resources=Resources(pb.resources.cpu_milli, pb.resources.memory_bytes, pb.resources.accelerator_milli),
        accelerator_models=tuple(pb.accelerator_models),
        queue=pb.queue or "default",
        priority=pb.priority,
        preferred_regions=tuple(pb.preferred_regions),
        labels=tuple(sorted(pb.labels.items())),
        annotations=_annotations_from_pb(pb),
        pod_template_json=pb.pod_template_json,
        preemptible=pb.preemptible,
        min_regions=pb.min_regions or 1,
        user_region=pb.user_region,
        max_latency_ms=pb.max_latency_ms,
        workload_json=pb.workload_json,
        group_size=max(1, pb.group_size),
        accelerators=tuple(AcceleratorAlternative(a.milli, a.model, a.vendor, a.min_memory_mib, a.pod_template_json,
                                                  a.resource_name) for a in pb.accelerators),
        max_run_seconds=pb.max_run_seconds,
        allowed_regions=tuple(pb.allowed_regions),
        clusters=_affinity_from_pb(pb),
        failure_policy=_failure_policy_from_pb(pb),
        region_weights=tuple(sorted(pb.region_weights.items())),  # checked with the rest by jobfile.parse_job
        prefer=_prefer_from_pb(pb.prefer),
        pod_sets=_pod_sets_from_pb(pb),
        min_replicas=pb.min_replicas,  # checked with the rest by jobfile.parse_job (model/elastic.py)
    )


def _pod_sets_from_pb(pb: types_pb2.JobSpec) -> tuple[PodSetAsk, ...]:
    """JobSpec.pod_sets, structurally checked (a count or an amount below 0 is a WireError naming it). What a
    client sends on Submit is replaced by the federator's own, derived from workload_json (jobfile.parse_job)."""
    out = []
    for i, p in enumerate(pb.pod_sets):
        r = p.resources
        if p.count < 0 or min(r.cpu_milli, r.memory_bytes, r.accelerator_milli) < 0:
            raise WireError(f"spec.pod_sets[{i}]: a count or an amount below 0")
        out.append(PodSetAsk(p.name, p.count, Resources(r.cpu_milli, r.memory_bytes, r.accelerator_milli)))
    return tuple(out)


_PREFER_TO_PB = {Preference.POLICY: types_pb2.PREFERENCE_UNSPECIFIED,
                 Preference.CHEAPEST: types_pb2.PREFERENCE_CHEAPEST}
_PREFER_FROM_PB = {v: k for k, v in _PREFER_TO_PB.items()}


def _prefer_from_pb(value: int) -> Preference:
    """JobSpec.prefer: a value this federator does not know is a WireError naming the field (a newer client's
    preference must not be read as the policy's)."""
    known = _PREFER_FROM_PB.get(value)  # type: ignore[call-overload]
    if known is None:
        raise WireError(f"spec.prefer: unknown preference {value} (known: "
                        f"{', '.join(repr(p.value) for p in Preference if p.value)}, or unset for the policy's)")
    return known


def _failure_policy_from_pb(pb: types_pb2.JobSpec) -> FailurePolicy:
    """JobSpec.failure_policy: a count out of its range is a WireError naming the job file's field, never a
    traceback (FailurePolicy refuses it)."""
    count = pb.failure_policy.max_restarts
    if not 0 <= count <= MAX_RESTARTS_LIMIT:
        raise WireError(f"spec.failurePolicy.maxRestarts: must be an integer from 0 to {MAX_RESTARTS_LIMIT} (how "
                        f"many times the job is placed again after it fails; 0: never), got {count}")
    return FailurePolicy(max_restarts=count)


def placement_to_pb(p: Placement) -> types_pb2.Placement:
    return types_pb2.Placement(
        placement_id=p.placement_id, job_id=p.job_id, cluster=p.cluster, region=p.region,
        replicas=p.replicas, accelerator_model=p.accelerator_model, phase=_PHASE_TO_PB[p.phase],
        generation=p.generation, message=p.message, accelerator_vendor=p.accelerator_vendor,
        accelerator_resource=p.accelerator_resource, accelerator_milli=p.accelerator_milli,
        alternative=p.alternative, replicas_running=p.replicas_running, replicas_ready=p.replicas_ready,
        unit_milli=p.unit_milli,
    )


def placement_from_pb(pb: types_pb2.Placement) -> Placement:
    return Placement(
        placement_id=PlacementId(pb.placement_id), job_id=JobId(pb.job_id), cluster=pb.cluster,
        region=pb.region, replicas=pb.replicas, accelerator_model=pb.accelerator_model,
        generation=pb.generation, phase=phase_from_pb(pb.phase), message=pb.message,
        accelerator_vendor=pb.accelerator_vendor, accelerator_resource=pb.accelerator_resource,
        accelerator_milli=pb.accelerator_milli, alternative=pb.alternative,
        replicas_running=pb.replicas_running if pb.HasField("replicas_running") else None,
        replicas_ready=pb.replicas_ready if pb.HasField("replicas_ready") else None,
        unit_milli=min(max(pb.unit_milli, 0), 1000),  # what a listing shows: a worth past a device's is not one
    )


def job_to_pb(job: Job) -> types_pb2.Job:
    out = types_pb2.Job(
        job_id=job.job_id, spec=spec_to_pb(job.spec), phase=_PHASE_TO_PB[job.phase],
        placements=[placement_to_pb(p) for p in job.placements], submitted_at=job.submitted_at,
        placed_at=job.placed_at, finished_at=job.finished_at, message=job.message, generation=job.generation,
        replicas_waiting=job.replicas_waiting,  # derived from spec and placements: job_from_pb needs none
        replicas_running=job.replicas_running, replicas_ready=job.replicas_ready,  # derived too
        started_at=job.started_at, ran_seconds=job.ran_seconds,
        waiting_since=job.waiting_since, restarts=job.restarts, last_restart_at=job.last_restart_at,
        failure_restarts=job.failure_restarts,
    )
    if job.last_restart_reason is not None:
        out.last_restart_reason.CopyFrom(types_pb2.Reason(code=job.last_restart_reason.code,
                                                          message=job.last_restart_reason.message))
    if job.pending_reason is not None:
        out.pending_reason.CopyFrom(types_pb2.Reason(code=job.pending_reason.code,
                                                     message=job.pending_reason.message))
    if job.hold is not None:
        out.hold.CopyFrom(types_pb2.JobHold(by=job.hold.by, at=job.hold.at, admin=job.hold.admin))
    return out


def _reason_from_pb(pb: types_pb2.Reason) -> Reason | None:
    if not pb.code:
        return None
    try:
        code = ReasonCode(pb.code)
    except ValueError:
        code = ReasonCode.WAITING
    return Reason(code, pb.message)


def job_from_pb(pb: types_pb2.Job) -> Job:
    reason = _reason_from_pb(pb.pending_reason) if pb.HasField("pending_reason") else None
    return Job(
        job_id=JobId(pb.job_id), spec=spec_from_pb(pb.spec), submitted_at=pb.submitted_at,
        phase=phase_from_pb(pb.phase), pending_reason=reason,
        placements=[placement_from_pb(p) for p in pb.placements],
        placed_at=pb.placed_at, finished_at=pb.finished_at, message=pb.message, generation=pb.generation,
        started_at=pb.started_at, ran_seconds=pb.ran_seconds,
        waiting_since=pb.waiting_since,
        hold=JobHold(by=pb.hold.by, at=pb.hold.at, admin=pb.hold.admin) if pb.HasField("hold") else None,
        restarts=max(0, pb.restarts), last_restart_at=pb.last_restart_at,
        failure_restarts=max(0, pb.failure_restarts),
        last_restart_reason=_reason_from_pb(pb.last_restart_reason) if pb.HasField("last_restart_reason") else None,
    )


def capacity_to_pb(cap: ClusterCapacity) -> agent_pb2.CapacityReport:
    return agent_pb2.CapacityReport(
        sequence=cap.sequence,
        accelerator_pools=[
            agent_pb2.AcceleratorPool(
                accelerator_model=p.accelerator_model,
                nodes_by_free=list(p.nodes_by_free),
                total_accelerators=p.total_accelerators,
                allocatable_accelerators=p.allocatable_accelerators,
                free_accelerators=p.free_accelerators,
                shared_devices=[agent_pb2.SharedDevices(free_milli=f, count=n) for f, n in p.shared_devices],
                host_room=[agent_pb2.HostRoom(cpu_milli=c, memory_bytes=m) for c, m in p.host_room],
                shared_room=[
                    agent_pb2.SharedRoom(free_milli=f, cpu_milli=c, memory_bytes=m) for f, c, m in p.shared_room
                ],
                room_classes=[
                    agent_pb2.RoomClass(free_accelerators=max(b, 0), shared_free_milli=max(-b, 0), cpu_milli=c,
                                        memory_bytes=m, count=n)
                    for b, c, m, n in p.room_classes
                ],
                sharing=p.sharing,
                unit_milli=p.unit_milli,
                vendor=p.vendor,
                memory_mib=p.memory_mib,
                resource_name=p.resource_name,
                family=p.family,
                quota_held_accelerators=p.quota_held_accelerators,
                largest_node_accelerators=p.largest_node_accelerators,
            )
            for p in cap.accelerator_pools
        ],
        cpu_milli_allocatable=cap.cpu_milli_allocatable,
        cpu_milli_free=cap.cpu_milli_free,
        memory_bytes_allocatable=cap.memory_bytes_allocatable,
        memory_bytes_free=cap.memory_bytes_free,
        node_cpu_milli_free_max=cap.node_cpu_milli_free_max,
        node_memory_bytes_free_max=cap.node_memory_bytes_free_max,
        largest_node_cpu_milli=cap.largest_node_cpu_milli,
        largest_node_memory_bytes=cap.largest_node_memory_bytes,
        placement_ids=sorted(cap.placement_ids),
        workload_kinds=sorted(cap.workload_kinds),
        node_room=[agent_pb2.NodeRoom(cpu_milli=c, memory_bytes=m, count=n) for c, m, n in cap.node_room],
        left_out=left_out_to_pb(cap),
    )


#: An AcceleratorPool.family (agent.proto): a model name's shape.
_FAMILY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

#: The AcceleratorPool.sharing values the contract allows (agent.proto).
POOL_SHARING = frozenset({"", "None", "TimeSlicing", "MPS", "HAMi", "MIG"})


#: The most room classes a pool may carry (agent.proto RoomClass).
MAX_ROOM_CLASSES = 65536


def _room_classes(p: agent_pb2.AcceleratorPool, where: str, shared: tuple[tuple[int, int], ...]
                  ) -> tuple[RoomClass, ...]:
    """A pool's room classes, checked against the obligations agent.proto gives them."""
    if not p.room_classes:
        return ()
    field = f"{where}.room_classes"
    if len(p.room_classes) > MAX_ROOM_CLASSES:
        raise WireError(f"{field}: at most {MAX_ROOM_CLASSES} classes, got {len(p.room_classes)}")
    counted: dict[int, int] = {}
    out = []
    for k, c in enumerate(p.room_classes):
        if c.count < 1 or c.cpu_milli < 0 or c.memory_bytes < 0:
            raise WireError(f"{field}[{k}]: count must be at least 1, CPU and memory not negative")
        if c.shared_free_milli:
            if not 0 < c.shared_free_milli < 1000 or c.free_accelerators:
                raise WireError(f"{field}[{k}]: a class of shared accelerators has shared_free_milli 1..999 and "
                                f"free_accelerators 0, got {c.shared_free_milli} and {c.free_accelerators}")
            bucket = shared_bucket(c.shared_free_milli)
        else:
            if not 0 <= c.free_accelerators < len(p.nodes_by_free):
                raise WireError(f"{field}[{k}].free_accelerators: must name a nodes_by_free bucket "
                                f"(0..{len(p.nodes_by_free) - 1}), got {c.free_accelerators}")
            bucket = whole_bucket(c.free_accelerators)
        counted[bucket] = counted.get(bucket, 0) + c.count
        out.append((bucket, c.cpu_milli, c.memory_bytes, c.count))
    for i, n in enumerate(p.nodes_by_free):
        if (i or counted.get(whole_bucket(0))) and counted.get(whole_bucket(i), 0) != n:
            raise WireError(f"{field}: the classes of bucket {i} count {counted.get(whole_bucket(i), 0)} nodes, "
                            f"nodes_by_free[{i}] is {n}")
    for f, n in shared:
        if counted.get(shared_bucket(f), 0) != n:
            raise WireError(f"{field}: the classes of shared_free_milli {f} count {counted.get(shared_bucket(f), 0)} "
                            f"accelerators, shared_devices says {n}")
    stray = [-b for b in counted if b < 0 and -b not in dict(shared)]
    if stray:
        raise WireError(f"{field}: shared_free_milli {stray[0]} has classes but no shared_devices entry")
    merged: dict[tuple[int, int, int], int] = {}
    for bucket, cpu, mem, n in out:
        merged[(bucket, cpu, mem)] = merged.get((bucket, cpu, mem), 0) + n
    return tuple(sorted((b, c, m, n) for (b, c, m), n in merged.items() if b))


def capacity_from_pb(pb: agent_pb2.CapacityReport) -> ClusterCapacity:
    pools = []
    for i, p in enumerate(pb.accelerator_pools):
        if not p.accelerator_model:
            raise WireError(f"capacity.accelerator_pools[{i}].accelerator_model: must not be empty")
        if any(n < 0 for n in p.nodes_by_free):
            raise WireError(f"capacity.accelerator_pools[{i}].nodes_by_free: counts must not be negative")
        if any(not 0 < s.free_milli < 1000 or s.count < 0 for s in p.shared_devices):
            raise WireError(
                f"capacity.accelerator_pools[{i}].shared_devices: free_milli must be 1..999, counts not negative"
            )
        shared = tuple(sorted((s.free_milli, s.count) for s in p.shared_devices if s.count))
        if p.host_room and len(p.host_room) != len(p.nodes_by_free):
            raise WireError(f"capacity.accelerator_pools[{i}].host_room: must have one entry per nodes_by_free entry "
                            f"({len(p.nodes_by_free)}), got {len(p.host_room)}")
        if any(r.cpu_milli < 0 or r.memory_bytes < 0 for r in p.host_room) or any(
                r.cpu_milli < 0 or r.memory_bytes < 0 or not 0 < r.free_milli < 1000 for r in p.shared_room):
            raise WireError(
                f"capacity.accelerator_pools[{i}].host_room, shared_room: CPU and memory must not be negative, "
                f"free_milli must be 1..999"
            )
        classes = _room_classes(p, f"capacity.accelerator_pools[{i}]", shared)
        room = tuple((r.cpu_milli, r.memory_bytes) for r in p.host_room)
        shared_room = tuple(sorted((r.free_milli, r.cpu_milli, r.memory_bytes) for r in p.shared_room))
        if p.sharing not in POOL_SHARING:
            raise WireError(f"capacity.accelerator_pools[{i}].sharing: {p.sharing!r} is not one of "
                            f"{', '.join(repr(s) for s in sorted(POOL_SHARING))}")
        if p.sharing == "MIG" and not 0 < p.unit_milli <= 1000:
            raise WireError(f"capacity.accelerator_pools[{i}].unit_milli: a MIG pool's partition is worth 1..1000, "
                            f"got {p.unit_milli}")
        if p.memory_mib < 0:
            raise WireError(f"capacity.accelerator_pools[{i}].memory_mib: must not be negative")
        if p.quota_held_accelerators < 0:
            raise WireError(f"capacity.accelerator_pools[{i}].quota_held_accelerators: must not be negative, "
                            f"got {p.quota_held_accelerators}")
        if p.largest_node_accelerators < 0:
            raise WireError(f"capacity.accelerator_pools[{i}].largest_node_accelerators: must not be negative "
                            f"(0: not said), got {p.largest_node_accelerators}")
        if p.family and not _FAMILY.match(p.family):
            raise WireError(f"capacity.accelerator_pools[{i}].family: must be a model family name of at most 64 "
                            f"letters, digits, '.', '_' or '-' (such as Ascend910B), got {p.family[:80]!r}")
        try:
            vendor = pool_vendor(catalog(), p, f"capacity.accelerator_pools[{i}]")
        except PoolVendorError as exc:
            raise WireError(str(exc)) from exc
        known = catalog().describe_model(p.accelerator_model, vendor)  # fills what an agent left out
        pools.append(
            AcceleratorPool(
                p.accelerator_model,
                tuple(p.nodes_by_free),
                p.total_accelerators,
                p.allocatable_accelerators,
                shared,
                host_room=room,
                shared_room=shared_room,
                room_classes=classes,
                sharing=p.sharing,
                unit_milli=p.unit_milli if p.sharing == "MIG" else 0,
                vendor=known.vendor,
                memory_mib=p.memory_mib or known.memory_mib,
                resource_name=p.resource_name or known.resource_name,
                family=p.family or known.family,
                quota_held_accelerators=p.quota_held_accelerators,
                largest_node_accelerators=p.largest_node_accelerators,
            )
        )
    if len(pb.workload_kinds) > MAX_WORKLOAD_KINDS:
        raise WireError(f"capacity.workload_kinds: at most {MAX_WORKLOAD_KINDS} kinds, got {len(pb.workload_kinds)}")
    for i, k in enumerate(pb.workload_kinds):
        if not _KIND.match(k):
            raise WireError(f"capacity.workload_kinds[{i}]: must be Kind.group (such as JobSet.jobset.x-k8s.io), "
                            f"got {k[:80]!r}")
    for name in ("cpu_milli_allocatable", "cpu_milli_free", "memory_bytes_allocatable", "memory_bytes_free",
                 "node_cpu_milli_free_max", "node_memory_bytes_free_max", "largest_node_cpu_milli",
                 "largest_node_memory_bytes"):
        if getattr(pb, name) < 0:
            raise WireError(f"capacity.{name}: must not be negative")
    try:
        left_out = left_out_from_pb(pb)
    except LeftOutError as exc:
        raise WireError(str(exc)) from exc
    return ClusterCapacity(
        accelerator_pools=tuple(pools),
        cpu_milli_allocatable=pb.cpu_milli_allocatable,
        cpu_milli_free=pb.cpu_milli_free,
        memory_bytes_allocatable=pb.memory_bytes_allocatable,
        memory_bytes_free=pb.memory_bytes_free,
        node_cpu_milli_free_max=pb.node_cpu_milli_free_max,
        node_memory_bytes_free_max=pb.node_memory_bytes_free_max,
        largest_node_cpu_milli=pb.largest_node_cpu_milli,
        largest_node_memory_bytes=pb.largest_node_memory_bytes,
        sequence=pb.sequence,
        placement_ids=frozenset(pb.placement_ids),
        workload_kinds=frozenset(pb.workload_kinds),
        node_room=_node_room(pb),
        left_out=left_out,
    )


def _node_room(pb: agent_pb2.CapacityReport) -> NodeRoom:
    """A report's node room, checked against the obligations agent.proto gives it (bounds: validation.py)."""
    if len(pb.node_room) > MAX_ROOM_CLASSES:
        raise WireError(f"capacity.node_room: at most {MAX_ROOM_CLASSES} classes, got {len(pb.node_room)}")
    for k, r in enumerate(pb.node_room):
        if r.count < 1 or r.cpu_milli < 0 or r.memory_bytes < 0:
            raise WireError(f"capacity.node_room[{k}]: count must be at least 1, CPU and memory not negative, got "
                            f"count {r.count}, cpu_milli {r.cpu_milli}, memory_bytes {r.memory_bytes}")
    merged: dict[tuple[int, int], int] = {}
    for r in pb.node_room:
        merged[(r.cpu_milli, r.memory_bytes)] = merged.get((r.cpu_milli, r.memory_bytes), 0) + r.count
    return tuple(sorted((c, m, n) for (c, m), n in merged.items()))


__all__ = [
    "WireError",
    "capacity_from_pb",
    "capacity_to_pb",
    "job_from_pb",
    "job_to_pb",
    "jobs_pb2",
    "phase_from_pb",
    "phase_to_pb",
    "placement_from_pb",
    "placement_to_pb",
    "spec_from_pb",
    "spec_to_pb",
]
