"""When each job last moved (the rebalancer's quiet time) in Kubernetes mode: `status.rebalance` of its FederatedJob.

Why: standalone keeps these times in its SQLite file (store/moves.py says why they are kept at all: forgotten, a
job that had just moved could be moved again at once, within policy.rebalance.quietSeconds, and the restart's
minute allowed maxMovesPerMinute more moves). Kubernetes mode kept them in memory only, since a new leader's `--db`
is its own: every restart and every change of leader let each job that had just moved move again. Kubernetes mode
keeps a job's state in its FederatedJob's status; when it last moved goes there too, where any leader reads it:

    kubectl get fj chat -o jsonpath='{.status.rebalance}'
    {"lastMovedAt":"2026-12-06T04:20:00.000000Z"}

Absent: the job has not moved within its quiet time (the rebalancer forgets a time once it bounds nothing).

The same shape as the reservations' clocks (reservation_clocks.py): `put` keeps each job's newest change and
returns at once (it is called from a scheduling turn, which must not wait for an API server); `flush` writes them,
called by the FederatedJob controller's MemberCluster loop every `member_interval` and by KubeMode.stop once more
while this replica still leads. A time changes when a move starts or ends, so a write is one small status patch
per such change, never one per turn. A change not written when the process dies is lost: the next leader then
keeps the quiet time last written (at worst one quiet time off, never a job). The changes due are not counted in
`federator_reservation_unwritten_clocks`: that gauge and its alert are the reservations' (one name per concept),
and a move time lost costs one quiet time, which a failing write says once in the log (the job store's own status
writes to the same objects fail with it, and show in federator_store_unwritten_jobs).

The write is a merge patch of `status.rebalance` alone with the object's uid as precondition, so it never lands on
a newer FederatedJob of the same name. A FederatedJob CRD from before the field (Helm never upgrades CRDs) prunes
it without a word: the patched object comes back without it, which is said once (apply the CRDs).

Read back at start from the listing the job store loads the jobs from (KubeJobStore.load), not a listing of its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError, KubeError, NotFoundError
from federator.backends.kube.resources import parse_timestamp, timestamp
from federator.backends.kube.store import KubeJobStore
from federator.model import JobId

log = logging.getLogger("federator.kube")

FIELD = "rebalance"
"""The FederatedJob status field that holds when the job last moved."""


def decode(value: object) -> float:
    """The time a status field holds (Unix seconds); ValueError naming the field at fault."""
    if not isinstance(value, Mapping):
        raise ValueError(f"status.{FIELD}: must be an object, got {type(value).__name__}")
    text = value.get("lastMovedAt")
    if not text:
        raise ValueError(f"status.{FIELD}.lastMovedAt: missing")
    at = parse_timestamp(text)
    if not at:
        raise ValueError(f"status.{FIELD}.lastMovedAt: must be an RFC 3339 time, got {str(text)[:40]!r}")
    return at


class KubeMoveStore:
    """MoveStore (store/moves.py) over the FederatedJobs' status: `put` buffers, `flush` writes (see module)."""

    def __init__(self, jobs: KubeJobStore) -> None:
        self.jobs = jobs  # whose FederatedJob each job is (its owner), and the listing read at start
        self._lock = threading.Lock()
        self._due: dict[JobId, float | None] = {}  # each job's newest change not written yet (None: forget)
        self._failing = False  # the last write failed: said once until one works
        self._pruned_said = False
        self.writes = 0

    def put(self, moved: Mapping[JobId, float], *, forget: Iterable[JobId] = ()) -> None:
        with self._lock:
            self._due.update(moved)
            for job_id in forget:
                self._due[job_id] = None

    def load(self) -> dict[JobId, float]:
        """The times the FederatedJobs held when the job store loaded them; one that cannot be read is said and
        skipped (that job's quiet time starts afresh: it may move at once)."""
        listed, self.jobs.moves = self.jobs.moves, {}
        out = {}
        for job_id, value in listed.items():
            try:
                out[job_id] = decode(value)
            except ValueError as exc:
                log.warning("job %s: %s; it may move again at once", job_id, exc)
        return out

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
        for job_id, at in due.items():
            if self._write(job_id, at):
                with self._lock:
                    if job_id in self._due and self._due[job_id] == at:  # unless a newer change came meanwhile
                        del self._due[job_id]
        return self.due

    def _write(self, job_id: JobId, at: float | None) -> bool:
        """One job's change; True when it is done with (written, or its FederatedJob gone)."""
        owner = self.jobs.owner_of(job_id)
        if owner is None:
            return at is None  # not made yet (kept), or a job forgotten with its object
        value = None if at is None else {"lastMovedAt": timestamp(at)}
        body = {"metadata": {"uid": owner.uid}, "status": {FIELD: value}}
        try:
            patched = self.jobs.api.patch(FEDERATED_JOBS, owner.name, body, owner.namespace, subresource="status")
        except (NotFoundError, ConflictError):
            return True  # deleted, or replaced by a new object of that name: nothing to keep the time on
        except KubeError as exc:
            if not self._failing:
                log.warning("cannot keep when job %s last moved in FederatedJob %s/%s (%s); tried again every few "
                            "seconds, said again once a write has worked", job_id, owner.namespace, owner.name, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("the jobs' last move times are written again")
        self._failing = False
        self.writes += 1
        if at is not None and FIELD not in (patched.get("status") or {}) and not self._pruned_said:
            self._pruned_said = True
            log.warning("the FederatedJob CRD does not keep status.%s: a restart or change of leader forgets when "
                        "each job last moved (rebalance.quietSeconds) until it does. Apply "
                        "deploy/helm/federator/crds/ (docs/operators.md, Upgrading to 0.11.0)", FIELD)
        return True

    def close(self) -> None:
        """Nothing to release: KubeMode.stop flushed what was due while this replica still led."""


__all__ = ["FIELD", "KubeMoveStore", "decode"]
