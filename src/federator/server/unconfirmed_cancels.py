"""Cancels that a member cluster has not confirmed yet: a bounded record per cluster.

Why: in Kubernetes mode a job's only record is its FederatedJob. Deleted while its member's agent was away, the
job's cancel could not reach the member; the finalizer went, the object and the record with it, and a federator
that restarted (an upgrade, a drain, a failover) before the agent was back knew nothing of the job: what the agent
reported was an orphan, its 16 GPUs held for --orphan-grace and paged as a store restored from an old backup
(outside QA F7). This book keeps, per cluster, the placements whose cancel the member has not confirmed;
backends/kube/cancel_records.py makes it durable (an annotation on the cluster's MemberCluster) before the
finalizer goes, and loads it at start, so a placement in it is cancelled at once when the agent names it
(server/orphans.py), never held. Any other cancel that could not be sent, its agent being away, is recorded too
(Orphans.unsent): a job moved off a Lost cluster keeps no record of the copy it left there, and deleted before that
cluster is back, it would have left the copy an orphan.

A placement leaves the record when its member confirms: a JobUpdate with a final phase, or the re-sync of a session
that did not name it (the agent names every placement it holds before the report that closes a re-sync, so one it
did not name it does not hold); or when the cluster is forgotten. The record of a cluster is bounded
(`MAX_RECORD_CHARS` of text): past it the oldest entries go first (the caller says so in a WARNING), and such a
placement, if its member still runs it after a federator restart, is an orphan again (held, then cancelled).

Pure: no I/O. Each change bumps the cluster's version; the store writes `entries` and then calls `written`.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

MAX_RECORD_CHARS = 128 * 1024  # of one cluster's record: an annotation's half of the 256 KiB all may hold
_ENTRY_CHARS = 14  # "ID":1733390000, around each id in the encoded record


def encode(entries: Mapping[str, float]) -> str:
    """`{"ID":SECONDS,...}`, oldest first: what the record holds, readable with kubectl."""
    return json.dumps({pid: int(at) for pid, at in entries.items()}, separators=(",", ":"))


def decode(text: str) -> dict[str, float]:
    """The entries of an encoded record; ValueError for text that is not one."""
    value = json.loads(text)
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) for k, v in value.items()):
        raise ValueError("not an object of placement ids to times")
    return {k: float(v) for k, v in value.items()}


def _chars(placement_id: str) -> int:
    return len(placement_id) + _ENTRY_CHARS


class UnconfirmedCancels:
    """The placements of each cluster whose cancel its member has not confirmed, oldest first."""

    def __init__(self, *, limit: int = MAX_RECORD_CHARS,
                 on_count: Callable[[str, int], None] = lambda cluster, count: None) -> None:
        self.limit = limit
        self.on_count = on_count  # a cluster's count changed (the metric)
        self.loaded = False  # the durable records were read: until then a write would replace what they hold
        self._entries: dict[str, OrderedDict[str, float]] = {}
        self._chars: dict[str, int] = {}
        self._version: dict[str, int] = {}
        self._written: dict[str, int] = {}
        self._held: dict[str, tuple[int, set[str]]] = {}  # cluster -> (session, recorded ids it named as held)
        self._resynced: dict[str, int] = {}  # cluster -> the session whose re-sync confirmed what it did not name

    def record(self, cluster: str, placement_ids: Iterable[str], *, now: float) -> list[str]:
        """Add placements (one already there keeps its place); the oldest ones dropped to stay in the bound."""
        entries = self._entries.setdefault(cluster, OrderedDict())
        added = False
        for pid in placement_ids:
            if pid not in entries:
                entries[pid] = now
                self._chars[cluster] = self._chars.get(cluster, 2) + _chars(pid)
                added = True
        dropped: list[str] = []
        while self._chars.get(cluster, 2) > self.limit and entries:
            pid, _ = entries.popitem(last=False)
            self._chars[cluster] -= _chars(pid)
            dropped.append(pid)
        if added or dropped:
            self._changed(cluster)
        return dropped

    def holds(self, cluster: str, placement_id: str) -> bool:
        return placement_id in self._entries.get(cluster, ())

    def heard(self, cluster: str, placement_id: str, *, ended: bool, session: int) -> bool:
        """A JobUpdate of `cluster`'s agent: a recorded placement that ended is confirmed, one it holds is kept for
        this session's re-sync. Whether the placement was recorded."""
        if not self.holds(cluster, placement_id):
            return False
        if ended:
            self._drop(cluster, [placement_id])
        else:
            held = self._held.get(cluster)
            if held is None or held[0] != session:
                held = self._held[cluster] = (session, set())
            held[1].add(placement_id)
        return True

    def resynced(self, cluster: str, *, session: int, listed: Iterable[str]) -> None:
        """A report of `cluster`: the first of a session closes its re-sync, and confirms every recorded placement
        the agent named neither in it nor in an update of this session. Later reports change nothing here (they
        list only placements whose pods are bound, so an absence there says nothing)."""
        if self._resynced.get(cluster) == session:
            return
        self._resynced[cluster] = session
        held = self._held.pop(cluster, (session, set()))
        named = (held[1] if held[0] == session else set()) | set(listed)
        self._drop(cluster, [pid for pid in self._entries.get(cluster, ()) if pid not in named])

    def forget(self, cluster: str) -> None:
        """A cluster forgotten: its record goes with its MemberCluster."""
        for book in (self._entries, self._chars, self._version, self._written, self._held, self._resynced):
            book.pop(cluster, None)  # type: ignore[attr-defined]

    def merge(self, records: Mapping[str, Mapping[str, float]]) -> None:
        """The durable records, read at start, joined with what this federator recorded before (none, usually):
        oldest first, within the bound."""
        for cluster, stored in records.items():
            mine = self._entries.pop(cluster, OrderedDict())
            self._chars[cluster] = 2
            joined = OrderedDict(sorted(stored.items(), key=lambda item: item[1]))
            joined.update((pid, at) for pid, at in mine.items() if pid not in joined)
            self._entries[cluster] = OrderedDict()
            for pid, at in joined.items():
                self.record(cluster, [pid], now=at)
            if not mine:
                self._written[cluster] = self._version.get(cluster, 0)  # as stored: nothing to write back
        self.loaded = True

    def entries(self, cluster: str) -> dict[str, float]:
        return dict(self._entries.get(cluster, {}))

    def count(self, cluster: str) -> int:
        return len(self._entries.get(cluster, ()))

    def clusters(self) -> list[str]:
        return sorted(self._entries)

    def version(self, cluster: str) -> int:
        return self._version.get(cluster, 0)

    def dirty(self, cluster: str) -> bool:
        """Whether the record of `cluster` changed since it was last written."""
        return self._written.get(cluster, 0) != self._version.get(cluster, 0)

    def unwritten(self) -> list[str]:
        """The clusters whose record changed since it was last written."""
        return sorted(c for c, v in self._version.items() if self._written.get(c, 0) != v)

    def written(self, cluster: str, version: int) -> None:
        """The record of `cluster` as of `version` is durable."""
        if cluster in self._version:
            self._written[cluster] = max(self._written.get(cluster, 0), version)

    def _drop(self, cluster: str, placement_ids: list[str]) -> None:
        entries = self._entries.get(cluster)
        if not entries or not placement_ids:
            return
        for pid in placement_ids:
            if entries.pop(pid, None) is not None:
                self._chars[cluster] -= _chars(pid)
        self._changed(cluster)

    def _changed(self, cluster: str) -> None:
        self._version[cluster] = self._version.get(cluster, 0) + 1
        self.on_count(cluster, self.count(cluster))


__all__ = ["MAX_RECORD_CHARS", "UnconfirmedCancels", "decode", "encode"]
