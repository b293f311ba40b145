"""What a known job's FederatedJob changed after it was accepted: a scale, a new generation, edited metadata.

Why a module of its own: once a FederatedJob is a job, the controller (controller.py) only reads what its object
says that the job does not yet: spec.replicas (`kubectl scale`, a scale as the gRPC API's, server/scaling.py),
spec.held (holds.py), a new generation with nothing to scale (a changed spec.ttlSecondsAfterFinished,
finished_ttl.py: its status observes it) and metadata the job does not follow (accepted.py). What the job does not
follow is noted in its status (`note`) and written off the event loop (`write`); the object's spec is never set
back: a GitOps tool that applied it again fought the federator for ever (outside QA G4).

A scale the federator refuses is a Warning Event `ScaleRefused` naming the field, once per generation, and the
condition Accepted=False; the job keeps its count. A restart rebuilds the job from status.accepted, not from the
object's count. An accepted job's metadata edited after the fact is not applied either: a Warning Event
MetadataIgnored, once per change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from federator.backends.kube.accepted import METADATA_IGNORED, SCALE_REFUSED, metadata_ignored, said
from federator.backends.kube.api import Obj
from federator.backends.kube.events import EventReason
from federator.model import Job, JobId
from federator.server.federator import NotFound
from federator.server.scaling import ScaleRefused

if TYPE_CHECKING:
    from federator.backends.kube.store import KubeJobStore
    from federator.server.federator import Federator

log = logging.getLogger("federator.kube.controller")


class ObjectEdits:
    """A known job's object read for what changed; the job's status notes of what it does not follow."""

    def __init__(self, fed: Federator, store: KubeJobStore, warn: Callable[[Obj, EventReason, str], None]) -> None:
        self.fed = fed
        self.store = store
        self.warn = warn  # a Warning Event on the object of this metadata
        self._scale_refused: dict[str, int] = {}  # uid -> the generation whose spec.replicas was refused (said once)
        self._accepted_written: set[JobId] = set()  # jobs loaded without status.accepted, written once since
        self._unwritten: set[JobId] = set()  # jobs whose status write (a note, a generation) was not taken yet

    async def scale(self, obj: Obj, job_id: JobId) -> None:
        """A known job whose FederatedJob's spec.replicas differs from its own: the same scale as the gRPC API's
        (server/scaling.py). The CRD lets spec.replicas alone change, on an inference job; a scale the federator
        refuses (below minRegions, over its limits, a job that has ended) is a Warning Event ScaleRefused, said
        once per object generation, and the job keeps its count. StoreUnavailable is raised: tried again.

        Every write here is awaited off the event loop (`write`, `Federator.scale_async`): each is a status
        write, an HTTP round trip to the API server, and held every agent stream, Watch and Submit. Meanwhile:
        the object's next event waits (one worker per object, controller.py `_work`); the job may change (an
        agent's update, a cycle) or end or be cancelled (a gRPC Cancel): the scale is decided again from the job
        as it is then (server/scaling.py), refused once it has ended, and the object's spec.replicas is never set
        back, even when a scaled state stored first is overtaken by the job's older count
        (KubeJobStore.observed)."""
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        job = self.fed.jobs[job_id]
        wanted = spec.get("replicas", 1)
        if "workload" in spec or not isinstance(wanted, int) or wanted == job.spec.replicas:
            noted = self.note(job, SCALE_REFUSED, None)  # spec.replicas says the job's count again
            observed = self.observe(meta, job)  # another field that may change: spec.ttlSecondsAfterFinished
            if noted or observed:
                await self.write(job)
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
            self.note(job, SCALE_REFUSED, message)
            await self.write(job)  # forced: its status observes the generation
            self._scale_refused[meta.get("uid", "")] = generation  # once written: StoreUnavailable says it again
            if said(obj, SCALE_REFUSED, message):
                return  # a federator before this one said it (a restart): not again
            log.warning("FederatedJob %s/%s: scale to %d refused: %s", meta.get("namespace"), meta.get("name"),
                        wanted, exc)
            self.warn(meta, EventReason.SCALE_REFUSED, message)
            return
        self.store.applied(job_id)
        if self.note(job, SCALE_REFUSED, None):
            await self.write(job)
        log.info("FederatedJob %s/%s: job %s scaled to %d replicas", meta.get("namespace"), meta.get("name"),
                 job_id, wanted)

    async def metadata(self, obj: Obj, job_id: JobId) -> None:
        """An accepted job's object whose metadata says what the job does not follow (an edited federator.io/
        annotation, or metadata the federator would refuse now): a Warning Event MetadataIgnored and the condition
        Accepted=False, once per change; the job keeps what it was accepted with (accepted.py). Before, nothing was
        said, and the next start rebuilt the job from that metadata: a running job Failed, its workload an orphan
        (outside QA G10). One status write, awaited off the loop (`write`)."""
        job = self.fed.jobs.get(job_id)
        if job is None:
            return  # forgotten while a scale was stored (`scale`)
        # A job accepted before 0.12.0: its status.accepted, before any edit; written once (an old CRD prunes the
        # field, and each write is an event), counted once the API server took it.
        first = "accepted" not in (obj.get("status") or {}) and job_id not in self._accepted_written
        message = metadata_ignored(obj, job.spec)
        was = self.store.ignoring.get(job_id, {}).get(METADATA_IGNORED)
        if self.note(job, METADATA_IGNORED, message) or first:
            await self.write(job)
        if first:
            self._accepted_written.add(job_id)
        if message is None or message == was or said(obj, METADATA_IGNORED, message):
            return
        meta = obj.get("metadata") or {}
        log.warning("FederatedJob %s/%s: metadata not applied to job %s: %s", meta.get("namespace"),
                    meta.get("name"), job_id, message)
        self.warn(meta, EventReason.METADATA_IGNORED, message)

    def note(self, job: Job, reason: str, message: str | None) -> bool:
        """Set (or clear: None) what the job's status says it does not follow of its object; whether its status is
        to be written (`write`): when that changed, or when its last write was not taken (StoreUnavailable: the
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

    def observe(self, meta: Obj, job: Job) -> bool:
        """A new generation of a known job's object with nothing to scale (its TTL changed, finished_ttl.py): its
        status is to say it observed it (`write`). Left behind, `kubectl wait` (which skips a condition of an older
        generation) and a GitOps health check never passed on that job again. A write not taken is written again
        (`_unwritten`): the store holds the generation already, so it is not new at the retry."""
        generation, owner = int(meta.get("generation", 1)), self.store.owner_of(job.job_id)
        if owner is None or generation <= owner.generation:
            return job.job_id in self._unwritten
        self.store.observed(job.job_id, generation=generation, replicas=job.spec.replicas)
        return True

    async def write(self, job: Job) -> None:
        """The job's status written with what the controller just told the store (a note, an observed generation),
        awaited off the event loop (a group commit's batch: GroupCommit.commit): it was `GroupCommit.write`, an
        HTTP round trip to the API server holding every agent stream, Watch and Submit. The job as it is now is
        written; should it change meanwhile (it ends, a cycle places it), that write is queued after this one and
        lands after it. StoreUnavailable is raised (controller.py `_work` reconciles the object again) and the job
        stays owed its write (`_unwritten`), so the retry writes it though nothing is new by then."""
        self._unwritten.add(job.job_id)
        self.store.send_next(job.job_id)  # the object was read changed: sent though the job is as loaded
        await self.fed.journal.commit([job])
        self._unwritten.discard(job.job_id)

    def forget_uid(self, uid: str) -> None:
        """The object of `uid` is being deleted: its refused scale is said no more."""
        self._scale_refused.pop(uid, None)

    def forget(self, job_id: str) -> None:
        """The object of the job is gone: no note of it is kept, nor a write owed."""
        self.store.ignoring.pop(JobId(job_id), None)
        self._unwritten.discard(JobId(job_id))


__all__ = ["ObjectEdits"]
