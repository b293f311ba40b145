"""The job store of Kubernetes mode: each job's state lives in its FederatedJob's status.

The federator writes a job to its store before anyone hears of a change, so
writing the status subresource here *is* the status write-back: a job's phase,
cluster, placements and reasons reach `kubectl get fj` through the same call
that makes them durable. `load()` rebuilds every job from the FederatedJobs'
status, which is how a federator that becomes leader picks up where the last
one stopped (the placements' fencing generations included).

Each status write carries the FederatedJob's uid as a precondition, so a job
never writes over a newer FederatedJob that reuses its name, and the
resourceVersion the store last saw of the object (at `load`, in its own write's
answer, or from the controller's informer: `seen_version`), so a write prepared
before this replica lost the Lease is refused if the new leader wrote the object
meanwhile. On such a 409 the store reads the object and writes again only if the
Lease is still this replica's; else it drops the write and steps down. No write
at all is sent once this replica may have lost the Lease by its own clock
(`fencing.py`): queued and held writes are dropped, not flushed. A job submitted
through the gRPC API (`federator submit`) gets a FederatedJob created for it,
so every job is visible with kubectl. A write that places, re-queues,
preempts or fails a job also records a Kubernetes Event on its FederatedJob
(`events.py`).

An API server that does not take a write (a 5xx, 429, a timeout, a refused
connection) is `StoreUnavailable`, as a full disk is to the SQLite store: the
server answers UNAVAILABLE to the Submit or Cancel that waited for it, a
scheduling cycle keeps its orders until its placements are stored, and an
agent's update is owed. Before, such a write was kept for a silent retry and
the caller told it was stored: a Submit acknowledged a job that a failover
then lost, and a placement was launched before its fencing generation was
stored.

A create refused for what it is (403, 404, 422) is `StoreRefused`, and a name
held by a FederatedJob that is not the job's (a finished job's object keeps its
name until deleted: `federator submit --run-again` in Kubernetes mode) is
`NameTaken`: the Submit is refused and nothing is kept. A *status* write
refused for what it is (403: RBAC; 422: an old CRD) is held for a retry that
backs off per job and is said once per job and reason (`retries.py`), counted
by reason (`on_write_error`), and shown as `federator_store_unwritten_jobs`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from federator.backends.kube.accepted import ignored, read_back
from federator.backends.kube.api import (
    FEDERATED_JOBS,
    ConflictError,
    InvalidError,
    KubeApi,
    KubeError,
    NotFoundError,
)
from federator.backends.kube.events import (
    EventReason,
    EventRecorder,
    JobEvent,
    Seen,
    event_object,
    job_events,
    seen,
)
from federator.backends.kube.fencing import Deposed, Fence
from federator.backends.kube.resources import FINALIZER, accepted_of, job_from_resource, job_status, spec_of
from federator.backends.kube.retries import RetryBook, failure_of, unavailable
from federator.backends.kube.status_as_loaded import digest
from federator.jobfile import JobFileError, with_old_names
from federator.jobfile_writing import spec_to_document
from federator.model import Job, JobId, JobSpec
from federator.store.errors import NameTaken, StoreRefused, StoreUnavailable, WriteFailure

log = logging.getLogger("federator.kube.store")
WRITERS = 8  # status writes in flight at once (the client's pool has room for them beside the rest: api.py)
# A lazy batch of pending reasons (store/lazy_lane.py) is one round of the writers: a Submit that arrives meanwhile
# waits for that round, not for 200 PATCHes (~7 s at the ~30 a second an API server took on the test bed, QA
# kubescaleqa62 H1).
LAZY_BATCH_JOBS = WRITERS
CONFLICT_TRIES = 3  # status writes of one job refused for a newer object, read again each time, before it is held


@dataclass(frozen=True, slots=True)
class Owner:
    """The FederatedJob object a job belongs to."""

    namespace: str
    name: str
    uid: str
    generation: int = 1


class NameHeld(ConflictError):
    """A create answered 409 by a FederatedJob that is not the job's (`KubeJobStore._adopt`)."""

    def __init__(self, message: str, *, holder: str, vague: str) -> None:
        super().__init__(409, message, reason="AlreadyExists")
        self.message = message  # without the HTTP status: the store's own words, not the API server's
        self.holder = holder  # the job id the object's status carries ("" if none)
        self.vague = vague  # the message without the holder's job, for a caller who may not see it


