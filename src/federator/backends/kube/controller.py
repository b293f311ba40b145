"""The FederatedJob controller of the host cluster, and the MemberCluster writer.

It turns `kubectl apply` into `Federator.submit`, `kubectl delete` into
`Federator.cancel`, and `kubectl scale` (a changed spec.replicas) into
`Federator.scale`; the status write-back is the job store's (`store.py`).

- A new FederatedJob whose Queue does not select its namespace
  (`spec.namespaceSelector`, security/authz.py) waits Pending, pendingReason
  QueueNotAllowed, with a Warning Event and an audit line (once per reason),
  and is judged again every few seconds (unadmitted.py): the namespace
  labelled, or the Queue created, a moment later admits it. So does one naming
  a queue nobody declared under a multi-tenant policy whose defaultQueue has
  no access list (rule undeclared-queue: only admins may use such a queue, and
  a kubectl user is none). Before, both were refused for good, and a GitOps
  tool that applied the job before its Queue never got it run (outside QA G1).
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
- A FederatedJob being deleted has its job cancelled (the federator sends the
  member cluster's agent a Cancel, and its Job or Deployment is deleted), then
  the finalizer is removed. Before it goes, the job's placements are recorded
  as cancels their members have not confirmed, on each one's MemberCluster
  (cancel_records.py): the job's own record goes with the object, and before,
  a federator restarted while an agent was away knew nothing of the job, so
  the agent's workload was an orphan held for --orphan-grace (outside QA F7).
  The finalizer is not held until the member confirms: `kubectl delete` (and a
  namespace's deletion) would hang for as long as an agent is away, a day for
  a cluster that is down, and users would strip the finalizer to get on,
  losing the cancel altogether (F2).
- A FederatedJob whose spec.replicas changed (the CRD allows it on an
  inference job alone; `kubectl scale` uses the scale subresource) is scaled as
  the gRPC API's Scale does (server/scaling.py). A scale the federator refuses
  is a Warning Event `ScaleRefused` naming the field, once per generation, and
  the condition Accepted=False; the job keeps its count, and the object's
  spec.replicas is left as the user (or a GitOps tool) wrote it: set back, a
  GitOps tool that applied it again fought the federator for ever (outside QA
  G4). A restart rebuilds the job from status.accepted, not from that count.
  An accepted job's metadata edited after the fact is not applied either
  (accepted.py).
- MemberCluster objects mirror the federator's cluster registry, and are
  never deleted by the federator: a Lost cluster's object is its history. An
  operator may `kubectl delete mc` a Lost one; it is not recreated unless its
  agent connects again. A federator that starts (or becomes leader) adopts the
  MemberClusters its registry does not know as Partitioned (Lost if they were),
  so an object never claims Ready for a cluster no federator hears from.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable
from typing import Any

from federator.backends.kube.accepted import METADATA_IGNORED, SCALE_REFUSED, metadata_ignored, said
from federator.backends.kube.api import (
    FEDERATED_JOBS,
    MEMBER_CLUSTERS,
    ConflictError,
    KubeApi,
    KubeError,
    NotFoundError,
    Obj,
    key_of,
)
from federator.backends.kube.cancel_records import KubeCancelRecords
from federator.backends.kube.cordons import KubeCordonStore
from federator.backends.kube.events import EventReason, JobEvent, event_object
from federator.backends.kube.finished_ttl import delete_expired
from federator.backends.kube.holds import SpecHolds, namespace_hold
from federator.backends.kube.informer import DELETED, MODIFIED, Informer
from federator.backends.kube.member_status import member_status, restore_member
from federator.backends.kube.move_times import KubeMoveStore
from federator.backends.kube.namespace_gate import namespace_labels, selector_applies
from federator.backends.kube.quarantines import KubeQuarantineStore, held_in
from federator.backends.kube.reservation_clocks import KubeHoldStore
from federator.backends.kube.resources import (
    FINALIZER,
    invalid_status,
    member_cluster,
    parse_timestamp,
    refused,
    spec_of,
)
from federator.backends.kube.retries import unavailable
from federator.backends.kube.silent_cancels import KubeSilentCancelStore
from federator.backends.kube.store import KubeJobStore, Owner
from federator.backends.kube.unadmitted import (
    QUEUE_WAIT_RETRY_SECONDS,
    open_to_change,
    queue_wait_status,
    reopened_status,
)
from federator.jobfile import JobFileError, held_of
from federator.model import ClusterState, Job, JobId, JobPhase
from federator.security.audit import AuditLog
from federator.security.authz import Authorizer, Denied, Rule, recorded_owner
from federator.server.cluster_regions import admin_record, placed_elsewhere
from federator.server.federator import Federator, NotFound
from federator.server.intake import QueueFull, SubmitError
from federator.server.orders import CancelOrder
from federator.server.orphans import DELETED_REASON
from federator.server.retention import forget_job
from federator.server.scaling import ScaleRefused
from federator.store.errors import StoreUnavailable

log = logging.getLogger("federator.kube.controller")
WORKERS = 16  # FederatedJobs reconciled at once (by namespace/name: one object's events stay in order)
CORDON_READ_SECONDS = 5.0  # MemberClusters' cordons are read back at most this often (backends/kube/cordons.py)
RETRY_SECONDS = 2.0  # a FederatedJob the job store could not take is reconciled again after this
KUBE_ORPHAN_STORY = (
    "In Kubernetes mode the store is the FederatedJobs, and no --db was replaced: most likely a FederatedJob was "
    "deleted while no federator was running (its finalizer removed by hand), or while its member was away with "
    "more cancels kept for that cluster than its record holds (said in a WARNING then). Its workload is stopped "
    "after the grace; to keep the work, create the FederatedJob again (docs/operators.md, Orphan placements)")


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
        self._members_written: dict[str, tuple[Obj, float]] = {}
        self._cordons_read = float("-inf")  # when the MemberClusters' cordons were last read (read_cordons)
        self._refused: dict[str, int] = {}  # uid -> the generation whose refusal is written
        self._queue_waits: dict[str, tuple[int, str]] = {}  # uid -> the generation and reason told it waits for
        self._queue_retries: dict[str, asyncio.TimerHandle] = {}  # uid -> its next judgement while it waits
        self._full: set[str] = set()  # uids told the federator's queue is full (QueueFull), not submitted yet
        self._scale_refused: dict[str, int] = {}  # uid -> the generation whose spec.replicas was refused (said once)
        self.holds = SpecHolds(fed, store, lambda meta, said: self._warn(meta, EventReason.HOLD_REFUSED, said))
        self._accepted_written: set[JobId] = set()  # jobs loaded without status.accepted, written once since
        self._unwritten: set[JobId] = set()  # jobs whose status write (a note, a generation) was not taken yet
        self.retry_seconds = RETRY_SECONDS
        self.cancels = KubeCancelRecords(api, fed.orphans.cancels)  # cancels not confirmed, on MemberClusters
        self.silent = silent  # ends awaited of placements cancelled on a silent member, on MemberClusters
        fed.orphans.story = KUBE_ORPHAN_STORY

    async def start(self) -> None:
        self.informer.start()
        await self.adopt_members()
        loop = asyncio.get_running_loop()
        self._tasks = [*(loop.create_task(self._work(q)) for q in self._queues), loop.create_task(self._members()),
                       loop.create_task(delete_expired(self.informer.cache.values, self.api, self.clock))]
        await self.informer.wait_synced()
        log.info("watching FederatedJobs in %s: %d found", self.api.server, len(self.informer.cache))
        await self.cancel_orphans()

    async def cancel_orphans(self) -> None:
        """Jobs whose FederatedJob vanished while no federator watched (a forced delete) are cancelled."""
        uids = {(o.get("metadata") or {}).get("uid") for o in self.informer.cache.values()}
        for job in list(self.fed.jobs.values()):
            owner = self.store.owner_of(job.job_id)
            if owner is not None and owner.uid not in uids and not job.phase.is_terminal:
                try:
                    live: set[str] = {p.placement_id for p in job.placements if not p.phase.is_terminal}
                    await self._cancel(job.job_id, f"{owner.namespace}/{owner.name}")
                    self._record(job, live)  # written by the MemberCluster loop: no finalizer waits for it
                except StoreUnavailable as exc:  # the next start (or leader) tries again
                    log.warning("job %s of a vanished FederatedJob not cancelled: %s", job.job_id, exc)

    async def stop(self) -> None:
        self.informer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- FederatedJobs ------------------------------------------------------------

    def _enqueue(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        self._queues[zlib.crc32(key.encode()) % WORKERS].put_nowait((kind, obj))

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
        job_id = (self.store.job_for_uid(uid) or (obj.get("status") or {}).get("jobId")
                  or await self._settled(ns, name, uid))
        if kind == DELETED or meta.get("deletionTimestamp"):
            self._scale_refused.pop(uid, None)
            self.holds.forget(uid)
            self._queue_waits.pop(uid, None)
            if (retry := self._queue_retries.pop(uid, None)) is not None:
                retry.cancel()
            ours = kind != DELETED and FINALIZER in (meta.get("finalizers") or [])
            if job_id:
                job = self.fed.jobs.get(JobId(job_id))
                live: set[str] = {p.placement_id for p in job.placements if not p.phase.is_terminal} if job else set()
                await self._cancel(job_id, f"{ns}/{name}")
                if job is not None and (ours or live):  # gone without our finalizer while it ran: recorded too
                    await self._keep_cancels(job, live)  # durable before the finalizer goes (StoreUnavailable: again)
            if kind == DELETED and job_id:
                self._forget(job_id)
            if ours:
                await self._set_finalizers(obj, [f for f in meta["finalizers"] if f != FINALIZER])
            return
        if FINALIZER not in (meta.get("finalizers") or []):
            # The finalizer goes on before the job exists, so no job outlives its object.
            await self._set_finalizers(obj, [*(meta.get("finalizers") or []), FINALIZER])
            return  # the update comes back as an event
        if job_id and job_id in self.fed.jobs:
            await self._scale(obj, JobId(job_id))  # a changed spec.replicas (kubectl scale), or nothing
            await self.holds.read(obj, JobId(job_id))  # a changed spec.held (backends/kube/holds.py), or nothing
            await self._metadata(obj, JobId(job_id))  # an edited annotation the job does not follow, or nothing
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
        denied = await self._namespace_denied(ns, spec.queue)
        if denied is not None:
            await self._wait_for_queue(obj, denied)
            return
        self._queue_waits.pop(uid, None)
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
        try:
            held = namespace_hold(self.fed, ns) if held_of(obj) else None  # spec.held: true (kube/holds.py)
            job = await self.fed.intake.submit_async(spec, hold=held)  # its status write joins a group commit
        except QueueFull as exc:
            self._wait_for_room(obj, exc)
            return
        except SubmitError as exc:
            await self._refuse(obj, str(exc))
            return
        finally:
            self.store.unexpect(owner)  # not taken by a new job's write (refused, or a request id's replay)
        self._full.discard(uid)
        log.info("FederatedJob %s/%s submitted as job %s", ns, name, job.job_id)
        warnings = self.fed.intake.warnings(job.spec)
        for warning in warnings:  # what `federator submit` prints on stderr
            self._warn(meta, EventReason.SUBMIT_WARNING, warning)

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

    async def _wait_for_queue(self, obj: Obj, denied: Denied) -> None:
        """Not admitted by its Queue (yet): Pending with the reason, said once per generation and reason (status,
        Warning Event QueueNotAllowed, audit line), and judged again in QUEUE_WAIT_RETRY_SECONDS for as long as it
        exists. A spec the federator already refused is not here: only an object the parser took waits."""
        meta = obj["metadata"]
        uid, generation = meta["uid"], int(meta.get("generation", 1))
        if self._queue_waits.get(uid) != (generation, denied.message):
            status = obj.get("status") or {}
            body = {"metadata": {"uid": uid},
                    "status": queue_wait_status(denied.message, generation=generation, now=self.clock(),
                                                old_conditions=status.get("conditions"))}
            try:
                await asyncio.to_thread(self.api.patch, FEDERATED_JOBS, meta["name"], body, meta["namespace"],
                                        subresource="status")
            except (ConflictError, NotFoundError):
                return  # deleted, or replaced by an object of that name: its own events follow
            self._queue_waits[uid] = (generation, denied.message)
            log.warning("FederatedJob %s/%s waits for its queue: %s", meta["namespace"], meta["name"],
                        denied.message)
            self._audit_refusal(obj, denied.message, denied.rule)
            self._warn(meta, EventReason.QUEUE_NOT_ALLOWED, f"waits, judged again every "
                                                            f"{QUEUE_WAIT_RETRY_SECONDS:g}s: {denied.message}")
        old = self._queue_retries.pop(uid, None)
        if old is not None:
            old.cancel()  # one judgement pending per object, however many events it had
        self._queue_retries[uid] = asyncio.get_running_loop().call_later(
            QUEUE_WAIT_RETRY_SECONDS, self._requeue, MODIFIED, key_of(obj), obj)

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

    async def _scale(self, obj: Obj, job_id: JobId) -> None:
        """A known job whose FederatedJob's spec.replicas differs from its own: the same scale as the gRPC API's
        (server/scaling.py). The CRD lets spec.replicas alone change, on an inference job; a scale the federator
        refuses (below minRegions, over its limits, a job that has ended) is a Warning Event ScaleRefused, said
        once per object generation, and the job keeps its count. StoreUnavailable is raised: tried again.

        Every write here is awaited off the event loop (`_write`, `Federator.scale_async`): each is a status
        write, an HTTP round trip to the API server, and held every agent stream, Watch and Submit. Meanwhile:
        the object's next event waits (one worker per object, `_work`); the job may change (an agent's update, a
        cycle) or end or be cancelled (a gRPC Cancel): the scale is decided again from the job as it is then
        (server/scaling.py), refused once it has ended, and the object's spec.replicas is never set back, even
        when a scaled state stored first is overtaken by the job's older count (KubeJobStore.observed)."""
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        job = self.fed.jobs[job_id]
        wanted = spec.get("replicas", 1)
        if "workload" in spec or not isinstance(wanted, int) or wanted == job.spec.replicas:
            noted = self._note(job, SCALE_REFUSED, None)  # spec.replicas says the job's count again
            observed = self._observe(meta, job)  # another field that may change: spec.ttlSecondsAfterFinished
            if noted or observed:
                await self._write(job)
            return
        generation = int(meta.get("generation", 1))
        owner = self.store.owner_of(job_id)
        if owner is not None and generation < owner.generation:
            return  # an event from before the store's own write of spec.replicas (a gRPC scale): stale
        if self._scale_refused.get(meta.get("uid", "")) == generation:
            return
        # The object holds it: no write back, nor of the job's count while the scale is on its way.
        self.store.observed(job_id, generation=generation, replicas=wanted, was=job.spec.replicas)
        try:
            job = await self.fed.scale_async(job_id, wanted)
        except NotFound:
            return  # forgotten meanwhile (retention of an ended job): nothing to say
        except ScaleRefused as exc:
            # The object's spec.replicas is the user's (or a GitOps tool's): left as written, never set back. The
            # status says the refusal (Accepted=False, observedGeneration) and a restart rebuilds the job from
            # status.accepted, so the next leader never reads the refused count as the job's (accepted.py).
            job = self.fed.jobs.get(job_id, job)  # as it is now: it may have ended while the scale was stored
            message = f"spec.replicas: not scaled to {wanted}, the job keeps {job.spec.replicas}: {exc}"
            self._note(job, SCALE_REFUSED, message)
            await self._write(job)  # forced: its status observes the generation
            self._scale_refused[meta.get("uid", "")] = generation  # once written: StoreUnavailable says it again
            if said(obj, SCALE_REFUSED, message):
                return  # a federator before this one said it (a restart): not again
            log.warning("FederatedJob %s/%s: scale to %d refused: %s", meta.get("namespace"), meta.get("name"),
                        wanted, exc)
            self._warn(meta, EventReason.SCALE_REFUSED, message)
            return
        self.store.applied(job_id)
        if self._note(job, SCALE_REFUSED, None):
            await self._write(job)
        log.info("FederatedJob %s/%s: job %s scaled to %d replicas", meta.get("namespace"), meta.get("name"),
                 job_id, wanted)

    async def _metadata(self, obj: Obj, job_id: JobId) -> None:
        """An accepted job's object whose metadata says what the job does not follow (an edited federator.io/
        annotation, or metadata the federator would refuse now): a Warning Event MetadataIgnored and the condition
        Accepted=False, once per change; the job keeps what it was accepted with (accepted.py). Before, nothing was
        said, and the next start rebuilt the job from that metadata: a running job Failed, its workload an orphan
        (outside QA G10). One status write, awaited off the loop (`_write`)."""
        job = self.fed.jobs.get(job_id)
        if job is None:
            return  # forgotten while a scale was stored (`_scale`)
        # A job accepted before 0.12.0: its status.accepted, before any edit; written once (an old CRD prunes the
        # field, and each write is an event), counted once the API server took it.
        first = "accepted" not in (obj.get("status") or {}) and job_id not in self._accepted_written
        message = metadata_ignored(obj, job.spec)
        was = self.store.ignoring.get(job_id, {}).get(METADATA_IGNORED)
        if self._note(job, METADATA_IGNORED, message) or first:
            await self._write(job)
        if first:
            self._accepted_written.add(job_id)
        if message is None or message == was or said(obj, METADATA_IGNORED, message):
            return
        meta = obj.get("metadata") or {}
        log.warning("FederatedJob %s/%s: metadata not applied to job %s: %s", meta.get("namespace"),
                    meta.get("name"), job_id, message)
        self._warn(meta, EventReason.METADATA_IGNORED, message)

    def _note(self, job: Job, reason: str, message: str | None) -> bool:
        """Set (or clear: None) what the job's status says it does not follow of its object; whether its status is
        to be written (`_write`): when that changed, or when its last write was not taken (StoreUnavailable: the
        reconcile tried again finds the note unchanged, and wrote nothing before)."""
        notes = dict(self.store.ignoring.get(job.job_id) or {})  # a new dict: the store's writer thread reads it
        before = notes.get(reason)
        if message is None:
            notes.pop(reason, None)
        else:
            notes[reason] = message
        if notes:
            self.store.ignoring[job.job_id] = notes
        else:
            self.store.ignoring.pop(job.job_id, None)
        return before != message or job.job_id in self._unwritten

    def _observe(self, meta: Obj, job: Job) -> bool:
        """A new generation of a known job's object with nothing to scale (its TTL changed, finished_ttl.py): its
        status is to say it observed it (`_write`). Left behind, `kubectl wait` (which skips a condition of an older
        generation) and a GitOps health check never passed on that job again. A write not taken is written again
        (`_unwritten`): the store holds the generation already, so it is not new at the retry."""
        generation, owner = int(meta.get("generation", 1)), self.store.owner_of(job.job_id)
        if owner is None or generation <= owner.generation:
            return job.job_id in self._unwritten
        self.store.observed(job.job_id, generation=generation, replicas=job.spec.replicas)
        return True

    async def _write(self, job: Job) -> None:
        """The job's status written with what the controller just told the store (a note, an observed generation),
        awaited off the event loop (a group commit's batch: GroupCommit.commit): it was `GroupCommit.write`, an
        HTTP round trip to the API server holding every agent stream, Watch and Submit. The job as it is now is
        written; should it change meanwhile (it ends, a cycle places it), that write is queued after this one and
        lands after it. StoreUnavailable is raised (`_work` reconciles the object again) and the job stays owed
        its write (`_unwritten`), so the retry writes it though nothing is new by then."""
        self._unwritten.add(job.job_id)
        await self.fed.journal.commit([job])
        self._unwritten.discard(job.job_id)

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

    def _wait_for_room(self, obj: Obj, exc: QueueFull) -> None:
        """Back-pressure is not a verdict on the job: the object waits, and is submitted once the federator (or
        its queue: QueuePendingLimit, the queue's maxPendingJobs; or its namespace, which stands for the user a
        kubectl-made object lacks: UserPendingLimit, --max-pending-jobs-per-user) has room. It is told once (a
        Warning Event QueueFull, a log line), then tried again every `retry_after` for as long as it exists."""
        meta = obj["metadata"]
        if meta["uid"] not in self._full:
            self._full.add(meta["uid"])
            log.warning("FederatedJob %s/%s waits: %s", meta["namespace"], meta["name"], exc)
            self._warn(meta, EventReason.QUEUE_FULL, f"not submitted yet, tried again until there is room: {exc}")
        asyncio.get_running_loop().call_later(exc.retry_after, self._requeue, MODIFIED, key_of(obj), obj)

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

    async def _namespace_denied(self, namespace: str, queue: str) -> Denied | None:
        """The Queue's namespaceSelector against the namespace's labels (read only when a selector applies), and
        a queue nobody declared under a multi-tenant policy (rule undeclared-queue: a kubectl user is no admin)."""
        closed = self.authz.closed(queue)
        if not closed and not selector_applies(self.authz, queue):
            return None
        try:
            labels = await namespace_labels(self.api, namespace)
        except KubeError as exc:  # fail closed: a selector we cannot check refuses
            log.warning("namespace %s: labels not read (%s); its jobs match only selectors that need no label",
                        namespace, exc)
            labels = {}
        if closed:
            return self.authz.undeclared(queue, namespace, labels)
        decision = self.authz.namespace(queue, namespace, labels)
        return decision if isinstance(decision, Denied) else None

    async def _cancel(self, job_id: str, what: str) -> None:
        """The job of a deleted FederatedJob cancelled, its write awaited off the event loop (server/cancelling.py:
        a status write, an HTTP round trip, held the loop before)."""
        try:
            finished = self.fed.get(job_id).phase.is_terminal
            job = await self.fed.cancel_async(job_id)
        except NotFound:
            return
        if finished or job.phase is not JobPhase.CANCELLED:  # ended before its cancel, or while it was stored
            # A finished job's workloads (its Job and Service, a JobSet and its children) stay in the
            # member until their TTL, if any; the FederatedJob going means the user is done with them.
            # Best effort: a member whose agent is away keeps them (a Job until its TTL).
            for p in job.placements:
                self.fed.send(p.cluster, CancelOrder(p.placement_id, f"FederatedJob {what} deleted"))
        log.info("FederatedJob %s deleted: job %s is %s", what, job_id, job.phase)

    def _record(self, job: Job, live: set[str]) -> list[str]:
        """Record the cancels of a job's placements that a member may still run (server/unconfirmed_cancels.py):
        those that ran until this cancel (`live`), and the cancelled ones on a cluster that is away (a deletion
        tried again, or taken over by a new leader, after the cancel was stored). Not a finished placement: its
        agent lists it in no report, so it is never an orphan, and it would confirm nothing. The clusters of the
        job; a record past its bound drops its oldest entries, said here."""
        book = self.fed.orphans.cancels
        clusters: dict[str, list[str]] = {}
        for p in job.placements:
            rec = self.fed.clusters.get(p.cluster)
            if rec is None:
                continue  # forgotten: nothing of it is expected back
            clusters.setdefault(p.cluster, [])
            if p.placement_id in live or (p.phase is JobPhase.CANCELLED and not rec.connected):
                clusters[p.cluster].append(p.placement_id)
        for cluster, pids in clusters.items():
            dropped = book.record(cluster, pids, now=self.clock())
            if dropped:
                log.warning("cluster %s: the record of cancels its member has not confirmed is full (%d placements); "
                            "the oldest %d dropped, e.g. %s: if that member still runs them after a federator "
                            "restart they are orphans, held for --orphan-grace", cluster, book.count(cluster),
                            len(dropped), dropped[0])
        return list(clusters)

    async def _keep_cancels(self, job: Job, live: set[str]) -> None:
        """The record of the job's cancels, written to its clusters' MemberClusters before its finalizer goes."""
        clusters = self._record(job, live) + self.fed.orphans.cancels.unwritten()  # and cancels of moves, say
        await self.cancels.flush(clusters, recreate=self.recreate())
        if self.silent is not None and self.silent.due:  # best effort: a failed write is tried again by the loop
            await asyncio.to_thread(self.silent.flush, self.recreate())

    def recreate(self) -> dict[str, bool]:
        """Whether a missing MemberCluster is made again, per cluster (as `write_members` decides)."""
        return {name: rec.connected or rec.state is not ClusterState.LOST for name, rec in self.fed.clusters.items()}

    def _forget(self, job_id: str) -> None:
        """The object is gone, so is its job, from every view: `federator get jobs` (gRPC) listed a deleted
        FederatedJob's job until the federator restarted, while kubectl said NotFound. Its cancel is stored and
        sent already (`_cancel`, before the finalizer went)."""
        job = self.fed.jobs.get(JobId(job_id))
        self.store.ignoring.pop(JobId(job_id), None)
        self._unwritten.discard(JobId(job_id))
        if job is not None and job.phase.is_terminal:
            forget_job(self.fed, job)
            self.fed.notify([job])  # a Watch of it ends (NOT_FOUND)

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

    def _audit_refusal(self, obj: Obj, message: str, rule: Rule) -> None:
        """The audit line of a FederatedJob its Queue does not admit (a tenancy rule's decision)."""
        meta, spec = obj["metadata"], obj.get("spec") or {}
        self.audit.record("federatedjob.refuse", identity=None, result="refused", code="PERMISSION_DENIED",
                          rule=rule.value, message=message,
                          obj={"kind": "FederatedJob", "namespace": meta["namespace"], "name": meta["name"],
                               "queue": str(spec.get("queue", "default"))})

    def _warn(self, meta: Obj, reason: EventReason, message: str, *, now: float | None = None) -> None:
        """A Warning Event on the FederatedJob of `meta` (none when the store posts no Events)."""
        if self.store.events is not None:
            self.store.events.record(event_object(
                JobEvent(reason, message, warning=True), namespace=meta["namespace"], name=meta["name"],
                uid=meta["uid"], now=self.clock() if now is None else now, instance=self.store.events.instance))

    # -- MemberClusters -------------------------------------------------------------

    async def _members(self) -> None:
        while True:
            try:
                await self.write_members()
                await self.cancels.flush(self.fed.orphans.cancels.unwritten(), recreate=self.recreate())
                if self.silent is not None and self.silent.due:  # ends awaited of silent cancels
                    await asyncio.to_thread(self.silent.flush, self.recreate())
                await asyncio.to_thread(self.store.flush)
                if isinstance(holds := self.fed.cycles.reserved.store, KubeHoldStore):  # reservations' clocks
                    await asyncio.to_thread(holds.flush)
                if isinstance(moved := self.fed.cycles.rebalancer.store, KubeMoveStore):  # last move times
                    await asyncio.to_thread(moved.flush)
                await self.read_cordons()
            except Exception:  # a failed round is retried on the next
                log.exception("writing MemberClusters failed")
            await asyncio.sleep(self.member_interval)

    async def read_cordons(self, *, every: float = CORDON_READ_SECONDS) -> None:
        """Take the cordons the MemberClusters' specs hold (backends/kube/cordons.py), at most every `every`
        seconds: an operator's `kubectl patch mc` holds within that."""
        store, now = self.fed.cordons.store, self.clock()
        if not isinstance(store, KubeCordonStore) or now - self._cordons_read < every:
            return
        self._cordons_read = now
        read_at = self.fed.cordons.changes
        try:
            current = await asyncio.to_thread(store.load, self.fed.cordons.held())
        except StoreUnavailable as exc:
            log.warning("cordons not read: %s", exc)
            return
        self.fed.cordons.sync(current, read_at=read_at)

    async def adopt_members(self) -> None:
        """MemberClusters the registry does not know (their agent has not connected to this federator yet)
        enter it Partitioned, or Lost if they were, and age to Lost like any cluster that is away. The cancels
        each one's record holds are read (cancel_records.py), the cordons their specs hold (cordons.py) and the
        quarantines their annotations keep (quarantines.py); once the members are restored, the ends awaited of
        placements cancelled while their member was silent (silent_cancels.py) are attached from that listing."""
        try:
            listed = await asyncio.to_thread(self.api.list, MEMBER_CLUSTERS)
        except KubeError as exc:
            log.warning("listing MemberClusters failed: %s; only connected clusters are shown", exc)
            if self.silent is not None:  # kept from now on (its first write reads the records first)
                self.fed.silent_cancels.attach(self.silent, now=self.clock())
            return
        self.cancels.loaded_from(listed.get("items") or [])  # before any deletion is reconciled
        store = self.fed.cordons.store
        if isinstance(store, KubeCordonStore):  # the cordons hold from the first cycle (read_cordons: then on)
            self.fed.cordons.sync(store.held_in(listed.get("items") or [], self.fed.cordons.held()),
                                  read_at=self.fed.cordons.changes)
            self._cordons_read = self.clock()
        if isinstance(self.fed.early.quarantine.store, KubeQuarantineStore):  # in force from the first cycle
            self.fed.early.quarantine.restore(held_in(listed.get("items") or []), self.clock())
        self._cancel_kept()
        for obj in listed.get("items") or []:
            name = str((obj.get("metadata") or {}).get("name", ""))
            spec, status = obj.get("spec") or {}, obj.get("status") or {}
            if name in self.fed.clusters:  # its agent connected first (gRPC serves before this): the Resizes owed
                restore_member(self.fed.clusters[name], status)
                admin_record(self.fed, self.fed.clusters[name], str(spec.get("region", "")))  # the record's wins
                continue
            if not name or (not spec.get("region") and not status):  # made by a cordon before its agent connected
                continue
            lost = status.get("state") == ClusterState.LOST.value
            self.fed.expect_cluster(name, region=str(spec.get("region", "")),
                                    labels={str(k): str(v) for k, v in (spec.get("labels") or {}).items()},
                                    lost=lost, last_report_at=parse_timestamp(status.get("lastReportTime")))
            restore_member(self.fed.clusters[name], status)  # features, notAfter, Resizes owed, Lost time
            placed_elsewhere(self.fed, name, str(spec.get("region", "")))  # re-regioned while this was away: said
            log.info("MemberCluster %s: its agent has not connected to this federator yet; %s", name,
                     "Lost" if lost else "Partitioned until it does")
        if self.silent is not None:  # after the members: an entry of a member Lost meanwhile ends at its last report
            self.silent.loaded_from(listed.get("items") or [])
            self.fed.silent_cancels.attach(self.silent, now=self.clock())

    def _cancel_kept(self) -> None:
        """The cancels just read, sent at once to the agents already connected: gRPC serves before the records are
        read, and an agent that re-synced meanwhile named its placements to a federator that did not know them
        yet (held as orphans then). A Cancel of a placement the agent does not hold is a no-op there."""
        book = self.fed.orphans.cancels
        for name in book.clusters():
            rec = self.fed.clusters.get(name)
            if rec is not None and rec.connected:
                for pid in book.entries(name):
                    self.fed.send(name, CancelOrder(pid, DELETED_REASON))

    async def write_members(self, *, refresh_after: float = 30.0) -> None:
        """Mirror the cluster registry; a status that did not change is rewritten only every refresh_after.

        A Lost cluster whose object an operator deleted is forgotten (server/leases.py); the object of a
        cluster the federator forgot by itself (--forget-lost-after) is deleted, so the two never disagree."""
        now = self.clock()
        for rec in list(self.fed.clusters.values()):
            status = member_status(self.fed, rec)  # what `federator get clusters` says of it (member_status.py)
            comparable = {k: v for k, v in status.items() if k != "lastReportTime"}
            last = self._members_written.get(rec.name)
            if last is not None and last[0] == comparable and now - last[1] < refresh_after:
                continue
            # A Lost, disconnected cluster's object an operator deleted stays deleted (until its agent is back).
            recreate = rec.connected or rec.state is not ClusterState.LOST
            there = await asyncio.to_thread(self._write_member, rec.name, rec.region, dict(rec.labels), status,
                                            recreate)
            if not there and self.fed.leases.forget(rec.name, "its MemberCluster was deleted"):
                self._members_written.pop(rec.name, None)
                continue
            self._members_written[rec.name] = (comparable, now)
        for name in [n for n in self._members_written if n not in self.fed.clusters]:
            try:
                await asyncio.to_thread(self.api.delete, MEMBER_CLUSTERS, name)
                log.info("MemberCluster %s deleted: the federator forgot that Lost cluster", name)
            except KubeError as exc:  # tried once: an old Role without delete would log this every round
                log.warning("MemberCluster %s: the federator forgot that Lost cluster, but could not delete its "
                            "object (%s); delete it by hand: kubectl delete mc %s", name, exc, name)
            del self._members_written[name]

    def _write_member(self, name: str, region: str, labels: dict[str, str], status: dict[str, Any],
                      recreate: bool = True) -> bool:
        """Write the object and its status; False when it is gone and `recreate` is False."""
        try:
            self.api.patch(MEMBER_CLUSTERS, name, {"spec": {"region": region, "labels": labels}})
        except NotFoundError:
            if not recreate:
                return False
            try:
                self.api.create(MEMBER_CLUSTERS, member_cluster(name, region=region, labels=labels))
            except ConflictError:
                pass
        try:
            self.api.patch(MEMBER_CLUSTERS, name, {"status": status}, subresource="status")
        except KubeError as exc:
            log.warning("MemberCluster %s: status not written: %s", name, exc)
        return True


__all__ = ["FederatedJobController"]
