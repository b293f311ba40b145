"""Buffered writes of one field of the FederatedJobs' status: what the reservations' clocks
(reservation_clocks.py) and the jobs' last move times (move_times.py) share.

Why one place: both keep a little of the scheduler's memory where any leader reads it, and both must write it
the same careful way: `put` (the subclass's) only buffers each job's newest change, since a scheduling turn must not
wait for an API server; `flush`, called off the event loop, writes each change as a merge patch of the one field
with the object's uid as precondition (never onto a newer FederatedJob of the same name); a write that fails is
said once until one works and tried again at the next flush; a CRD from before the field prunes it without a word,
which is said once. Only the field, its encoding and the words differ.
"""

from __future__ import annotations

import logging
import threading
from typing import Generic, TypeVar

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError, KubeError, NotFoundError
from federator.backends.kube.store import KubeJobStore
from federator.model import JobId

log = logging.getLogger("federator.kube")

V = TypeVar("V")


class StatusFieldWrites(Generic[V]):
    """Changes of `status.<field>` due per job (None: remove the field), and their writing. A subclass sets
    `field`, `failing` (what cannot be kept, with {job}), `recovered` and `pruned` (the log's words), and `encode`."""

    field: str
    failing: str  # e.g. "cannot keep when job {job} last moved"
    recovered: str  # said once a write works again
    pruned: str  # said once when the CRD drops the field

    def __init__(self, jobs: KubeJobStore) -> None:
        self.jobs = jobs  # whose FederatedJob each job is (its owner), and the listing read at start
        self._lock = threading.Lock()
        self._due: dict[JobId, V | None] = {}  # each job's newest change not written yet (None: forget)
        self._failing = False  # the last write failed: said once until one works
        self._pruned_said = False
        self.writes = 0

    def encode(self, value: V) -> object:
        raise NotImplementedError

    def _owe(self, job_id: JobId, value: V | None) -> None:
        """Buffer one job's change (under the lock's protection of the caller's `put`)."""
        self._due[job_id] = value

    @property
    def due(self) -> int:
        """Changes not written yet."""
        with self._lock:
            return len(self._due)

    def flush(self) -> int:
        """Write the changes due (blocking: called off the event loop); how many are still due (a job whose
        FederatedJob is not made yet, or a write the API server did not take: tried again at the next flush)."""
        with self._lock:
            due = dict(self._due)
            if due and not self.jobs.fence.holds():  # dropped, not flushed (fencing.py): the new leader's stand
                self._due.clear()
                self.jobs.fence.drop(f"{len(due)} jobs' status.{self.field}", len(due))
                return 0
        for job_id, value in due.items():
            if not self.jobs.fence.holds():
                break
            if self._write(job_id, value):
                with self._lock:
                    if self._due.get(job_id, value) is value:  # unless a newer change came meanwhile
                        self._due.pop(job_id, None)
        return self.due

    def _write(self, job_id: JobId, value: V | None) -> bool:
        """One job's change; True when it is done with (written, or its FederatedJob gone)."""
        owner = self.jobs.owner_of(job_id)
        if owner is None:
            return value is None  # not made yet (kept), or a job forgotten with its object
        body = {"metadata": {"uid": owner.uid}, "status": {self.field: None if value is None else self.encode(value)}}
        try:
            patched = self.jobs.api.patch(FEDERATED_JOBS, owner.name, body, owner.namespace, subresource="status")
        except (NotFoundError, ConflictError):
            return True  # deleted, or replaced by a new object of that name: nothing to keep the change on
        except KubeError as exc:
            if not self._failing:
                log.warning("%s in FederatedJob %s/%s (%s); tried again every few seconds, said again once a write "
                            "has worked", self.failing.format(job=job_id), owner.namespace, owner.name, exc)
            self._failing = True
            return False
        # the object's new version: the job's next status write expects it (store.py `seen_version`)
        self.jobs.seen_version(owner.uid, str((patched.get("metadata") or {}).get("resourceVersion") or ""))
        if self._failing:
            log.info(self.recovered)
        self._failing = False
        self.writes += 1
        if value is not None and self.field not in (patched.get("status") or {}) and not self._pruned_said:
            self._pruned_said = True
            log.warning(self.pruned)
        return True

    def close(self) -> None:
        """Nothing to release: KubeMode.stop flushed what was due while this replica still led."""


__all__ = ["StatusFieldWrites"]
