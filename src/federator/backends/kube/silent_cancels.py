"""The placements cancelled on a silent member whose end is awaited, kept on its MemberCluster in Kubernetes mode.

Why: a placement a user cancelled while its member was Partitioned has its usage record closed at the cancel, and
the federator waits for the member's word to date its end earlier (server/silent_cancels.py). Standalone keeps that
wait in `--db` (store/silent_cancels.py); Kubernetes mode kept it in memory only, so a restart (or a new leader)
before the word came left the record at the cancel for good: the tenant billed for time nobody vouched for, in a
usage window read complete. It is kept here now, per member, where any leader reads it:

    kubectl get mc member-a -o jsonpath='{.metadata.annotations.federator\\.io/silent-cancels}'
    {"job-7-g1-a":1733390000.123456}

Each entry: a placement and when it was cancelled (Unix seconds, to the microsecond: the record's end). Absent: no
end awaited from that member.

Where: an annotation of the MemberCluster, as the unconfirmed cancels (cancel_records.py) and quarantines are, not a
FederatedJob status field as the reservations' clocks and move times are: the entry belongs to the member (it is
its word that is awaited, and a member Lost meanwhile ends each entry of it), and it must outlive its job, whose
FederatedJob a `kubectl delete` removes once its cancel is stored. An annotation holds on any MemberCluster CRD
(Helm never upgrades CRDs), and it goes with the object: a cluster forgotten takes its entries along.

Writes: `put` and `drop` (the SilentCancelStore protocol, called on the event loop) only change what is due, and
`flush` (off the loop) writes each changed member's whole record as one merge patch of the annotation: the
controller's MemberCluster loop every `member_interval`, the deletion of a FederatedJob before its finalizer goes,
and KubeMode.stop once more while this replica leads. A change not written when the process dies (those few
seconds, for a gRPC Cancel) is lost: that record stays at the cancel, as before 0.12.0, never a job. A write the API
server refuses is said once and tried again at the next flush. The record of one member is bounded
(`MAX_RECORD_CHARS`; the annotations of an object share 256 KiB): past it the oldest entries go, said in a WARNING.

Read back from the listing of MemberClusters the controller makes at start (`loaded_from`, before the members it
restores are attached: member_clusters.py `MemberClusters.adopt`). gRPC serves before that listing (the Queues
are listed first: 18 ms on the test bed, longer on a big host): the word of an agent that re-synced with the new
process before it goes unheard, and its record stays at the cancel.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from federator.backends.kube.api import MEMBER_CLUSTERS, KubeApi, KubeError
from federator.backends.kube.member_annotations import decoded, write
from federator.server.unconfirmed_cancels import decode as decode_times
from federator.store.errors import StoreUnavailable
from federator.store.silent_cancels import AwaitedEnd

log = logging.getLogger("federator.kube")
ANNOTATION = "federator.io/silent-cancels"
MAX_RECORD_CHARS = 64 * 1024  # of one member's record: a quarter of what all its annotations may hold
_ENTRY_CHARS = 22  # "ID":1733390000.123456, around each id in the encoded record (at most)


def encode(entries: Mapping[str, float]) -> str:
    """`{"ID":SECONDS,...}`, oldest first, to the microsecond."""
    ordered = sorted(entries.items(), key=lambda item: (item[1], item[0]))
    return json.dumps({pid: round(at, 6) for pid, at in ordered}, separators=(",", ":"))


def decode(text: str) -> dict[str, float]:
    """The entries of a record; ValueError naming what is wrong."""
    entries = decode_times(text)
    for pid, at in entries.items():
        if not (math.isfinite(at) and at > 0):
            raise ValueError(f"placement {pid[:80]!r}: its cancel time must be positive seconds, got {at!r}")
    return entries


class KubeSilentCancelStore:
    """SilentCancelStore (store/silent_cancels.py) over the MemberClusters' annotations (see module)."""

    def __init__(self, api: KubeApi, *, limit: int = MAX_RECORD_CHARS) -> None:
        self.api = api
        self.limit = limit
        self._lock = threading.Lock()  # the entries: changed on the loop, read by `flush` off it
        self._writing = threading.Lock()  # one flush at a time: a member's records land in the order made
        self._entries: dict[str, dict[str, float]] = {}  # cluster -> placement id -> cancelled at
        self._chars: dict[str, int] = {}  # cluster -> its record's length, at most
        self._where: dict[str, str] = {}  # placement id -> cluster
        self._version: dict[str, int] = {}
        self._written: dict[str, int] = {}
        self._listed: list[AwaitedEnd] = []  # what the MemberClusters held at start, until `load` takes it
        self.loaded = False  # the records were read: until then a write would replace what they hold
        self._failing = False
        self.writes = 0

    # -- SilentCancelStore --------------------------------------------------------

    def put(self, awaited: Iterable[AwaitedEnd]) -> None:
        with self._lock:
            for a in awaited:
                self._add(a.cluster, a.placement_id, a.cancelled_at)
                self._changed(a.cluster)
                self._bound(a.cluster)

    def drop(self, placement_ids: Iterable[str]) -> None:
        with self._lock:
            for pid in placement_ids:
                cluster = self._where.get(pid)
                if cluster is not None:
                    self._remove(cluster, pid)
                    self._changed(cluster)

    def load(self) -> list[AwaitedEnd]:
        """What the MemberClusters held when the controller listed them at start (none if it could not)."""
        with self._lock:
            listed, self._listed = self._listed, []
        return listed

    def close(self) -> None:
        """Nothing to release: KubeMode.stop flushed what was due while this replica still led."""

    # -- the annotations ------------------------------------------------------------

    def loaded_from(self, members: Iterable[Mapping[str, Any]]) -> None:
        """The records of a MemberCluster listing (the controller's, at start): held as written, for `load`."""
        records = decoded(members, ANNOTATION, decode, "a record of silent cancels")
        with self._lock:
            for cluster, entries in records.items():
                mine = self._entries.get(cluster, {})
                for pid, at in entries.items():
                    if pid not in mine:
                        self._add(cluster, pid, at)
                if mine:
                    self._changed(cluster)
                else:
                    self._written[cluster] = self._version.get(cluster, 0)  # as stored: nothing to write back
            self._listed = [AwaitedEnd(c, pid, at) for c, entries in sorted(records.items())
                            for pid, at in sorted(entries.items())]
            self.loaded = True
        if records:
            log.info("placements cancelled on a silent member, their end awaited, read from the MemberClusters: %s",
                     ", ".join(f"{c} {len(e)}" for c, e in sorted(records.items())))

    @property
    def due(self) -> list[str]:
        """The members whose record changed since it was last written."""
        with self._lock:
            return sorted(c for c, v in self._version.items() if self._written.get(c, 0) != v)

    def flush(self, recreate: Mapping[str, bool]) -> int:
        """Write the records due (blocking: called off the event loop); how many are still due. `recreate`: per
        member, whether a missing MemberCluster is made again for it (as the controller's own writes decide). Before
        the listing at start was read, nothing is written (a write would replace what the record holds): it is
        listed here first."""
        with self._writing:
            if not self.due:
                return 0
            if not self.loaded and not self._read():
                return len(self.due)
            for cluster in self.due:
                with self._lock:
                    version, entries = self._version.get(cluster, 0), dict(self._entries.get(cluster, {}))
                try:
                    write(self.api, cluster, ANNOTATION, encode(entries) if entries else None,
                          recreate=recreate.get(cluster, False), failed="silent cancels not recorded")
                except StoreUnavailable as exc:
                    if not self._failing:
                        log.warning("%s; tried again every few seconds, said again once a write has worked: a "
                                    "restart meanwhile leaves their usage ending at the cancel", exc)
                    self._failing = True
                    continue
                if self._failing:
                    log.info("the placements cancelled on a silent member are written to the MemberClusters again")
                self._failing = False
                self.writes += 1
                with self._lock:
                    self._written[cluster] = max(self._written.get(cluster, 0), version)
        return len(self.due)

    def _read(self) -> bool:
        """The records read here, the controller's listing at start having failed; whether they were."""
        try:
            listed = self.api.list(MEMBER_CLUSTERS)
        except KubeError as exc:
            if not self._failing:
                log.warning("placements cancelled on a silent member not recorded: listing MemberClusters: %s", exc)
            self._failing = True
            return False
        self.loaded_from(listed.get("items") or [])
        with self._lock:
            self._listed = []  # read after the start: kept for the next one, not awaited by this process
        return True

    def _add(self, cluster: str, pid: str, at: float) -> None:
        entries = self._entries.setdefault(cluster, {})
        if pid not in entries:
            self._chars[cluster] = self._chars.get(cluster, 2) + len(pid) + _ENTRY_CHARS
        entries[pid] = at
        self._where[pid] = cluster

    def _remove(self, cluster: str, pid: str) -> None:
        entries = self._entries.get(cluster, {})
        if entries.pop(pid, None) is not None:
            self._chars[cluster] -= len(pid) + _ENTRY_CHARS
        self._where.pop(pid, None)

    def _changed(self, cluster: str) -> None:
        self._version[cluster] = self._version.get(cluster, 0) + 1

    def _bound(self, cluster: str) -> None:
        """Keep the member's record within `limit` characters, the oldest entries dropped (said)."""
        entries = self._entries[cluster]
        if self._chars.get(cluster, 2) <= self.limit:
            return
        dropped = []
        for pid in sorted(entries, key=lambda p: (entries[p], p)):
            if self._chars[cluster] <= self.limit:
                break
            self._remove(cluster, pid)
            dropped.append(pid)
        if dropped:
            log.warning("cluster %s: the record of placements cancelled while it was silent is full (%d); the oldest "
                        "%d dropped, e.g. %s: a restart before their end is known leaves their usage ending at the "
                        "cancel", cluster, len(entries), len(dropped), dropped[0])


__all__ = ["ANNOTATION", "MAX_RECORD_CHARS", "KubeSilentCancelStore", "decode", "encode"]
