"""The clocks of gangs' reservations in Kubernetes mode: `status.reservation` of each gang's FederatedJob.

Why: the standalone store keeps them in its SQLite file (store/holds.py, server/reservations.py says why they are
kept at all), and Kubernetes mode kept them in memory only, since a new leader's `--db` is its own: every restart
and every change of leader gave each holding gang a new reservations.maxHoldSeconds, and each resting gang its room
back at once. Kubernetes mode keeps a job's state in its FederatedJob's status; the clocks of its reservation go
there too, where any leader reads them:

    kubectl get fj train -o jsonpath='{.status.reservation}'
    {"began":"2026-12-06T04:20:00.000000Z","cluster":"east","since":"2026-12-06T04:31:10.000000Z"}

`cluster`/`since`: where the gang holds room and since when; `began`: its first hold (maxHoldSeconds counts from
it, kept when the hold moves); a resting gang (its hold ran out) has no cluster and `restsUntil`. Absent: the gang
neither holds nor rests.

Writes are buffered (`put` keeps each gang's newest change and returns at once: it is called from a scheduling
cycle, which must not wait for an API server) and written by `flush`, which the FederatedJob controller's
MemberCluster loop calls every `member_interval` (backends/kube/controller.py) and KubeMode.stop once more while
this replica still leads. A clock changes when a hold begins, moves or ends, so a write is one small status patch
per such change, never one per cycle per gang. A change not written when the process dies is lost: the next leader
then holds on the clocks last written (at worst one hold's length off, never a job). The changes due (`due`) are
`federator_reservation_unwritten_clocks` (server/reservations.py): a write that keeps failing shows there, and
FederatorReservationClocksUnwritten fires, rather than in one log line only.

The write is a merge patch of `status.reservation` alone (the job store's status writes, merge patches too, leave
it as it is) with the object's uid as precondition, so it never lands on a newer FederatedJob of the same name. A
FederatedJob CRD from before the field (Helm never upgrades CRDs) prunes it without a word: the patched object
comes back without it, which is said once (apply the CRDs), and the clocks are then memory only, as before 0.10.0.

Read back at start from the listing the job store loads the jobs from (KubeJobStore.load), not a listing of its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError, KubeError, NotFoundError
from federator.backends.kube.resources import parse_timestamp, timestamp
from federator.backends.kube.store import KubeJobStore
from federator.model import JobId
from federator.store.holds import HoldClock

log = logging.getLogger("federator.kube")

FIELD = "reservation"
"""The FederatedJob status field that holds the clocks."""


def encode(clock: HoldClock) -> dict[str, Any]:
    """The merge patch of the status field for `clock`: times as RFC 3339 with microseconds, and null for what it
    has not (a merge patch merges objects: a gang that stops holding to rest must lose its cluster, and the CRD's
    date-time format takes no empty string)."""
    return {"cluster": clock.cluster or None, "since": timestamp(clock.since) or None,
            "began": timestamp(clock.began) or None, "restsUntil": timestamp(clock.rests_until) or None}


def decode(job_id: JobId, value: object) -> HoldClock:
    """The clock a status field holds; ValueError naming the field at fault."""
    if not isinstance(value, Mapping):
        raise ValueError(f"status.{FIELD}: must be an object, got {type(value).__name__}")
    times = {}
    for key in ("since", "began", "restsUntil"):
        text = value.get(key) or ""
        times[key] = parse_timestamp(text)
        if text and not times[key]:
            raise ValueError(f"status.{FIELD}.{key}: must be an RFC 3339 time, got {str(text)[:40]!r}")
    cluster = str(value.get("cluster") or "")
    if cluster and not times["since"]:
        raise ValueError(f"status.{FIELD}.since: must be set with cluster {cluster!r}")
    if not cluster and not times["restsUntil"]:
        raise ValueError(f"status.{FIELD}: holds neither a cluster nor restsUntil")
    return HoldClock(job_id, cluster, times["since"], times["began"] or times["since"], times["restsUntil"])


class KubeHoldStore:
    """HoldStore (store/holds.py) over the FederatedJobs' status: `put` buffers, `flush` writes (see module)."""

    def __init__(self, jobs: KubeJobStore) -> None:
        self.jobs = jobs  # whose FederatedJob each job is (its owner), and the listing read at start
        self._lock = threading.Lock()
        self._due: dict[JobId, HoldClock | None] = {}  # each gang's newest change not written yet (None: forget)
        self._failing = False  # the last write failed: said once until one works
        self._pruned_said = False
        self.writes = 0

    def put(self, clocks: Iterable[HoldClock], *, forget: Iterable[JobId] = ()) -> None:
        with self._lock:
            for clock in clocks:
                self._due[clock.job_id] = clock
            for job_id in forget:
                self._due[job_id] = None

    def load(self) -> list[HoldClock]:
        """The clocks the FederatedJobs held when the job store loaded them; one that cannot be read is said and
        skipped (that gang's clocks start afresh)."""
        listed, self.jobs.reservations = self.jobs.reservations, {}
        out = []
        for job_id, value in listed.items():
            try:
                out.append(decode(job_id, value))
            except ValueError as exc:
                log.warning("job %s: %s; its reservation's clocks start afresh", job_id, exc)
        return out

    @property
    def due(self) -> int:
        """Changes not written yet."""
        with self._lock:
            return len(self._due)

    def flush(self) -> int:
        """Write the changes due (blocking: called off the event loop); how many are still due (a gang whose
        FederatedJob is not made yet, or a write the API server did not take: tried again at the next flush)."""
        with self._lock:
            due = dict(self._due)
        for job_id, clock in due.items():
            if self._write(job_id, clock):
                with self._lock:
                    if self._due.get(job_id, clock) is clock:  # unless a newer change came meanwhile
                        self._due.pop(job_id, None)
        return self.due

    def _write(self, job_id: JobId, clock: HoldClock | None) -> bool:
        """One gang's change; True when it is done with (written, or its FederatedJob gone)."""
        owner = self.jobs.owner_of(job_id)
        if owner is None:
            return clock is None  # not made yet (kept), or a job forgotten with its object
        body = {"metadata": {"uid": owner.uid}, "status": {FIELD: None if clock is None else encode(clock)}}
        try:
            patched = self.jobs.api.patch(FEDERATED_JOBS, owner.name, body, owner.namespace, subresource="status")
        except (NotFoundError, ConflictError):
            return True  # deleted, or replaced by a new object of that name: nothing to keep the clock on
        except KubeError as exc:
            if not self._failing:
                log.warning("cannot keep the clocks of job %s's reservation in FederatedJob %s/%s (%s); tried again "
                            "every few seconds, said again once a write has worked", job_id, owner.namespace,
                            owner.name, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("the clocks of reservations are written again")
        self._failing = False
        self.writes += 1
        if clock is not None and FIELD not in (patched.get("status") or {}) and not self._pruned_said:
            self._pruned_said = True
            log.warning("the FederatedJob CRD does not keep status.%s: the reservations' clocks start afresh at each "
                        "restart or change of leader until it does. Apply deploy/helm/federator/crds/ "
                        "(docs/operators.md, Upgrading to 0.10.0)", FIELD)
        return True

    def close(self) -> None:
        """Nothing to release: KubeMode.stop flushed what was due while this replica still led."""


__all__ = ["FIELD", "KubeHoldStore", "decode", "encode"]
