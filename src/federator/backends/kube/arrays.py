"""Job arrays in Kubernetes mode: a FederatedJob with `spec.array` is the array, and makes one FederatedJob per task.

Why: a sweep from kubectl or a GitOps tool was a shell loop of FederatedJobs, with no `%N` throttle and no one
object to watch or delete (docs/kubernetes.md, "Job arrays"). The array object is never a job itself. This
controller makes its tasks, as an Indexed Job makes its pods and a JobSet its Jobs:

- Names: task `i` is the FederatedJob `NAME-i` (as standalone mode's `<name>-<index>`, server/arrays.py), in the
  array's namespace, owned by the array (an ownerReference with `controller: true`): `kubectl delete` of the array
  deletes its tasks (the garbage collector; each task's finalizer cancels its job as for any FederatedJob).
- Clashes: every name is checked before any task is made; a name held by a FederatedJob the array does not own is
  never overwritten: the array is refused (phase Failed, condition Failed reason NameClash, a Warning Event) and no
  task made. A clash met while creating (a user's object made meanwhile) deletes the tasks made: all or none.
- Each task carries its array as standalone tasks do (model/array.py's annotations, so FEDERATOR_ARRAY_JOB_ID and
  FEDERATOR_ARRAY_TASK_ID reach its containers), and the array object's name (federator.io/array-name, so a
  spec.dependsOn key may name the array, server/dependencies.py), and is then an ordinary FederatedJob the
  controller submits. The annotations are taken only from a task whose controlling owner is that array
  (`task_problem`): any other object carrying them is refused, as a gRPC Submit's forged spec is.
- The throttle is the federator's own (server/arrays.py `Arrays`): the tasks' jobs carry `maxRunning`, and a new
  leader judges it again from their phases, which are in the tasks' FederatedJobs' status (the store). Nothing of
  it lives in this object.
- The array's status counts its tasks by phase (`tasks`), from the informer's copies of them; once its tasks are
  made (status.arrayId set) it never makes one again: a task deleted by hand counts as deleted, not remade.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError, KubeApi, NotFoundError, Obj
from federator.backends.kube.events import EventReason
from federator.backends.kube.finished_ttl import FIELD as TTL
from federator.backends.kube.finished_ttl import delete
from federator.backends.kube.informer import DELETED
from federator.backends.kube.resources import LAST_APPLIED, condition, end_conditions, spec_of, timestamp
from federator.jobfile import API_VERSION, REQUEST_ID_ANNOTATION, JobFileError
from federator.model import JobPhase
from federator.model.array import ARRAY_ANNOTATIONS, ARRAY_NAME_ANNOTATION, ArrayRequest, ArrayTask, parse_indices

log = logging.getLogger("federator.kube.arrays")
ARRAY_FIELD = "array"  # spec.array: {indices, maxRunning}, as SubmitRequest.array's JobArray
NAME_CLASH = "NameClash"  # the reason of an array refused because a task's name is another object's
TASKS_CREATED = "TasksCreated"  # the condition of an array whose tasks are made
SUBMIT_ANNOTATION = "federator.io/array-submit"  # the token of an array a gRPC Submit made (array_submit.py)


def is_array(obj: Mapping[str, Any]) -> bool:
    """Whether this FederatedJob is an array (spec.array), never a job of its own."""
    return isinstance(obj.get("spec"), Mapping) and ARRAY_FIELD in obj["spec"]


def array_id_of(obj: Mapping[str, Any]) -> str:
    """The array's id, `NAME-<6 hex>` as a standalone array's: its name and the first 6 hex of its uid, so a new
    leader, and an array of that name made again, agree on it without a record."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('name', '')}-{str(meta.get('uid', '')).replace('-', '')[:6]}"


