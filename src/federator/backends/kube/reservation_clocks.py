"""The clocks of gangs' reservations in Kubernetes mode: `status.reservation` of each gang's FederatedJob.

Why: the standalone store keeps them in its SQLite file (store/reservation_clocks.py, server/reservations.py says why
they are kept at all), and Kubernetes mode kept them in memory only, since a new leader's `--db` is its own: every
restart and every change of leader gave each reserving gang a new reservations.maxHoldSeconds, and each resting gang
its room back at once. Kubernetes mode keeps a job's state in its FederatedJob's status; the clocks of its reservation
go there too, where any leader reads them:

    kubectl get fj train -o jsonpath='{.status.reservation}'
    {"began":"2026-12-06T04:20:00.000000Z","cluster":"east","since":"2026-12-06T04:31:10.000000Z"}

`cluster`/`since`: where the gang reserves room and since when; `began`: its first reservation's start
(maxHoldSeconds counts from it, kept when the reservation moves); a resting gang (its reservation ran out) has no
cluster and `restsUntil`. Absent: the gang neither reserves nor rests.

Writes are buffered (`put` keeps each gang's newest change and returns at once: it is called from a scheduling cycle,
which must not wait for an API server) and written by `flush`, which the FederatedJob controller's MemberCluster loop
calls every `member_interval` (backends/kube/member_clusters.py) and KubeMode.stop once more while this replica still
leads. A clock changes when a reservation begins, moves or ends, so a write is one small status patch per such change,
never one per cycle per gang. A change not written when the process dies is lost: the next leader then goes on from
the clocks last written (at worst one reservation's length off, never a job). The changes due (`due`) are
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
from collections.abc import Iterable, Mapping
from typing import Any

from federator.backends.kube.resources import parse_timestamp, timestamp
from federator.backends.kube.status_writes import StatusFieldWrites
from federator.model import JobId
from federator.store.reservation_clocks import ReservationClock

log = logging.getLogger("federator.kube")

FIELD = "reservation"
"""The FederatedJob status field that holds the clocks."""


def encode(clock: ReservationClock) -> dict[str, Any]:
    """The merge patch of the status field for `clock`: times as RFC 3339 with microseconds, and null for what it
    has not (a merge patch merges objects: a gang whose reservation ends in a rest must lose its cluster, and the CRD's
    date-time format takes no empty string)."""
    return {"cluster": clock.cluster or None, "since": timestamp(clock.since) or None,
            "began": timestamp(clock.began) or None, "restsUntil": timestamp(clock.rests_until) or None}


def decode(job_id: JobId, value: object) -> ReservationClock:
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
    return ReservationClock(job_id, cluster, times["since"], times["began"] or times["since"], times["restsUntil"])


class KubeReservationClockStore(StatusFieldWrites[ReservationClock]):
    """ReservationClockStore (store/reservation_clocks.py) over the FederatedJobs' status: `put` buffers, `flush`
    writes (see module)."""

    field = FIELD
    failing = "cannot keep the clocks of job {job}'s reservation"
    recovered = "the clocks of reservations are written again"
    pruned = (f"the FederatedJob CRD does not keep status.{FIELD}: the reservations' clocks start afresh at each "
              "restart or change of leader until it does. Apply deploy/helm/federator/crds/ (docs/operators.md, "
              "Upgrading to 0.10.0)")

    def encode(self, value: ReservationClock) -> object:
        return encode(value)

    def put(self, clocks: Iterable[ReservationClock], *, forget: Iterable[JobId] = ()) -> None:
        with self._lock:
            for clock in clocks:
                self._owe(clock.job_id, clock)
            for job_id in forget:
                self._owe(job_id, None)

    def load(self) -> list[ReservationClock]:
        """The clocks the FederatedJobs had when the job store loaded them; one that cannot be read is said and
        skipped (that gang's clocks start afresh)."""
        listed, self.jobs.reservations = self.jobs.reservations, {}
        out = []
        for job_id, value in listed.items():
            try:
                out.append(decode(job_id, value))
            except ValueError as exc:
                log.warning("job %s: %s; its reservation's clocks start afresh", job_id, exc)
        return out


__all__ = ["FIELD", "KubeReservationClockStore", "decode", "encode"]