class KubeJobStore:
    """JobStore over FederatedJob status. Synchronous, as the protocol is; status writes that fail are retried."""

    def __init__(self, api: KubeApi, *, namespace: str | None = None, clock: Callable[[], float] = time.time,
                 events: EventRecorder | None = None, timer: Callable[[], float] = time.monotonic,
                 retries: RetryBook | None = None, fence: Fence | None = None) -> None:
        self.api = api
        # Whether this replica may still write (fencing.py); without leader election it always may
        self.fence = fence or Fence(None)
        # The resourceVersion last seen of each FederatedJob, by uid: a status write's precondition (`seen_version`)
        self._versions: dict[str, str] = {}
        self.events = events  # None: no Kubernetes Events
        # What Submit warns of a spec (server/intake.py `warnings`), posted as SubmitWarning Events on the
        # FederatedJob made for a gRPC job, as the controller posts them on one made with kubectl (host.py sets it).
        self.warnings_of: Callable[[JobSpec], list[str]] | None = None
        self._seen: dict[JobId, Seen] = {}  # what the last status write of each job said
        self.namespace = namespace  # None: FederatedJobs of every namespace
        self.clock = clock
        self._owners: dict[JobId, Owner] = {}
        self._by_uid: dict[str, JobId] = {}
        self._creating: dict[tuple[str, str], JobId] = {}  # FederatedJobs being created for gRPC jobs
        self._expected: dict[tuple[str, str], Owner] = {}  # FederatedJobs being submitted right now
        self._conditions: dict[JobId, list[Mapping[str, Any]]] = {}
        # A digest of each loaded job's status as `load` read it, until a write says something else
        # (status_as_loaded.py): a new leader does not write back what the objects say already
        self._loaded: dict[JobId, bytes] = {}
        self._fields: frozenset[str] = frozenset()  # the status fields a write sets (`_status_fields`)
        self.lazy_batch_jobs = LAZY_BATCH_JOBS  # read by the group commit (store/group_commit.py)
        self.unchanged = 0  # status writes not sent: the object said that already
        self._replicas: dict[JobId, int] = {}  # the spec.replicas each job's FederatedJob holds, as last known
        self._job_replicas: dict[JobId, int] = {}  # each job's own count at its last write (a change: a scale)
        self._scaling_from: dict[JobId, int] = {}  # a kubectl scale on its way: the count the job had (`observed`)
        # The spec.held each job's FederatedJob holds, as last known (read, written, or seen changed by the
        # controller): a job held or released over the gRPC API whose object says otherwise gets it written
        # (`_write_held`), as a gRPC scale gets spec.replicas (backends/kube/holds.py)
        self.spec_held: dict[JobId, bool] = {}
        # What the live object says that its job does not follow (a refused scale, an edited annotation), for the
        # condition Accepted=False; set and cleared by the controller (accepted.py)
        self.ignoring: dict[JobId, dict[str, str]] = {}  # reason -> message
        # status.reservation of each FederatedJob `load` read, for the reservations' clocks (reservation_clocks.py)
        self.reservations: dict[JobId, object] = {}
        # status.rebalance of each FederatedJob `load` read, for when each job last moved (move_times.py)
        self.moves: dict[JobId, object] = {}
        self.timer = timer  # when held writes are due (monotonic: a wall clock's jump must not stall them)
        self._retry = retries or RetryBook()
        self.on_write_error: Callable[[WriteFailure], None] = lambda reason: None  # each write not taken (metrics)
        self._old_crd_warned = False  # said once that the FederatedJob CRD predates a renamed field
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._count_lock = threading.Lock()
        self.writes = 0

    # -- what the controller tells the store -----------------------------------

    def expect(self, owner: Owner) -> None:
        """The next job submitted under this namespace/name belongs to this FederatedJob."""
        self._expected[(owner.namespace, owner.name)] = owner

    def unexpect(self, owner: Owner) -> None:
        """The submission `expect` announced made no new job (refused, or a replay): the next job submitted under
        that name is not this FederatedJob's. Left, the expectation gave a later gRPC job of that name the
        object as its own."""
        if self._expected.get((owner.namespace, owner.name)) == owner:
            del self._expected[(owner.namespace, owner.name)]

    def observed(self, job_id: JobId, *, generation: int, replicas: int, was: int | None = None) -> None:
        """The job's FederatedJob now holds `replicas` at `generation` (a user's `kubectl scale`, seen by the
        controller): its status says it observed that generation, and the store need not write the count back.

        `was`: the job's count, from which it is being scaled (server/scaling.py). Until `applied`, a write of the
        job at that count writes no spec.replicas back: the scaled state is stored first, and a write of the job
        queued meanwhile (an agent's update, a cycle's), which holds the count it had, may land after it; taken
        for a gRPC scale back, it set the user's count back (a GitOps tool then applied it again)."""
        owner = self._owners.get(job_id)
        if owner is not None:
            self._own(job_id, replace(owner, generation=generation))
        self._replicas[job_id] = replicas
        if was is not None and was != replicas:
            self._scaling_from[job_id] = was

    def applied(self, job_id: JobId) -> None:
        """The kubectl scale `observed` announced is the job's: its later writes hold the new count."""
        self._scaling_from.pop(job_id, None)

    def seen_version(self, uid: str, version: str, *, gone: bool = False) -> None:
        """The controller's informer saw this FederatedJob at `version` (or deleted): a status write of its job
        expects that version. Never moved back to an older one (a watch event landing after the store's own write's
        answer): resourceVersions are etcd revisions, so when both are numbers the larger is the newer."""
        if gone:
            self._versions.pop(uid, None)
        elif version and _newer(version, self._versions.get(uid)):
            self._versions[uid] = version

    def owner_of(self, job_id: JobId) -> Owner | None:
        return self._owners.get(job_id)

    def job_for_uid(self, uid: str) -> JobId | None:
        return self._by_uid.get(uid)

    def creating(self, namespace: str, name: str) -> JobId | None:
        """The job whose FederatedJob this store is creating under that name (a gRPC-submitted job), or whose
        create's answer was lost: the retry adopts the object the create made (`_adopt`)."""
        return self._creating.get((namespace, name))

    def send_next(self, job_id: JobId) -> None:
        """The job's next status write is sent even if it says what the object said at `load`: the controller read
        the object changed since (its status edited, its generation new) and writes the job to say it again."""
        self._loaded.pop(job_id, None)

    def forget(self, job_id: JobId) -> None:
        """The job's FederatedJob is gone and the federator forgot the job (deletions.py): what this store kept of it
        goes too. Kept, a leader grew ~4 KB a job ever written until it restarted (QA kubescaleqa62 M1). A write of
        it still queued finds no owner and is dropped (`_write`: a finished job's object is not made again)."""
        owner = self._owners.pop(job_id, None)
        if owner is not None and self._by_uid.get(owner.uid) == job_id:
            del self._by_uid[owner.uid]
            self._versions.pop(owner.uid, None)
        for per_job in (self._conditions, self._loaded, self._replicas, self._job_replicas, self._scaling_from,
                        self.spec_held, self.ignoring, self.reservations, self.moves, self._seen):
            per_job.pop(job_id, None)  # type: ignore[attr-defined]

    def _own(self, job_id: JobId, owner: Owner) -> None:
        self._owners[job_id] = owner
        self._by_uid[owner.uid] = job_id

    # -- JobStore protocol ------------------------------------------------------

    def load(self) -> list[Job]:
        try:
            listed = self.api.list(FEDERATED_JOBS, self.namespace)
        except KubeError as exc:  # a start stops with this line, not a traceback (server/app.py)
            raise StoreUnavailable(f"cannot load the jobs from FederatedJobs in {self.api.server}: {exc}") from exc
        jobs: list[Job] = []
        for cr in listed.get("items") or []:
            meta = cr.get("metadata") or {}
            try:
                job = job_from_resource(cr)
            except (JobFileError, KeyError, ValueError) as exc:
                log.warning("FederatedJob %s/%s: cannot rebuild its job from status: %s", meta.get("namespace"),
                            meta.get("name"), exc)
                continue
            if job is None:
                continue
            self._own(job.job_id, Owner(meta["namespace"], meta["name"], meta["uid"],
                                        int(meta.get("generation", 1))))
            self.seen_version(meta["uid"], str(meta.get("resourceVersion") or ""))
            self._conditions[job.job_id] = list((cr.get("status") or {}).get("conditions") or [])
            self._loaded[job.job_id] = self._said(cr.get("status") or {}, job)
            if notes := read_back(self._conditions[job.job_id]):
                self.ignoring[job.job_id] = notes
            held = (cr.get("spec") or {}).get("replicas")  # may be a count the federator refused: kept as is
            self._replicas[job.job_id] = held if isinstance(held, int) else job.spec.replicas
            self._job_replicas[job.job_id] = job.spec.replicas
            # as the job is, not as the object says: an edit of spec.held while no federator ran is a change the
            # controller finds when it reads the object (backends/kube/holds.py), not one this store writes over
            self.spec_held[job.job_id] = job.hold is not None
            if (clocks := (cr.get("status") or {}).get("reservation")) is not None:
                self.reservations[job.job_id] = clocks
            if (moved := (cr.get("status") or {}).get("rebalance")) is not None:
                self.moves[job.job_id] = moved
            self._seen[job.job_id] = seen(job)  # its Events were recorded by the federator that wrote it
            jobs.append(job)
        jobs.sort(key=lambda j: (j.submitted_at, j.job_id))
        log.info("loaded %d jobs from FederatedJob status in %s", len(jobs), self.api.server)
        return jobs

    def put(self, jobs: Iterable[Job]) -> None:
        """Write each job's status; a batch is written by `WRITERS` requests in flight at once.

        The federator's group commit (store/group_commit.py) calls this from its writer thread with
        every job changed since the last batch, newest state only (coalesced per object), so the
        event loop never waits for the apiserver and one round trip is not paid per job in turn.
        Held writes whose retry is due go along."""
        self._put(list(jobs), every_held=False)

    def _put(self, jobs: list[Job], *, every_held: bool) -> None:
        asked = {j.job_id for j in jobs}
        with self._lock:
            now = self.timer()
            if not self.fence.holds():  # the Lease lost, or may be: dropped, not flushed (fencing.py)
                dropped = len(set(asked) | {j.job_id for j in self._retry.jobs()})
                for job in self._retry.jobs():
                    self._retry.clear(job.job_id)
                if dropped:
                    self.fence.drop(f"{dropped} jobs' status", dropped)
                if asked:
                    raise self.fence.refusal(len(asked))
                return
            held = self._retry.jobs() if every_held else self._retry.due(now)
            pending = {**{j.job_id: j for j in held}, **{j.job_id: j for j in jobs}}  # a newer state wins
            jobs_in_order = list(pending.values())
            if len(pending) <= 1:
                errors = [self._write_or_error(job) for job in jobs_in_order]
            else:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="kube-status")
                errors = list(self._pool.map(self._write_or_error, jobs_in_order))
            away: list[tuple[Job, KubeError]] = []
            refused: list[StoreRefused] = []
            fenced: list[Job] = []
            for job, error in zip(jobs_in_order, errors, strict=True):
                if error is None:
                    self._written(job)
                    continue
                if isinstance(error, Deposed):  # not sent, nor kept: the new leader rebuilds it
                    self._retry.clear(job.job_id)
                    fenced.append(job)
                    continue
                self.on_write_error(failure_of(error))
                if unavailable(error) and job.job_id in asked:
                    self._retry.clear(job.job_id)
                    away.append((job, error))  # the caller hears of it and writes again: not kept here
                elif job.job_id not in self._owners and job.job_id in asked:
                    self._retry.clear(job.job_id)
                    refused.append(_refusal(job, error))  # its FederatedJob was not made, for what it is: not kept
                else:
                    self._hold(job, error, now)
        if fenced:
            self.fence.drop(f"{len(fenced)} jobs' status", len(fenced))
            if asked & {j.job_id for j in fenced}:
                raise self.fence.refusal(len(asked & {j.job_id for j in fenced}))
        if away:
            job, error = away[0]
            raise StoreUnavailable(f"the Kubernetes API server did not take {len(away)} of "
                                   f"{len(asked)} job writes (job {job.job_id}: {error})")
        if refused:
            raise StoreRefused.of(refused)

    def _hold(self, job: Job, error: KubeError, now: float) -> None:
        """Keep the job's newest state for a retry that backs off; said once per job and reason."""
        outcome = self._retry.failed(job, failure_of(error), now)
        if not outcome.say:
            return
        h = outcome.held
        hint = _HINTS.get(h.reason, "")
        log.warning("writing the status of job %s failed (%s)%s; retried, backing off to %gs between tries, "
                    "and said again if the reason changes or in %gs", job.job_id, error, hint, self._retry.cap,
                    self._retry.resay)

    def _written(self, job: Job) -> None:
        was = self._retry.clear(job.job_id)
        if was is not None:
            log.info("the status of job %s is written, after %d failed tries (%s)", job.job_id, was.failures,
                     was.reason)

    def unwritten(self) -> dict[str, int]:
        """Jobs whose newest state is held for a retry, by the reason of their last failure (a gauge)."""
        return {str(reason): n for reason, n in self._retry.counts().items()}

    def _write_or_error(self, job: Job) -> KubeError | Deposed | None:
        if not self.fence.holds():  # asked again before each write: a batch may outlast the Lease
            return self.fence.refusal(1)
        try:
            self._write(job)
        except (KubeError, Deposed) as exc:
            return exc
        return None

    def flush(self) -> int:
        """Retry the held writes that are due; how many are held (still failing, or not due yet)."""
        self._put([], every_held=False)
        return len(self._retry)

    def close(self) -> None:
        """One last try of every held write, due or not (never a wait): what is still refused is said, and the
        next leader rebuilds those jobs from their last written status."""
        self._put([], every_held=True)
        if len(self._retry):
            log.warning("closing with %d jobs' newest state not written (%s)", len(self._retry),
                        ", ".join(f"{n} {reason}" for reason, n in sorted(self.unwritten().items())))
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self.events is not None:
            self.events.close()

    # -- internals ----------------------------------------------------------------

    def _write(self, job: Job) -> None:
        owner = self._owners.get(job.job_id)
        if owner is None:
            key = (job.spec.namespace, job.spec.name)
            owner = self._expected.pop(key, None)
            if owner is None:
                if job.phase.is_terminal and key not in self._creating:
                    return  # its FederatedJob is gone, and so is the job
                self._creating[key] = job.job_id
                try:
                    owner = self._create_owner(job)
                except KubeError as exc:
                    if 0 < exc.status < 500:
                        self._creating.pop(key, None)  # refused: the API server made no object
                    # Else kept: the object may have been made and the answer lost. The controller then
                    # knows whose object it sees, and the retry adopts it (`_create_owner`).
                    raise
                self._creating.pop(key, None)
                self._warn_created(job, owner)
            self._own(job.job_id, owner)
        try:
            held = self._replicas.setdefault(job.job_id, job.spec.replicas)
            scaled = job.spec.replicas != self._job_replicas.setdefault(job.job_id, job.spec.replicas)
            if (not job.spec.workload_json and scaled and job.spec.replicas != held
                    and self._scaling_from.get(job.job_id) != job.spec.replicas):
                owner = self._write_replicas(job, owner)  # a gRPC scale; never a count the federator refused
            self._job_replicas[job.job_id] = job.spec.replicas
            if self.spec_held.setdefault(job.job_id, job.hold is not None) != (job.hold is not None):
                owner = self._write_held(job, owner)  # a gRPC hold or release
            status = self._status_of(job, generation=owner.generation)
            self._conditions[job.job_id] = status["conditions"]
            if (loaded := self._loaded.get(job.job_id)) is not None and self._says_as_loaded(status, job, loaded):
                with self._count_lock:
                    self.unchanged += 1
            else:
                self._loaded.pop(job.job_id, None)  # the object will say something else
                self._patch_status(job, owner, status)
                with self._count_lock:
                    self.writes += 1
            self._record_events(job, owner)
        except (NotFoundError, ConflictError):
            # The FederatedJob was deleted (or replaced by a new one of the same name): the job
            # has no object to write to any more. The controller cancels such jobs.
            log.info("FederatedJob %s/%s of job %s is gone; status not written", owner.namespace, owner.name,
                     job.job_id)

    def _status_of(self, job: Job, *, generation: int) -> dict[str, Any]:
        """The status a write of `job` sends (its FederatedJob's `generation`): `job_status`'s fields, `accepted`,
        and the condition Accepted where the job does not follow its object (`ignored`). The one builder of a
        written status, so the fields `load` compares (`_status_fields`) are the fields a write sets."""
        status = job_status(job, generation=generation, old_conditions=self._conditions.get(job.job_id),
                            now=self.clock())
        status["accepted"] = accepted_of(job.spec)
        ignored(status, self.ignoring.get(job.job_id), generation=generation, now=self.clock(),
                old_conditions=self._conditions.get(job.job_id))
        return status

    def _patch_status(self, job: Job, owner: Owner, status: dict[str, Any]) -> None:
        """The status write, on the condition that the object is as this store last saw it (its resourceVersion).

        A 409 with a version known is someone's write since: the object is read again; another object of the name
        (or none) is the caller's "gone". Else the write is sent again over the version read, but only if the
        Lease, read afresh, is still this replica's (`Fence.confirm`): a deposed leader's write is dropped and the
        replica steps down, so the new leader's status stands (outside QA haqa63 FA)."""
        for _ in range(CONFLICT_TRIES):
            meta: dict[str, str] = {"uid": owner.uid}
            if version := self._versions.get(owner.uid):
                meta["resourceVersion"] = version
            try:
                patched = self.api.patch(FEDERATED_JOBS, owner.name, {"metadata": meta, "status": status},
                                         owner.namespace, subresource="status")
            except ConflictError:
                if not version:
                    raise  # the uid's precondition: another object of the name
                current = self.api.get(FEDERATED_JOBS, owner.name, owner.namespace)  # NotFoundError: gone
                now = current.get("metadata") or {}
                if now.get("uid") != owner.uid:
                    raise
                if not self.fence.confirm():
                    self.fence.step_down(f"the status write of job {job.job_id} to FederatedJob {owner.namespace}/"
                                         f"{owner.name} was refused (written since this replica last saw it, "
                                         f"resourceVersion {version} -> {now.get('resourceVersion')}) and the "
                                         "leader Lease is no longer this replica's")
                    raise self.fence.refusal(1) from None
                self._versions[owner.uid] = str(now.get("resourceVersion") or "")
                continue
            self.seen_version(owner.uid, str((patched.get("metadata") or {}).get("resourceVersion") or ""))
            return
        raise KubeError(409, f"FederatedJob {owner.namespace}/{owner.name} changed under each of {CONFLICT_TRIES} "
                             "status writes; tried again later", reason="Conflict")

    def _status_fields(self, job: Job) -> frozenset[str]:
        """The fields a status write of this store sets: the same for every job (`_status_of`'s keys), learned
        from the first job's status and kept."""
        if not self._fields:
            self._fields = frozenset(self._status_of(job, generation=0))
        return self._fields

    def _said(self, status: Mapping[str, Any], job: Job) -> bytes:
        """What `status` says of the fields a status write sets (status_as_loaded.py): the one computation for the
        status `load` reads from the object and the one `_write` is about to send. Were the two sides to count
        other fields, every write would look changed (one counted a field the other did not), or a change
        unchanged."""
        return digest(status, self._status_fields(job))

    def _says_as_loaded(self, status: Mapping[str, Any], job: Job, loaded: bytes) -> bool:
        """Whether a status about to be written says what its object said when loaded (`loaded`: `_said` of
        that), so the write is not sent. A field this write sets that the loaded digest did not count is never
        taken as unchanged: the write is sent, as it must be (a field the object may not hold yet)."""
        return status.keys() <= self._status_fields(job) and self._said(status, job) == loaded

    def _write_replicas(self, job: Job, owner: Owner) -> Owner:
        """A job scaled over the gRPC API (server/scaling.py): its FederatedJob's spec.replicas gets the new count,
        as `kubectl scale` would have given it, so that the object, kubectl and a leader that loads it agree with
        the job. Written before the status, and before any member hears of the scale (the store writes first).
        A CRD from before the scale subresource refuses the change (422): held and tried again, as a status write
        it refuses is, until the CRD is applied (docs/operators.md)."""
        body = {"metadata": {"uid": owner.uid}, "spec": {"replicas": job.spec.replicas}}
        patched = self.api.patch(FEDERATED_JOBS, owner.name, body, owner.namespace)
        self.seen_version(owner.uid, str((patched.get("metadata") or {}).get("resourceVersion") or ""))
        self._replicas[job.job_id] = job.spec.replicas
        self._scaling_from.pop(job.job_id, None)  # a gRPC scale after a refused kubectl one: the object follows it
        owner = replace(owner, generation=int((patched.get("metadata") or {}).get("generation", owner.generation)))
        self._own(job.job_id, owner)
        return owner

    def _write_held(self, job: Job, owner: Owner) -> Owner:
        """A job held or released over the gRPC API (server/job_holds.py): its FederatedJob's spec.held says so, as
        a `kubectl patch` would have, so that the object, kubectl and a GitOps tool's diff agree with the job, and
        the controller does not read the object's old value as a user's release (or hold). Written before the
        status. A CRD from before 0.14.0 prunes the field (no error): the job is held all the same, and a restart
        keeps the hold from status.hold, which that CRD prunes too (docs/operators.md, Upgrading to 0.14.0)."""
        held = job.hold is not None
        body = {"metadata": {"uid": owner.uid}, "spec": {"held": held}}
        patched = self.api.patch(FEDERATED_JOBS, owner.name, body, owner.namespace)
        self.seen_version(owner.uid, str((patched.get("metadata") or {}).get("resourceVersion") or ""))
        self.spec_held[job.job_id] = held
        owner = replace(owner, generation=int((patched.get("metadata") or {}).get("generation", owner.generation)))
        self._own(job.job_id, owner)
        return owner

    def _warn_created(self, job: Job, owner: Owner) -> None:
        """A gRPC job's new FederatedJob gets the Submit's warnings as Events: `federator submit` printed them on
        its user's terminal, and a teammate's `kubectl describe fj` saw none (outside QA)."""
        if self.events is None or self.warnings_of is None:
            return
        for warning in self.warnings_of(job.spec):
            self.events.record(event_object(JobEvent(EventReason.SUBMIT_WARNING, warning, warning=True),
                                            namespace=owner.namespace, name=owner.name, uid=owner.uid,
                                            now=self.clock(), instance=self.events.instance))

    def _record_events(self, job: Job, owner: Owner) -> None:
        before, self._seen[job.job_id] = self._seen.get(job.job_id), seen(job)
        if self.events is None:
            return
        for event in job_events(before, job):
            self.events.record(event_object(event, namespace=owner.namespace, name=owner.name, uid=owner.uid,
                                            now=self.clock(), instance=self.events.instance))

    def _create_owner(self, job: Job) -> Owner:
        """A job from the gRPC API: give it a FederatedJob, so kubectl shows it and it survives failover."""
        doc = spec_to_document(job.spec)
        doc["metadata"]["finalizers"] = [FINALIZER]
        if job.hold is not None:  # submitted held (SubmitRequest.hold): its object says so from the start
            doc["spec"]["held"] = True
        self.spec_held[job.job_id] = job.hold is not None
        try:
            created = self._create_or_adopt(job, doc, strict=True)
        except InvalidError as exc:
            unknown = _UNKNOWN_FIELD.findall(str(exc))
            if not unknown:
                raise
            # A FederatedJob CRD from before these fields (helm upgrade never upgrades crds/). The API server
            # would prune them without a word, and the job rebuilt from the object after a restart would
            # lose them: renamed fields go under the old name the CRD knows; the rest is pruned, as before.
            # Asked again for every job, so applying the CRD mends the next one without a restart.
            if not self._old_crd_warned:
                self._old_crd_warned = True
                log.warning("the FederatedJob CRD does not know %s; renamed fields are written by their old names "
                            "until it does. Apply deploy/helm/federator/crds/ (docs/operators.md)", ", ".join(unknown))
            with_old_names(doc)
            created = self._create_or_adopt(job, doc)
        meta = created["metadata"]
        self.seen_version(meta["uid"], str(meta.get("resourceVersion") or ""))
        log.info("created FederatedJob %s/%s for job %s", meta["namespace"], meta["name"], job.job_id)
        return Owner(meta["namespace"], meta["name"], meta["uid"], int(meta.get("generation", 1)))

    def _create_or_adopt(self, job: Job, doc: dict[str, Any], *, strict: bool = False) -> dict[str, Any]:
        for attempt in (1, 2):
            try:
                return self.api.create(FEDERATED_JOBS, doc, job.spec.namespace, strict=strict)
            except ConflictError:
                try:
                    return self._adopt(job)
                except NotFoundError:  # deleted between the create and the read: the name is free again
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def _adopt(self, job: Job) -> dict[str, Any]:
        """The FederatedJob of that name when it is this job's: made by an earlier create whose answer was
        lost (it carries the finalizer, the job's own spec, and no other job's id). NameHeld if not: the
        object is never written over, and the job is refused (`NameTaken`), as a kubectl create would be."""
        ns, name = job.spec.namespace, job.spec.name
        existing = self.api.get(FEDERATED_JOBS, name, ns)
        meta = existing.get("metadata") or {}
        status = existing.get("status") or {}
        job_id = status.get("jobId") or job.job_id
        try:
            same = spec_of(existing) == job.spec
        except JobFileError:
            same = False
        finalizer = FINALIZER in (meta.get("finalizers") or [])
        if finalizer and job_id == job.job_id and same:
            log.info("adopted FederatedJob %s/%s for job %s (an earlier create's answer was lost)", ns, name,
                     job.job_id)
            return existing
        if job_id != job.job_id:
            what = f"job {job_id}, {status.get('phase') or 'no phase yet'}"
        elif not finalizer:
            what = "not a job yet: made with kubectl or another client"
        else:
            what = "another spec"
        fix = (f"if it is done with, `kubectl delete federatedjob -n {ns} {name}` frees the name; "
               "or submit under another name")
        raise NameHeld(f"metadata.name: FederatedJob {ns}/{name} exists and is not this job's ({what}); {fix}",
                       holder=job_id if job_id != job.job_id else "",
                       vague=f"metadata.name: FederatedJob {ns}/{name} exists and is not this job's; {fix}")