def request_of(obj: Mapping[str, Any]) -> ArrayRequest | str:
    """spec.array checked by the standalone parser; what is wrong names spec.array.indices or .maxRunning."""
    field = (obj.get("spec") or {}).get(ARRAY_FIELD)
    if not isinstance(field, Mapping):
        return "spec.array: must be an object with indices (as 0-99, 1,3,5-7 or 0-15:4) and maxRunning"
    indices, limit = field.get("indices", ""), field.get("maxRunning", 0) or 0
    if not isinstance(indices, str) or not isinstance(limit, int):
        return "spec.array: indices must be a string (as 0-99) and maxRunning a whole number"
    parsed = parse_indices(indices, limit)
    if isinstance(parsed, str):  # the parser names array.indices / array.max_running: the CRD's names here
        return "spec." + parsed.replace("array.max_running", "array.maxRunning")
    return parsed


def owner_ref(obj: Mapping[str, Any]) -> Obj:
    meta = obj["metadata"]
    return {"apiVersion": API_VERSION, "kind": "FederatedJob", "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference of the FederatedJob array that controls this object, or None."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "FederatedJob" and ref.get("apiVersion") == API_VERSION:
            return ref
    return None


def task_object(array: Mapping[str, Any], request: ArrayRequest, index: int) -> Obj:
    """Task `index` of the array: its spec less `array` and the TTL (the array's lifetime: a task deleted at its
    own end would count as deleted, and fail the array; the array's end deletes them all, finished_ttl.py), its
    labels and annotations with the task's array annotations (and a request id `<id>.<index>`, as standalone tasks
    keep), owned by the array."""
    meta = array["metadata"]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in (LAST_APPLIED, SUBMIT_ANNOTATION, ARRAY_NAME_ANNOTATION) and k not in ARRAY_ANNOTATIONS}
    if rid := annotations.get(REQUEST_ID_ANNOTATION):
        annotations[REQUEST_ID_ANNOTATION] = f"{rid}.{index}"
    annotations |= ArrayTask(array_id_of(array), index, request.max_running).annotations()
    annotations[ARRAY_NAME_ANNOTATION] = meta["name"]  # a dependsOn key may name the array (server/dependencies.py)
    task_meta: Obj = {"name": f"{meta['name']}-{index}", "namespace": meta.get("namespace", "default"),
                      "annotations": annotations, "ownerReferences": [owner_ref(array)]}
    if meta.get("labels"):
        task_meta["labels"] = dict(meta["labels"])
    return {"apiVersion": API_VERSION, "kind": "FederatedJob", "metadata": task_meta,
            "spec": {k: v for k, v in (array.get("spec") or {}).items() if k not in (ARRAY_FIELD, TTL)}}


@dataclass(frozen=True, slots=True)
class Plan:
    """What making an array's tasks needs now: the tasks to create, and the names others hold (a clash)."""

    create: tuple[Obj, ...]
    clashes: tuple[str, ...]


def plan(array: Mapping[str, Any], request: ArrayRequest, existing: Mapping[str, Mapping[str, Any]]) -> Plan:
    """The tasks not made yet, and the task names held by an object the array does not control. `existing`: the
    namespace's FederatedJobs by name."""
    uid = array["metadata"]["uid"]
    create: list[Obj] = []
    clashes: list[str] = []
    for index in request.indices:
        task = task_object(array, request, index)
        held = existing.get(task["metadata"]["name"])
        if held is None:
            create.append(task)
        elif (controller_of(held) or {}).get("uid") != uid:
            clashes.append(task["metadata"]["name"])
    return Plan(tuple(create), tuple(clashes))


def clash_message(clashes: Iterable[str], namespace: str) -> str:
    names = list(clashes)
    more = f" (and {len(names) - 3} more)" if len(names) > 3 else ""
    return (f"spec.array: the task name{'s' if len(names) > 1 else ''} {', '.join(names[:3])}{more} in namespace "
            f"{namespace} {'are' if len(names) > 1 else 'is'} taken by a FederatedJob this array does not own; no "
            "task was made and none is overwritten: delete or rename that FederatedJob, or name the array "
            "otherwise, then apply the array again")


