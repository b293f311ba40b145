"""New FederatedJobs whose spec.dependsOn names a FederatedJob not accepted yet: they wait to be submitted.

Why: a GitOps tool (Argo CD, Flux) applies a pipeline's directory at once, in any order, so `train` (dependsOn
prep) may be read before `prep` is accepted. Submit answers such a name as no job (DependencyNotFound), and the
object was refused as an invalid spec: users had to apply step by step with `kubectl wait` between. Now it waits as
back-pressure does (queue_waits.py): Pending, pendingReason Dependency, "waiting for FederatedJob prep to be
accepted", an Event once per generation and message, and it is submitted again when a job of the namespace is
accepted (`accepted`) and every WAIT_RETRY_SECONDS meanwhile (the named object appearing, or being refused).

- A name no FederatedJob of the namespace has waits too, but says so ("which does not exist"), with a Warning
  Event: a typo must not wait silently. It is refused (Invalid, as before) once the object has waited
  `missing_seconds` (MISSING_SECONDS, from its creationTimestamp, so a restart does not start the clock again) and
  the name still names nothing. A named object that exists but is refused or waits itself is waited on without a
  bound: its user may still fix it.
- A job array (backends/kube/arrays.py), named by its object's name or its id (status.arrayId), is waited on until
  every task of it is accepted (`_array_accepted`): each task is its own object, accepted by its own worker, and a
  dependent submitted between would wait on the tasks accepted so far alone. Its message says "every task of
  array sweep to be accepted", and it is waited on without a bound, as an object that exists.
- No loop can form: the waits form a graph (an object -> the names it waits on); a wait that would close a cycle
  (a -> b -> a, or a -> a) is refused, naming the cycle, and so is every other object of that cycle (requeued,
  then refused as it is judged). An array is one node of it, waiting on what its tasks wait on (each copies its
  spec.dependsOn): every task of an array in a cycle is refused, those judged after it was found too (two arrays
  naming each other waited for ever before).
- While it waits the object's spec stays open to change (unadmitted.py `open_to_change`, the CRD's rules), so a
  corrected name applied over it is judged as a new generation.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError, KubeApi, NotFoundError, Obj, key_of
from federator.backends.kube.arrays import controller_of, is_array, request_of
from federator.backends.kube.events import EventReason
from federator.backends.kube.informer import MODIFIED
from federator.backends.kube.resources import parse_timestamp, refused
from federator.backends.kube.unadmitted import DEPENDENCY, queue_wait_status
from federator.jobfile import shown
from federator.model import Job, JobId, JobSpec
from federator.server.dependencies import array_tasks, same_namespace
from federator.server.job_keys import resolve

log = logging.getLogger("federator.kube.controller")

WAIT_RETRY_SECONDS = 5.0  # how often a waiting object is judged again, beside each acceptance in its namespace
MISSING_SECONDS = 600.0  # how long a name that no FederatedJob has may be waited on, from the waiting one's creation


# What an object's name (metadata.name, and so a job id or array id, `NAME-<6 hex>`) may be: a lower-case DNS name,
# as the job file checks it (jobfile.py); a key may carry a namespace, `namespace/name`, of the same form
_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def unnameable(spec: JobSpec, names: tuple[str, ...]) -> str:
    """The refusal of the first of `names` (keys no job has now) that no FederatedJob could ever be named, naming
    its field and index ("" if none): such a key waited the whole bound (600 s) as a typo-to-be-fixed, though it
    can never exist (outside QA new60b). A name of the right form but no object still waits."""
    dep = spec.depends_on
    fields = [("spec.clusters.sameAs", spec.clusters.same_as), ("spec.dependsOn.jobs", dep.jobs if dep else ())]
    for field, keys in fields:
        for i, key in enumerate(keys):
            if key in names and not all(_OBJECT_NAME.match(part) for part in key.split("/", 1)):
                return (f"{field}[{i}]: {shown(key)} is not a FederatedJob name (lower-case letters, digits, '-' and "
                        "'.', starting and ending with a letter or digit; or namespace/name), so no job of that "
                        "name can ever exist; fix the name")
    return ""


@dataclass(frozen=True, slots=True)
class Wait:
    """What one object waits on (names of its namespace), and the generation and message it was told."""

    key: str  # its namespace/name
    names: tuple[str, ...]
    generation: int
    message: str
    array: str = ""  # an array's task: its array's namespace/name (the array waits on what its tasks wait on)
    array_uid: str = ""


class DependencyWaits:
    """The objects waiting for a FederatedJob they name to be accepted, and each one's next judgement."""

    def __init__(self, api: KubeApi, *, jobs: Callable[[], dict[JobId, Job]], cache: Callable[[str], Obj | None],
                 clock: Callable[[], float], event: Callable[[Obj, EventReason, str, bool], None],
                 requeue: Callable[[str, str, Obj], None], refuse: Callable[[Obj, str], Awaitable[None]]) -> None:
        self.api = api
        self.jobs = jobs  # the federator's jobs, for the names resolved now
        self.cache = cache  # the informer's object of a namespace/name
        self.clock = clock
        self.event = event  # an Event on the object of this metadata (warning or not)
        self.requeue = requeue  # the object reconciled again (controller.py `_requeue`)
        self.refuse = refuse  # the object refused (controller.py `_refuse`)
        self.missing_seconds = MISSING_SECONDS
        self._waits: dict[str, Wait] = {}  # uid -> its wait
        self._retries: dict[str, asyncio.TimerHandle] = {}  # uid -> its next judgement
        self._cyclic: dict[str, str] = {}  # uid -> the cycle found it is in, refused when judged (by uid: an object
        # made again under that name is not the one found in it)
        # An array's uid -> (its namespace/name, the cycle found it is in): each task of it is refused when judged,
        # those not waiting yet when the cycle was found too (dropped once the array is gone)
        self._cyclic_arrays: dict[str, tuple[str, str]] = {}

    def missing(self, spec: JobSpec) -> tuple[str, ...]:
        """The keys of spec.dependsOn, and of spec.clusters.sameAs (whose names Submit resolves the same way), that
        name no job of its namespace now (what Submit answers DependencyNotFound for)."""
        dep = spec.depends_on
        if dep is None and not spec.clusters.same_as:
            return ()
        visible = same_namespace(spec)
        # a job another namespace holds is no job of this one, for sameAs as for dependsOn: it was taken as found,
        # Submit answered NOT_FOUND, and the object was judged again at once, for ever (new60b N7)
        out = [key for key in spec.clusters.same_as
               if not isinstance(found := resolve(self.jobs(), key, visible), Job) or not visible([found])]
        for key in dep.jobs if dep is not None else ():
            found = resolve(self.jobs(), key, visible)
            if found is None and self._array_accepted(spec.namespace, key):
                continue  # the array object `key`: every task of it is a job (server/dependencies.py)
            if found is None or (isinstance(found, Job) and not visible([found])):
                out.append(key)
        return tuple(out)

    def _array(self, namespace: str, key: str) -> Obj | None:
        """The array object a key names, by its name or by its id (`NAME-<6 hex>`, status.arrayId), whose tasks are
        made; None if it names none."""
        for name, array_id in ((key, None), (key.rpartition("-")[0], key)):
            obj = self.cache(f"{namespace}/{name}") if name else None
            made = str(((obj or {}).get("status") or {}).get("arrayId") or "")
            if obj is not None and is_array(obj) and made and array_id in (None, made):
                return obj
        return None

    def _array_accepted(self, namespace: str, key: str) -> bool:
        """Whether `key` names an array object of `namespace` (by name or id) whose tasks are made and each accepted
        as a job (or refused, or deleted: judged as the array's tasks are). Before, it is waited on as a
        FederatedJob not accepted yet: a dependent submitted while some tasks were still to come would wait on
        those alone."""
        counted = self._acceptance(namespace, key)
        return counted is not None and counted[0] > 0 and counted[1] == 0

    def unaccepted(self, namespace: str, key: str) -> int:
        """How many tasks of the array `key` names in `namespace` are still to be accepted (0: none, or no such
        array): server/dependencies.py `Dependencies.unaccepted`, so a Submit naming an array by its id (`submit
        --after`), which nothing holds back as an object is held, waits on those too."""
        counted = self._acceptance(namespace, key)
        return counted[1] if counted is not None else 0

    def _acceptance(self, namespace: str, key: str) -> tuple[int, int] | None:
        """(tasks accepted as jobs, tasks still to be: made, neither accepted nor refused) of the array object
        `key` names (by name or id) in `namespace`, whose tasks are made; None if it names none."""
        obj = self._array(namespace, key)
        request = request_of(obj) if obj is not None else "none"
        if obj is None or isinstance(request, str):
            return None
        name, array_id = obj["metadata"]["name"], obj["status"]["arrayId"]
        jobs = self.jobs()  # by the job table's array index (server/array_index.py), not a walk of every job
        accepted = {jobs[t].spec.name for t in array_tasks(jobs, array_id) if jobs[t].spec.namespace == namespace}
        to_come = 0
        for index in request.indices:
            task = f"{name}-{index}"
            other = self.cache(f"{namespace}/{task}")
            if task not in accepted and other is not None and not refused(other):
                to_come += 1
        return len(accepted), to_come

    async def wait(self, obj: Obj, spec: JobSpec) -> None:
        """Submit found a name of spec.dependsOn no accepted job has: the object waits (said once per generation and
        message), is refused for a cycle or a name that stayed missing past the bound, or, if all are accepted by
        now (a race), is judged again at once."""
        meta = obj["metadata"]
        uid, ns, generation = meta["uid"], meta["namespace"], int(meta.get("generation", 1))
        me = f"{ns}/{meta['name']}"
        names = self.missing(spec)
        if not names:
            self.requeue(MODIFIED, key_of(obj), obj)
            return
        if meta["name"] in spec.clusters.same_as:  # not a cycle of dependsOn: it names no job (new60b N8)
            self.forget(uid)
            i = spec.clusters.same_as.index(meta["name"])
            await self.refuse(obj, f"spec.clusters.sameAs[{i}]: names this FederatedJob, {meta['name']}, which can "
                                   "share a cluster only with other jobs; name the jobs it must run beside")
            return
        if bad := unnameable(spec, names):  # no FederatedJob can ever have it: refused now, not after the bound
            self.forget(uid)
            await self.refuse(obj, bad)
            return
        owner = controller_of(obj)  # an array's task: it stands for its array in a cycle
        mine = f"{ns}/{owner['name']}" if owner is not None else ""
        mine_uid = str(owner.get("uid") or "") if owner is not None else ""
        self._prune_cyclic()
        cycle = self._cyclic.pop(uid, None) or (self._cyclic_arrays.get(mine_uid, ("", ""))[1] if mine_uid else "") or \
            self._cycle(me, names, mine, mine_uid)
        if cycle:
            self.forget(uid)
            await self.refuse(obj, f"spec.dependsOn.jobs: a cycle, {cycle}: none of them could ever run; "
                                   "take one of the names out")
            return
        parts, absent = [], []
        for name in names:
            other = self.cache(f"{ns}/{name}")
            if (array := self._array(ns, name)) is not None:  # its name or its id
                parts.append(f"every task of array {array['metadata']['name']} to be accepted")
            elif other is None:
                absent.append(name)
                parts.append(f"FederatedJob {name}, which does not exist")
            elif refused(other):
                parts.append(f"FederatedJob {name} to be accepted (it was refused: "
                             f"{str((other.get('status') or {}).get('message', ''))[:200]})")
            else:
                parts.append(f"FederatedJob {name} to be accepted")
        deadline = parse_timestamp(meta.get("creationTimestamp")) + self.missing_seconds
        if absent and self.clock() >= deadline:
            self.forget(uid)
            dep = spec.depends_on  # the field that names them: a sameAs name is waited on as a dependsOn one is
            field = "spec.dependsOn.jobs" if dep is not None and set(absent) & set(dep.jobs) else "spec.clusters.sameAs"
            await self.refuse(obj, f"{field}: no FederatedJob {', '.join(map(shown, absent))} in "
                                   f"namespace {ns} appeared within {self.missing_seconds:g}s of this one's "
                                   "creation; fix the name (the spec may change while it waits) or create it, and "
                                   "apply this one again")
            return
        message = "waiting for " + "; ".join(parts)
        if absent:
            message += f" (refused if none appears within {self.missing_seconds:g}s of this one's creation)"
        self._waits[uid] = Wait(me, names, generation, message, mine, mine_uid)
        if not await self._told(obj, generation, message):
            return  # deleted, or replaced: its own events follow
        self._again(uid, obj, WAIT_RETRY_SECONDS if not absent else
                    max(0.0, min(WAIT_RETRY_SECONDS, deadline - self.clock())))

    def accepted(self, namespace: str, uid: str) -> None:
        """The object `uid` of `namespace` is a job now: it waits no more, and each object of its namespace waiting
        on a name is judged again at once."""
        self.forget(uid)
        for other, wait in list(self._waits.items()):
            if wait.key.startswith(f"{namespace}/"):
                obj = self.cache(wait.key)
                if obj is not None:
                    self._again(other, obj, 0.0)

    def forget(self, uid: str) -> None:
        """The object of `uid` is submitted, refused or being deleted: no wait of it is kept, nor judged again."""
        self._waits.pop(uid, None)
        self._cyclic.pop(uid, None)
        if (retry := self._retries.pop(uid, None)) is not None:
            retry.cancel()

    def _cycle(self, me: str, names: tuple[str, ...], array: str = "", array_uid: str = "") -> str:
        """The cycle `me` waiting on `names` would close among the waiting objects ("a -> b -> a"), or ""; the others
        of it are marked and judged again, so each is refused too. An array waits on what its tasks wait on (each
        copies its spec.dependsOn and waits unsubmitted): `me` a task of `array` stands for it, a name of an array
        (or its id) leads to its waiting tasks, and every task of an array in the cycle is refused, those judged
        later too. Before, two arrays naming each other waited for ever."""
        ns = me.split("/", 1)[0]
        waiting = {w.key: w for w in self._waits.values() if w.key != me}
        tasks: dict[str, list[Wait]] = {}  # an array's namespace/name -> its waiting tasks
        for w in waiting.values():
            if w.array:
                tasks.setdefault(w.array, []).append(w)
        home = array or me
        path: list[str] = [home]
        seen: set[str] = set()

        def key_of_name(name: str) -> str:
            found = self._array(ns, name)  # an array by its name or its id: the array object
            return f"{ns}/{found['metadata']['name']}" if found is not None else f"{ns}/{name}"

        def walk(names: tuple[str, ...]) -> bool:
            for name in names:
                key = key_of_name(name)
                if key in (me, home):
                    return True
                if key in seen:
                    continue
                if key in waiting:
                    after = waiting[key].names
                elif key in tasks:
                    after = tuple(dict.fromkeys(n for w in tasks[key] for n in w.names))
                else:
                    continue
                seen.add(key)
                path.append(key)
                if walk(after):
                    return True
                path.pop()
            return False

        if not walk(names):
            return ""
        said = " -> ".join(k.split("/", 1)[1] for k in [*path, home])
        uids = {w.key: uid for uid, w in self._waits.items()}
        marked = [k for k in path[1:] if k in waiting]
        if array:
            self._cyclic_arrays[array_uid] = (array, said)
        for key in path:
            for w in tasks.get(key, ()):  # an array of the cycle: its waiting tasks, and those still to be judged
                marked.append(w.key)
                self._cyclic_arrays[w.array_uid] = (key, said)
        for key in dict.fromkeys(marked):
            self._cyclic[uids[key]] = said
            if (obj := self.cache(key)) is not None:
                self.requeue(MODIFIED, key, obj)
        return said

    def _prune_cyclic(self) -> None:
        """Arrays found in a cycle are forgotten once their object is gone (or made again: another uid)."""
        for uid, (key, _) in list(self._cyclic_arrays.items()):
            obj = self.cache(key)
            if obj is None or obj["metadata"].get("uid") != uid:
                del self._cyclic_arrays[uid]

    async def _told(self, obj: Obj, generation: int, message: str) -> bool:
        """The wait on the object's status and in an Event, once per generation and message (a Warning when a name
        names nothing). False: the object is gone or replaced."""
        meta, status = obj["metadata"], obj.get("status") or {}
        reason = status.get("pendingReason") or {}
        if status.get("observedGeneration") == generation and reason.get("code") == DEPENDENCY \
                and reason.get("message") == message:
            return True  # said before (by this federator or one before it)
        body = {"metadata": {"uid": meta["uid"]},
                "status": queue_wait_status(message, generation=generation, now=self.clock(),
                                            old_conditions=status.get("conditions"),
                                            code=DEPENDENCY)}
        try:
            await asyncio.to_thread(self.api.patch, FEDERATED_JOBS, meta["name"], body, meta["namespace"],
                                    subresource="status")
        except (ConflictError, NotFoundError):
            return False
        log.info("FederatedJob %s/%s waits: %s", meta["namespace"], meta["name"], message)
        self.event(meta, EventReason.DEPENDENCY, message, "which does not exist" in message)
        return True

    def _again(self, uid: str, obj: Obj, delay: float) -> None:
        old = self._retries.pop(uid, None)
        if old is not None:
            old.cancel()  # one judgement pending per object, however many events it had
        self._retries[uid] = asyncio.get_running_loop().call_later(delay, self.requeue, MODIFIED, key_of(obj), obj)


__all__ = ["MISSING_SECONDS", "WAIT_RETRY_SECONDS", "DependencyWaits", "unnameable"]
