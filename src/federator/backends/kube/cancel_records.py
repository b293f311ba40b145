"""The cancels a member has not confirmed, kept durable on its MemberCluster (server/unconfirmed_cancels.py says why).

Where: the annotation `federator.io/unconfirmed-cancels` of the cluster's MemberCluster, which the federator owns
and writes already (no new object, no new RBAC), holding `{"PLACEMENT_ID": SECONDS, ...}`:

    kubectl get mc member-a -o jsonpath='{.metadata.annotations.federator\\.io/unconfirmed-cancels}'

An annotation rather than a status field: Helm never upgrades CRDs, and a MemberCluster CRD older than the field
would prune it without a word; an annotation holds on any CRD. It goes with the object: a cluster forgotten (its
object deleted) takes its record along.

When: a FederatedJob being deleted keeps its finalizer until its job's placements are in the record
(backends/kube/deletions.py), so `kubectl delete` returns at once, however long the agent is away, and no
federator restart loses the cancel. Confirmations are written by the controller's MemberCluster loop. Writes of one
cluster are serialized and coalesced (one write carries every change made before it), each writes the whole
record, and none is made before the records were read (it would replace what they hold).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from federator.backends.kube.api import MEMBER_CLUSTERS, KubeApi, KubeError
from federator.backends.kube.member_annotations import decoded, write
from federator.server.unconfirmed_cancels import UnconfirmedCancels, decode, encode
from federator.store.errors import StoreUnavailable

log = logging.getLogger("federator.kube.cancels")
ANNOTATION = "federator.io/unconfirmed-cancels"


def records_of(members: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """The records the listed MemberClusters hold; one that cannot be read is said and skipped (its placements
    are then orphans to this federator, as before the record existed)."""
    return decoded(members, ANNOTATION, decode, "a record of cancels")


class KubeCancelRecords:
    """Writes `book` to the MemberClusters' annotations, and reads it back."""

    def __init__(self, api: KubeApi, book: UnconfirmedCancels) -> None:
        self.api = api
        self.book = book
        self._locks: dict[str, asyncio.Lock] = {}

    def loaded_from(self, members: Iterable[Mapping[str, Any]]) -> None:
        """The records of a MemberCluster listing (the controller's, at start)."""
        records = records_of(members)
        self.book.merge(records)
        if records:
            log.info("cancels not confirmed yet, read from the MemberClusters: %s",
                     ", ".join(f"{c} {len(e)}" for c, e in sorted(records.items())))

    async def flush(self, clusters: Iterable[str], *, recreate: Mapping[str, bool]) -> None:
        """Make the records of `clusters` durable as they are now. `recreate`: per cluster, whether a missing
        MemberCluster is made again for it (as the controller's own writes do). StoreUnavailable: not written."""
        if not self.book.loaded:
            try:
                listed = await asyncio.to_thread(self.api.list, MEMBER_CLUSTERS)
            except KubeError as exc:
                raise StoreUnavailable(f"listing MemberClusters: {exc}") from exc
            self.loaded_from(listed.get("items") or [])
        for cluster in sorted(set(clusters)):
            async with self._locks.setdefault(cluster, asyncio.Lock()):
                if not self.book.dirty(cluster):
                    continue  # a write made since carried this change
                version, entries = self.book.version(cluster), self.book.entries(cluster)
                await asyncio.to_thread(self._write, cluster, entries, recreate.get(cluster, False))
                self.book.written(cluster, version)

    def _write(self, cluster: str, entries: dict[str, float], recreate: bool) -> None:
        write(self.api, cluster, ANNOTATION, encode(entries) if entries else None, recreate=recreate,
              failed="cancels not recorded")


__all__ = ["ANNOTATION", "KubeCancelRecords", "records_of"]