def task_problem(obj: Mapping[str, Any], task: ArrayTask, array: Mapping[str, Any] | None) -> str | None:
    """Why a FederatedJob carrying array annotations may not be taken as that array's task: its controlling owner
    must be the array (`array`, the FederatedJob its ownerReference names, None if none) of that id, whose indices
    and throttle the annotations repeat. Else anyone who may create a FederatedJob could join an array, be let go
    by its throttle and be counted in its status (server/arrays.py `forged`)."""
    meta = obj.get("metadata") or {}
    forged = ("spec.array: the federator.io/array-* annotations are set by the federator on the tasks of an array, "
              "not by hand; make an array with spec.array on a FederatedJob")
    ref = controller_of(obj)
    if ref is None or array is None or (array.get("metadata") or {}).get("uid") != ref.get("uid"):
        return forged
    request = request_of(array)
    if isinstance(request, str) or not is_array(array):
        return forged
    named = (meta.get("annotations") or {}).get(ARRAY_NAME_ANNOTATION)  # absent on a task made before 0.18.0
    if (task.array_id != array_id_of(array) or task.task_id not in request.indices
            or named not in (None, ref.get("name"))
            or task.max_running != request.max_running or meta.get("name") != f"{ref.get('name')}-{task.task_id}"):
        return forged
    return None


@dataclass(frozen=True, slots=True)
class TaskCounts:
    """An array's tasks by phase (status.tasks)."""

    total: int
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    deleted: int = 0

    @property
    def phase(self) -> JobPhase:
        """Pending until a task is placed or ends; Succeeded once all succeeded; Failed once all ended and one did
        not succeed (or was deleted); Running between."""
        if self.succeeded == self.total:
            return JobPhase.SUCCEEDED
        if self.succeeded + self.failed + self.deleted == self.total:
            return JobPhase.FAILED
        return JobPhase.PENDING if self.pending == self.total else JobPhase.RUNNING

    def words(self, max_running: int) -> str:
        throttle = f", at most {max_running} at once" if max_running else ""
        return (f"{self.total} tasks{throttle}: {self.running} running, {self.pending} pending, {self.succeeded} "
                f"succeeded, {self.failed} failed" + (f", {self.deleted} deleted" if self.deleted else ""))


def count(request: ArrayRequest, tasks: Iterable[Mapping[str, Any]]) -> TaskCounts:
    """The tasks counted by the phase their FederatedJobs' status says; a task not there is deleted."""
    phases: dict[str, int] = {}
    for task in tasks:
        phase = (task.get("status") or {}).get("phase") or JobPhase.PENDING.value
        phases[phase] = phases.get(phase, 0) + 1
    seen = sum(phases.values())
    return TaskCounts(total=len(request.indices), pending=phases.get(JobPhase.PENDING.value, 0),
                      running=phases.get(JobPhase.PLACED.value, 0) + phases.get(JobPhase.RUNNING.value, 0),
                      succeeded=phases.get(JobPhase.SUCCEEDED.value, 0),
                      failed=phases.get(JobPhase.FAILED.value, 0) + phases.get(JobPhase.CANCELLED.value, 0),
                      deleted=max(len(request.indices) - seen, 0))


def array_status(array: Mapping[str, Any], request: ArrayRequest, counts: TaskCounts, *, now: float) -> Obj:
    """The status of an array whose tasks are made: its id, its tasks' counts, a phase and the conditions
    `kubectl wait` reads (Succeeded, Failed) beside TasksCreated."""
    meta, old = array["metadata"], (array.get("status") or {}).get("conditions") or []
    generation, stamp, phase = int(meta.get("generation", 1)), timestamp(now), counts.phase
    before = {str(c.get("type")): c for c in old if isinstance(c, Mapping)}
    words = counts.words(request.max_running)
    return {"phase": phase.value, "arrayId": array_id_of(array), "observedGeneration": generation,
            "message": words, "tasks": {"total": counts.total, "pending": counts.pending, "running": counts.running,
                                        "succeeded": counts.succeeded, "failed": counts.failed,
                                        "deleted": counts.deleted},
            "conditions": [condition(TASKS_CREATED, True, TASKS_CREATED, f"{counts.total} tasks made", stamp,
                                     generation, before),
                           condition("Finished", phase.is_terminal, phase.value, words if phase.is_terminal else "",
                                     stamp, generation, before),  # spec.ttlSecondsAfterFinished counts from it
                           *end_conditions(phase, phase.value, words, stamp, generation, before)]}


