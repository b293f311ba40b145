"""The FederatedJob controller of the host cluster: the reconcile loop, and what it dispatches to.

It turns `kubectl apply` into `Federator.submit`, `kubectl delete` into
`Federator.cancel`, and `kubectl scale` (a changed spec.replicas) into
`Federator.scale`; the status write-back is the job store's (`store.py`).

- A new FederatedJob whose Queue does not admit it (yet), or that meets a full
  queue, waits and is judged again (queue_waits.py); so does one whose
  spec.dependsOn names a FederatedJob not accepted yet (dependency_waits.py).
- A new FederatedJob gets the finalizer first, then is validated by
  `jobfile.parse_job` (the one validator files, the gRPC API and CRDs share)
  and submitted. One the federator refuses gets phase Failed and a message
  naming the field, and a Warning Event `Invalid` saying the same, so
  `kubectl describe` and `kubectl get events` show why, as for a Pod. The
  refusal holds for that generation of the spec: a federator that starts (a
  restart, a failover, a new leader) leaves a FederatedJob whose status says
  it was refused alone. Judged again before every member had reported, an
  unknown accelerator model was a mere warning, and the refused object came
  back as a Pending job (outside QA F15); the parser's refusals were logged
  again at every start. The CRD lets a refused object's spec change (a GitOps
  tool applies the fix over it, outside QA G3), and a newer generation is
  judged again, a `kubectl scale` of a refused inference job too.
- A FederatedJob the federator does not know, of a name whose gRPC job is on
  its way to the store, waits for that job's write: it is the job's own
  object, or a user's that the store's create met (the job is then refused,
  and the object admitted at once).
- A FederatedJob whose reconcile met an API server that was away (its
  finalizer not added, its submit or cancel not stored: StoreUnavailable) is
  reconciled again after `retry_seconds`, from its newest version; the
  informer does not resync, so without this it waited, unsubmitted, until
  someone changed it.
- A FederatedJob being deleted has its job cancelled, and the cancels its
  members have not confirmed recorded on their MemberClusters, before the
  finalizer is removed (deletions.py).
- A known job's FederatedJob that changed (spec.replicas: `kubectl scale`;
  spec.held; a new generation; edited metadata) is read by object_edits.py and
  holds.py: the object's spec is never set back.
- A FederatedJob with spec.array is an array, never a job: arrays.py makes its
  tasks (FederatedJobs it owns, NAME-INDEX) and counts them on its status; a
  task's every event brings its array back. A task is submitted as any
  FederatedJob, as a task of its array only if the array controls it.
- MemberCluster objects mirror the federator's cluster registry, on a loop of
  their own (member_clusters.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError, KubeApi, KubeError, NotFoundError, Obj, key_of
from federator.backends.kube.array_submit import ArraySubmits
from federator.backends.kube.arrays import ArrayTasks, controller_of, is_array, task_problem
from federator.backends.kube.deletions import Deletions
from federator.backends.kube.dependency_waits import DependencyWaits
from federator.backends.kube.events import EventReason, JobEvent, event_object
from federator.backends.kube.finished_ttl import delete_expired
from federator.backends.kube.holds import SpecHolds, namespace_hold
from federator.backends.kube.informer import DELETED, MODIFIED, Informer
from federator.backends.kube.member_clusters import CORDON_READ_SECONDS, MemberClusters
from federator.backends.kube.object_edits import ObjectEdits
from federator.backends.kube.queue_waits import QueueWaits
from federator.backends.kube.resources import FINALIZER, invalid_status, refused, spec_of
from federator.backends.kube.retries import unavailable
from federator.backends.kube.silent_cancels import KubeSilentCancelStore
from federator.backends.kube.store import KubeJobStore, Owner
from federator.backends.kube.unadmitted import open_to_change, reopened_status
from federator.jobfile import JobFileError, held_of
from federator.model import JobId
from federator.security.audit import AuditLog
from federator.security.authz import Authorizer, recorded_owner
from federator.server.dependencies import DependencyNotFound
from federator.server.federator import Federator
from federator.server.intake import QueueFull, SubmitError
from federator.store.errors import StoreUnavailable
from federator.written_models import models_as_written

log = logging.getLogger("federator.kube.controller")
WORKERS = 16  # FederatedJobs reconciled at once (by namespace/name: one object's events stay in order)
RETRY_SECONDS = 2.0  # a FederatedJob the job store could not take is reconciled again after this
KUBE_ORPHAN_STORY = (
    "In Kubernetes mode the store is the FederatedJobs, and no --db was replaced: most likely a FederatedJob was "
    "deleted while no federator was running (its finalizer removed by hand), or while its member was away with "
    "more cancels kept for that cluster than its record holds (said in a WARNING then), or the host's etcd was "
    "restored from a snapshot older than the job (docs/kubernetes.md, Disaster recovery). Its workload is stopped "
    "after the grace; a FederatedJob created again is a new job, which starts from the beginning beside it until "
    "then: cancel the orphans first (federator cancel --orphans --cluster NAME; docs/operators.md, Orphan "
    "placements)")


class FederatedJobController:
    def __init__(self, fed: Federator, api: KubeApi, store: KubeJobStore, *, namespace: str | None = None,
                 member_interval: float = 2.0, clock: Callable[[], float] = time.time,
                 authz: Authorizer | None = None, audit: AuditLog | None = None,
                 silent: KubeSilentCancelStore | None = None) -> None:
        self.fed = fed
        self.authz = authz or Authorizer()
        self.audit = audit or AuditLog(None)
        self.api = api
        self.store = store
        self.clock = clock
        self.member_interval = member_interval
        self.informer = Informer(api, FEDERATED_JOBS, namespace=namespace, on_event=self._enqueue,
                                 name="federatedjobs")
        # One queue per worker; an object always goes to the same one, so its events are handled in order
        # while other objects' submissions (each waiting for its status write) proceed alongside.
        self._queues: list[asyncio.Queue[tuple[str, Obj]]] = [asyncio.Queue() for _ in range(WORKERS)]
        self._tasks: list[asyncio.Task[None]] = []
        self._refused: dict[str, int] = {}  # uid -> the generation whose refusal is written
        self.retry_seconds = RETRY_SECONDS
        # The roles the reconcile dispatches to, each a module of its own:
        self.members = MemberClusters(fed, api, store, interval=member_interval, clock=clock, silent=silent)
        self.cancels = self.members.cancels  # cancels not confirmed, on MemberClusters (cancel_records.py)
        self.deletions = Deletions(fed, store, self.members, clock=clock)  # a deleted object's job (deletions.py)
        self.waits = QueueWaits(api, self.authz, self.audit, clock=clock, warn=self._warn,
                                requeue=self._requeue)  # for its Queue, or for room (queue_waits.py)
        self.chains = DependencyWaits(api, jobs=lambda: fed.jobs, cache=self.informer.cache.get, clock=clock,
                                      event=self._event, requeue=self._requeue, refuse=self._refuse)
        self.edits = ObjectEdits(fed, store, self._warn)  # a known job's object changed (object_edits.py)
        self.holds = SpecHolds(fed, store, lambda meta, said: self._warn(meta, EventReason.HOLD_REFUSED, said))
        self.arrays = ArrayTasks(api, lambda: self.informer.cache, warn=self._warn, clock=clock)  # arrays.py
        self._arrays_due: set[str] = set()  # arrays queued to be counted again (a task changed), by key
        fed.arrays.maker = ArraySubmits(fed, api, self.arrays, lambda: self.informer.cache)  # array_submit.py
        fed.dependencies.unaccepted = self.chains.unaccepted  # an array's tasks still to come are waited on too
        fed.orphans.story = KUBE_ORPHAN_STORY

    @property
    def silent(self) -> KubeSilentCancelStore | None:
        """The ends awaited of placements cancelled on a silent member, on MemberClusters (silent_cancels.py)."""
        return self.members.silent

    @silent.setter
    def silent(self, store: KubeSilentCancelStore | None) -> None:
        self.members.silent = store

    async def start(self) -> None:
        self.informer.start()
        await self.adopt_members()
        loop = asyncio.get_running_loop()
        self._tasks = [*(loop.create_task(self._work(q)) for q in self._queues), loop.create_task(self.members.run()),
                       loop.create_task(delete_expired(self.informer.cache.values, self.api, self.clock))]
        await self.informer.wait_synced()
        log.info("watching FederatedJobs in %s: %d found", self.api.server, len(self.informer.cache))
        await self.cancel_orphans()

    async def cancel_orphans(self) -> None:
        """Jobs whose FederatedJob vanished while no federator watched (a forced delete) are cancelled."""
        await self.deletions.cancel_orphans((o.get("metadata") or {}).get("uid") for o in self.informer.cache.values())

    async def stop(self) -> None:
        self.informer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- FederatedJobs ------------------------------------------------------------

    def _enqueue(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        # the version a status write of its job expects (store.py: a deposed leader's write is refused)
        self.store.seen_version(str(meta.get("uid") or ""), str(meta.get("resourceVersion") or ""),
                                gone=kind == DELETED)
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        self._queues[zlib.crc32(key.encode()) % WORKERS].put_nowait((kind, obj))
        if (ref := controller_of(obj)) is not None:  # an array's task changed: the array counts its tasks again
            owner = f"{meta.get('namespace', '')}/{ref.get('name', '')}"
            if owner not in self._arrays_due and (array := self.informer.cache.get(owner)) is not None:
                self._arrays_due.add(owner)  # once however many of its tasks change before it is counted
                self._queues[zlib.crc32(owner.encode()) % WORKERS].put_nowait((MODIFIED, array))

    async def _work(self, queue: asyncio.Queue[tuple[str, Obj]]) -> None:
        while True:
            kind, obj = await queue.get()
            try:
                await self.reconcile(kind, obj)
            except Exception as exc:  # one object must not stop the controller
                if isinstance(exc, StoreUnavailable) or (isinstance(exc, KubeError) and unavailable(exc)):
                    self._again(kind, obj, exc)  # the API server is away: tried again, not dropped
                    continue
                meta = obj.get("metadata") or {}
                log.exception("reconciling FederatedJob %s/%s failed", meta.get("namespace"), meta.get("name"))

    def _again(self, kind: str, obj: Obj, exc: Exception) -> None:
        key = key_of(obj)
        log.warning("FederatedJob %s: not reconciled, the API server is away (%s); again in %gs", key, exc,
                    self.retry_seconds)
        asyncio.get_running_loop().call_later(self.retry_seconds, self._requeue, kind, key, obj)

    def _requeue(self, kind: str, key: str, obj: Obj) -> None:
        """Reconcile an object again: a deletion as it was, anything else as the informer has it now (gone: done)."""
        if kind == DELETED:
            self._enqueue(kind, obj)
            return
        current = self.informer.cache.get(key)
        if current is not None:
            self._enqueue(MODIFIED, current)

    async def reconcile(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        ns, name, uid = meta.get("namespace", "default"), meta.get("name", ""), meta.get("uid", "")
        if is_array(obj):  # an array, never a job: its tasks are (arrays.py)
            self._arrays_due.discard(f"{ns}/{name}")
            await self.arrays.reconcile(kind, self.informer.cache.get(f"{ns}/{name}", obj) if kind != DELETED
                                        else obj)
            return
        job_id = (self.store.job_for_uid(uid) or (obj.get("status") or {}).get("jobId")
                  or await self._settled(ns, name, uid))
        if kind == DELETED or meta.get("deletionTimestamp"):
            self.edits.forget_uid(uid)
            self.holds.forget(uid)
            self.waits.forget(uid)
            self.chains.forget(uid)
            ours = kind != DELETED and FINALIZER in (meta.get("finalizers") or [])
            if job_id:
                job = self.fed.jobs.get(JobId(job_id))
                live: set[str] = {p.placement_id for p in job.placements if not p.phase.is_terminal} if job else set()
                await self.deletions.cancel(job_id, f"{ns}/{name}")
                if job is not None and (ours or live):  # gone without our finalizer while it ran: recorded too
                    await self.deletions.keep_cancels(job, live)  # durable before the finalizer goes
            if kind == DELETED and job_id:
                self.edits.forget(job_id)
                self.deletions.forget(job_id)
            if ours:
                await self._set_finalizers(obj, [f for f in meta["finalizers"] if f != FINALIZER])
            return
        if FINALIZER not in (meta.get("finalizers") or []):
            # The finalizer goes on before the job exists, so no job outlives its object.
            await self._set_finalizers(obj, [*(meta.get("finalizers") or []), FINALIZER])
            return  # the update comes back as an event
        if job_id and job_id in self.fed.jobs:
            await self.edits.scale(obj, JobId(job_id))  # a changed spec.replicas (kubectl scale), or nothing
            await self.holds.read(obj, JobId(job_id))  # a changed spec.held (backends/kube/holds.py), or nothing
            await self.edits.metadata(obj, JobId(job_id))  # an edited annotation the job does not follow, or nothing
            return
        if self._judged(obj):
            return
        current = await self._current(obj)
        if current is None or current["metadata"].get("deletionTimestamp"):
            return  # being deleted, or replaced by a new object of that name, since this event: their events follow
        if self._judged(current):
            return
        obj, meta = current, current["metadata"]
        try:
            # Made with kubectl: no user submitted it, whatever its annotations claim (federator.io/user would
            # make it another user's over the gRPC API, and bill them for it in the usage records).
            spec = recorded_owner(spec_of(obj), "")
        except JobFileError as exc:
            await self._refuse(obj, str(exc))
            return
        if spec.array is not None:
            if (problem := await self._task_problem(obj)) is not None:
                await self._refuse(obj, problem)  # array annotations on an object its array does not control
                return
            user, groups = self.arrays.owner(str((controller_of(obj) or {}).get("uid", "")))
            spec = recorded_owner(spec, user, groups)  # the caller's, for an array a gRPC Submit made
        denied = await self.waits.denied(ns, spec.queue)
        if denied is not None:
            await self.waits.for_queue(obj, denied)
            return
        self.waits.queue_admitted(uid)
        if self.chains.missing(spec):  # before a refused or waiting object is reopened: a wait changes no status
            await self.chains.wait(obj, spec)
            return
        if refused(obj) and not self.fed.intake.fleet_settled():
            # A corrected spec of a refused object waits for every member's report: so early an unknown model is
            # a mere warning, and a spec refused for one (outside QA F15) would come back as a job for ever Pending.
            asyncio.get_running_loop().call_later(self.retry_seconds, self._requeue, MODIFIED, key_of(obj), obj)
            return
        if open_to_change(obj):
            reopened = await self._reopen(obj)
            if reopened is None:
                return  # changed (or gone) since it was read: the newer version's event follows
            obj, meta = reopened, reopened["metadata"]
        if await self._settled(ns, name, uid):
            return  # a gRPC job of that name, submitted while this was read, made this object its own
        # Nothing awaited from here to the job's admission: no other job of that name can come between.
        owner = Owner(ns, name, uid, int(meta.get("generation", 1)))
        self.store.expect(owner)
        cancelled = False
        try:
            held = namespace_hold(self.fed, ns) if held_of(obj) else None  # spec.held: true (kube/holds.py)
            job = await self.fed.intake.submit_async(spec, hold=held, array=spec.array is not None)  # group commit
        except QueueFull as exc:
            self.waits.for_room(obj, exc)
            return
        except DependencyNotFound:  # a name it waits on went since `missing` read it: waits as above
            await self.chains.wait(obj, spec)
            return
        except SubmitError as exc:
            await self._refuse(obj, str(exc))
            return
        except asyncio.CancelledError:
            # Stopped (a shutdown, a lost lease) while the new job's write was on its way, the only await after
            # its admission: that write, shielded, still lands and takes the expectation. Taken back here, it
            # found no owner, created an object for the job as for a gRPC one and met this one: the accepted job
            # was refused as "another spec" (its dependsOn names resolved to ids).
            cancelled = True
            raise
        finally:
            if not cancelled:
                self.store.unexpect(owner)  # not taken by a new job's write (refused, or a request id's replay)
        self.waits.submitted(uid)
        self.chains.accepted(ns, uid)
        log.info("FederatedJob %s/%s submitted as job %s", ns, name, job.job_id)
        warnings = self.fed.intake.warnings(job.spec)
        for warning in warnings:  # what `federator submit` prints on stderr
            self._warn(meta, EventReason.SUBMIT_WARNING, models_as_written(warning, obj.get("spec")))

    async def _task_problem(self, obj: Obj) -> str | None:
        """Why an object carrying array annotations is not its array's task (arrays.py `task_problem`), or None.
        The array is read from the informer, or the API server if the informer has not seen it yet (a start)."""
        meta, ref = obj["metadata"], controller_of(obj)
        array = self.informer.cache.get(f"{meta['namespace']}/{ref.get('name', '')}") if ref else None
        if ref is not None and array is None:
            try:
                array = await asyncio.to_thread(self.api.get, FEDERATED_JOBS, ref.get("name", ""), meta["namespace"])
            except NotFoundError:
                array = None
        spec = spec_of(obj)
        assert spec.array is not None
        return task_problem(obj, spec.array, array)

    def _judged(self, obj: Obj) -> bool:
        """Whether this object, at its generation, was refused already: by this federator, or by one before it (its
        status says so: a restart, a failover). A refusal holds for the spec it judged, so that spec is neither
        judged nor logged again; a newer generation (a corrected spec, which the CRD lets a refused object take) is
        judged as a new object is."""
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        uid, generation = str(meta.get("uid", "")), int(meta.get("generation", 1))
        if refused(obj):
            seen = int(status.get("observedGeneration", generation))
            self._refused[uid] = max(seen, self._refused.get(uid, seen))
        return self._refused.get(uid, 0) >= generation

    async def _reopen(self, obj: Obj) -> Obj | None:
        """A refused or queue-waiting object whose spec is taken now: its status says Pending (unadmitted.py),
        written only if the object is still the version read, and from then on the CRD holds its spec still. The
        object as written (None: it changed or went since it was read)."""
        meta = obj["metadata"]
        body = {"metadata": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
                "status": reopened_status(int(meta.get("generation", 1)), now=self.clock())}
        try:
            return await asyncio.to_thread(self.api.patch, FEDERATED_JOBS, meta["name"], body, meta["namespace"],
                                           subresource="status")
        except (ConflictError, NotFoundError):
            return None

    async def _settled(self, ns: str, name: str, uid: str) -> JobId | None:
        """The job of the object `uid`, once no new job of its namespace and name is on its way to the store.

        A gRPC Submit's job gets a FederatedJob the store creates, and the controller may see that object
        before the store has recorded whose it is. A user's `kubectl apply` of the same name, made first,
        is met by that create with 409: the job is refused (NameTaken) and the object is the user's. Until
        the job's write is done, nothing tells the two apart: an object the federator does not know waits for
        it here. Before, it was taken for the job's whatever its uid: skipped, and never admitted once the
        job was refused (or, being deleted, it cancelled the job)."""
        while arrivals := self.fed.intake.arrivals(ns, name):
            await asyncio.wait(arrivals)
        return self.store.job_for_uid(uid)

    async def _current(self, obj: Obj) -> Obj | None:
        """The object as the API server reads it now, for the spec a job is submitted with (None: gone).

        An informer's watch outlives a change of the FederatedJob CRD: the API server goes on sending, on a
        watch opened before the change, objects decoded with the schema it had, pruned of the fields that
        schema does not name. Found on the test bed: after the CRD was applied again over an older one, a
        FederatedJob asking for H100 reached the federator without spec.acceleratorModels and ran on an A100.
        A GET is read with the CRD in force. One request per new FederatedJob; none for the ones known."""
        meta = obj["metadata"]
        try:
            current = await asyncio.to_thread(self.api.get, FEDERATED_JOBS, meta["name"], meta["namespace"])
        except NotFoundError:
            return None
        return current if (current.get("metadata") or {}).get("uid") == meta.get("uid") else None

    async def _set_finalizers(self, obj: Obj, finalizers: list[str]) -> None:
        meta = obj["metadata"]
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        try:
            await asyncio.to_thread(self.api.patch, FEDERATED_JOBS, meta["name"], body, meta["namespace"])
        except (ConflictError, NotFoundError):
            pass  # a newer version is on its way as an event; reconcile that one

    async def _refuse(self, obj: Obj, message: str) -> None:
        """Failed with the reason on its status and in a Warning Event Invalid. Said once the status is written: a
        write the API server did not take is tried again whole (`_work`), so the Event is not posted twice."""
        meta = obj["metadata"]
        now = self.clock()
        message = models_as_written(message, obj.get("spec"))  # spec.acceleratorModels[N], as the object wrote it
        body = {"metadata": {"uid": meta["uid"]},
                "status": invalid_status(message, generation=int(meta.get("generation", 1)), now=now,
                                         reason=EventReason.INVALID.value)}
        try:
            await asyncio.to_thread(self.api.patch, FEDERATED_JOBS, meta["name"], body, meta["namespace"],
                                    subresource="status")
        except (ConflictError, NotFoundError):
            pass
        self._refused[meta["uid"]] = int(meta.get("generation", 1))
        log.warning("FederatedJob %s/%s refused: %s", meta["namespace"], meta["name"], message)
        self._warn(meta, EventReason.INVALID, message, now=now)

    def _warn(self, meta: Obj, reason: EventReason, message: str, *, now: float | None = None) -> None:
        """A Warning Event on the FederatedJob of `meta` (none when the store posts no Events)."""
        self._event(meta, reason, message, True, now=now)

    def _event(self, meta: Obj, reason: EventReason, message: str, warning: bool, *, now: float | None = None) -> None:
        """An Event on the FederatedJob of `meta`, Warning or Normal (none when the store posts no Events)."""
        if self.store.events is not None:
            self.store.events.record(event_object(
                JobEvent(reason, message, warning=warning), namespace=meta["namespace"], name=meta["name"],
                uid=meta["uid"], now=self.clock() if now is None else now, instance=self.store.events.instance))

    # -- MemberClusters (member_clusters.py) -------------------------------------------

    async def adopt_members(self) -> None:
        """The MemberClusters the registry does not know adopted, their records read (MemberClusters.adopt)."""
        await self.members.adopt()

    async def write_members(self, *, refresh_after: float = 30.0) -> None:
        """Mirror the cluster registry on the MemberClusters (MemberClusters.write)."""
        await self.members.write(refresh_after=refresh_after)

    async def read_cordons(self, *, every: float = CORDON_READ_SECONDS) -> None:
        """Take the cordons the MemberClusters' specs hold, at most every `every` seconds."""
        await self.members.read_cordons(every=every)

    def recreate(self) -> dict[str, bool]:
        """Whether a missing MemberCluster is made again, per cluster (MemberClusters.recreate)."""
        return self.members.recreate()


__all__ = ["FederatedJobController"]
