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
from collections.abc import Iterable, Mapping

from federator.backends.kube.resources import parse_timestamp, timestamp
from federator.backends.kube.status_writes import StatusFieldWrites
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


class KubeMoveStore(StatusFieldWrites[float]):
    """MoveStore (store/moves.py) over the FederatedJobs' status: `put` buffers, `flush` writes (see module)."""

    field = FIELD
    failing = "cannot keep when job {job} last moved"
    recovered = "the jobs' last move times are written again"
    pruned = (f"the FederatedJob CRD does not keep status.{FIELD}: a restart or change of leader forgets when each "
              "job last moved (rebalance.quietSeconds) until it does. Apply deploy/helm/federator/crds/ "
              "(docs/operators.md, Upgrading to 0.11.0)")

    def encode(self, value: float) -> object:
        return {"lastMovedAt": timestamp(value)}

    def put(self, moved: Mapping[JobId, float], *, forget: Iterable[JobId] = ()) -> None:
        with self._lock:
            for job_id, at in moved.items():
                self._owe(job_id, at)
            for job_id in forget:
                self._owe(job_id, None)

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


__all__ = ["FIELD", "KubeMoveStore", "decode"]