def refused_status(message: str, *, reason: str, generation: int, now: float) -> Obj:
    """An array refused (a bad spec.array, a task's spec the federator refuses, a name clash): no task made."""
    stamp = timestamp(now)
    return {"phase": JobPhase.FAILED.value, "message": message, "observedGeneration": generation,
            "conditions": [condition(TASKS_CREATED, False, reason, message, stamp, generation, {}),
                           condition("Finished", True, reason, message, stamp, generation, {}),
                           *end_conditions(JobPhase.FAILED, reason, message, stamp, generation, {})]}


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two statuses alike but for the conditions' times (no write for a change that is none)."""
    def bare(s: Mapping[str, Any]) -> object:
        return ({k: v for k, v in s.items() if k != "conditions"},
                [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in s.get("conditions") or []])
    return bare(a) == bare(b)


Warn = Callable[[Obj, EventReason, str], None]


class ArrayTasks:
    """The array objects' reconcile (FederatedJobController dispatches an array here, and a task's every event
    brings its array back): make the tasks once, then keep the counts."""

    def __init__(self, api: KubeApi, cache: Callable[[], Mapping[str, Obj]], *, warn: Warn,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.cache = cache  # the informer's FederatedJobs by namespace/name
        self.warn = warn
        self.clock = clock
        self.expected: dict[str, tuple[str, str]] = {}  # a gRPC Submit's token -> its caller (user, groups)
        self._owners: dict[str, tuple[str, str]] = {}  # an array's uid -> the caller whose Submit made it

    def owner(self, array_uid: str) -> tuple[str, str]:
        """Whose jobs the array's tasks are: the caller of the Submit that made it, known to this federator only
        (array_submit.py); ("", "") for an array made with kubectl, as for any FederatedJob made so."""
        return self._owners.get(array_uid, ("", ""))

    async def reconcile(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        if kind == DELETED or meta.get("deletionTimestamp"):
            self._owners.pop(str(meta.get("uid", "")), None)
            return  # its tasks go with it: the garbage collector follows their ownerReferences
        token = (meta.get("annotations") or {}).get(SUBMIT_ANNOTATION, "")
        if token in self.expected:  # made by a Submit of this federator: its tasks are the caller's
            self._owners[meta["uid"]] = self.expected[token]
        status = obj.get("status") or {}
        generation = int(meta.get("generation", 1))
        if not status.get("arrayId") and status.get("phase") == JobPhase.FAILED.value \
                and int(status.get("observedGeneration", 0)) >= generation:
            return  # refused at this generation: a corrected spec (a new generation) is judged again
        request = request_of(obj)
        if isinstance(request, str):
            await self._refuse(obj, request, EventReason.INVALID.value)
            return
        made: list[Obj] | None = []
        if not status.get("arrayId") and (made := await self._make(obj, request)) is None:
            return  # refused: no task made
        await self._write(obj, request, made or [])

    def children(self, obj: Mapping[str, Any], request: ArrayRequest) -> list[Obj]:
        """The tasks the informer holds of this array: its controlled FederatedJobs named as its tasks are
        (NAME-INDEX of its indices). Not any object whose ownerReference names it: anyone who may create a
        FederatedJob in the namespace may write that reference, and such an object, refused as a task, was counted
        as a failed one, failing the array (new59 N8)."""
        meta = obj["metadata"]
        cache, uid, ns = self.cache(), meta["uid"], meta.get("namespace", "default")
        found = (cache.get(f"{ns}/{meta['name']}-{i}") for i in request.indices)  # by key: not a walk of every object
        return [o for o in found if o is not None and (controller_of(o) or {}).get("uid") == uid]

    async def _make(self, obj: Obj, request: ArrayRequest) -> list[Obj] | None:
        """Every task made, or none (a refusal written): the tasks made now (the informer has not seen them yet),
        or None."""
        meta = obj["metadata"]
        ns = meta.get("namespace", "default")
        dep = (obj.get("spec") or {}).get("dependsOn")
        if isinstance(dep, Mapping) and meta["name"] in (dep.get("jobs") or ()):  # each task would wait on itself
            await self._refuse(obj, f"spec.dependsOn.jobs: names this array, {meta['name']}, so every task would wait "
                                    "on the array it is part of and none could ever run; name only what the array "
                                    "waits on", EventReason.INVALID.value)
            return None
        own = {f"{meta['name']}-{i}" for i in request.indices} & set(dep.get("jobs") or ()) \
            if isinstance(dep, Mapping) else set()
        if own:  # that task would wait on itself, and every other task on a task that can never run (new60 N5)
            first = min(own)
            await self._refuse(obj, f"spec.dependsOn.jobs: names {first}, a task of this array: every task copies "
                                    f"spec.dependsOn, so {first} would wait on itself and the others on it, and none "
                                    "could ever run; name only what the array waits on", EventReason.INVALID.value)
            return None
        for index in {request.indices[0], request.indices[-1]}:  # the tasks differ by name and index alone
            try:
                spec_of(task_object(obj, request, index))
            except JobFileError as exc:
                await self._refuse(obj, f"array task {index}: {exc}", EventReason.INVALID.value)
                return None
        existing = {o["metadata"]["name"]: o for key, o in self.cache().items() if key.startswith(f"{ns}/")}
        todo = plan(obj, request, existing)
        if todo.clashes:
            await self._refuse(obj, clash_message(todo.clashes, ns), NAME_CLASH)
            return None
        made: list[Obj] = []
        for task in todo.create:
            name = task["metadata"]["name"]
            try:
                made.append(await asyncio.to_thread(self.api.create, FEDERATED_JOBS, task, ns))
            except ConflictError:  # made meanwhile: ours (a reconcile before this one), or a clash
                held = await asyncio.to_thread(self.api.get, FEDERATED_JOBS, name, ns)
                if (controller_of(held) or {}).get("uid") != meta["uid"]:
                    await self._undo(made)
                    await self._refuse(obj, clash_message([name], ns), NAME_CLASH)
                    return None
                made.append(held)
        log.info("array %s/%s: %d tasks made", ns, meta["name"], len(made))
        return made

    async def _undo(self, made: list[Obj]) -> None:
        """The tasks this pass made, deleted (each by its uid: never another object of its name)."""
        for task in made:
            await asyncio.to_thread(delete, self.api, task)

    async def _write(self, obj: Obj, request: ArrayRequest, made: list[Obj]) -> None:
        """The array's status from its tasks (the informer's, and those just `made`), written if it changed."""
        meta = obj["metadata"]
        tasks = {o["metadata"]["name"]: o for o in made}
        tasks |= {o["metadata"]["name"]: o for o in self.children(obj, request)}
        status = array_status(obj, request, count(request, tasks.values()), now=self.clock())
        if _same(obj.get("status") or {}, status):
            return
        body = {"metadata": {"uid": meta["uid"]}, "status": status}
        try:
            await asyncio.to_thread(self.api.patch, FEDERATED_JOBS, meta["name"], body, meta["namespace"],
                                    subresource="status")
        except (ConflictError, NotFoundError):
            pass  # gone, or replaced: its own events follow

    async def _refuse(self, obj: Obj, message: str, reason: str) -> None:
        meta = obj["metadata"]
        body = {"metadata": {"uid": meta["uid"]},
                "status": refused_status(message, reason=reason, generation=int(meta.get("generation", 1)),
                                         now=self.clock())}
        try:
            await asyncio.to_thread(self.api.patch, FEDERATED_JOBS, meta["name"], body, meta["namespace"],
                                    subresource="status")
        except (ConflictError, NotFoundError):
            return
        log.warning("array %s/%s refused: %s", meta["namespace"], meta["name"], message)
        self.warn(meta, EventReason.NAME_CLASH if reason == NAME_CLASH else EventReason.INVALID, message)


__all__ = ["ARRAY_FIELD", "NAME_CLASH", "SUBMIT_ANNOTATION", "TASKS_CREATED", "ArrayTasks", "Plan", "TaskCounts",
           "array_id_of", "array_status", "controller_of", "count", "is_array", "plan", "request_of", "task_object",
           "task_problem"]