def _newer(version: str, than: str | None) -> bool:
    """Whether `version` is at least as new as `than` (None: nothing seen); not numbers: taken as newer."""
    if than is None or not (version.isdigit() and than.isdigit()):
        return True
    return int(version) >= int(than)


def _refusal(job: Job, error: KubeError) -> StoreRefused:
    """What the Submit of a job whose FederatedJob was not created hears."""
    ids = frozenset({job.job_id})
    if isinstance(error, NameHeld):
        return NameTaken(error.message, ids, holder=error.holder, vague=error.vague)
    return StoreRefused(f"the Kubernetes API server would not create the FederatedJob "
                        f"{job.spec.namespace}/{job.spec.name}: {error}", ids)


_HINTS = {  # what an operator does about a status write refused for this reason
    WriteFailure.FORBIDDEN: ": the federator's service account may not write federatedjobs/status; apply the "
                            "chart's RBAC (deploy/helm/federator/templates/rbac.yaml)",
    WriteFailure.INVALID: ": the status does not validate against the FederatedJob CRD installed; apply "
                          "deploy/helm/federator/crds/ (docs/operators.md)",
}


_UNKNOWN_FIELD = re.compile(r'unknown field "([^"]+)"')  # the API server's strict decoding error


__all__ = ["KubeJobStore", "NameHeld", "Owner"]
