"""The MemberCluster objects of the host cluster: the federator's cluster registry mirrored, and read back.

Why a module of its own: the FederatedJob controller (controller.py) reconciles jobs; the MemberClusters are the
other half of what a federator keeps in its host cluster, on their own loop (`run`, every `member_interval`), which
also flushes what other stores owe the API server (job statuses, reservation clocks, last move times, the cancels a
member has not confirmed, the ends awaited of silent cancels) and reads the operators' cordons back.

MemberCluster objects mirror the federator's cluster registry, and are never deleted by the federator: a Lost
cluster's object is its history. An operator may `kubectl delete mc` a Lost one; it is not recreated unless its
agent connects again. A federator that starts (or becomes leader) adopts the MemberClusters its registry does not
know as Partitioned (Lost if they were), so an object never claims Ready for a cluster no federator hears from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from federator.backends.kube.api import MEMBER_CLUSTERS, ConflictError, KubeApi, KubeError, NotFoundError, Obj
from federator.backends.kube.cancel_records import KubeCancelRecords
from federator.backends.kube.cordons import KubeCordonStore
from federator.backends.kube.member_status import member_status, restore_member
from federator.backends.kube.move_times import KubeMoveStore
from federator.backends.kube.quarantines import KubeQuarantineStore, held_in
from federator.backends.kube.reservation_clocks import KubeReservationClockStore
from federator.backends.kube.resources import member_cluster, member_event, parse_timestamp
from federator.backends.kube.silent_cancels import KubeSilentCancelStore
from federator.model import ClusterState
from federator.server.cluster_regions import admin_record, placed_elsewhere
from federator.server.region_mismatch import CONDITION, RegionMismatch
from federator.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from federator.backends.kube.store import KubeJobStore
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator

log = logging.getLogger("federator.kube.controller")
CORDON_READ_SECONDS = 5.0  # MemberClusters' cordons are read back at most this often (backends/kube/cordons.py)


class MemberClusters:
    """The MemberCluster writer: the registry's clusters written, the objects' records read at a start."""

    def __init__(self, fed: Federator, api: KubeApi, store: KubeJobStore, *, interval: float,
                 clock: Callable[[], float], silent: KubeSilentCancelStore | None = None) -> None:
        self.fed = fed
        self.api = api
        self.store = store
        self.interval = interval
        self.clock = clock
        self.cancels = KubeCancelRecords(api, fed.orphans.cancels)  # cancels not confirmed, on MemberClusters
        self.silent = silent  # ends awaited of placements cancelled on a silent member, on MemberClusters
        self._written: dict[str, tuple[Obj, float]] = {}
        self._cordons_read = float("-inf")  # when the MemberClusters' cordons were last read (read_cordons)
        self._mismatch_said: dict[str, RegionMismatch] = {}  # the RegionMismatch each cluster's Event said

    async def run(self) -> None:
        while True:
            try:
                await self.write()
                await self.cancels.flush(self.fed.orphans.cancels.unwritten(), recreate=self.recreate())
                if self.silent is not None and self.silent.due:  # ends awaited of silent cancels
                    await asyncio.to_thread(self.silent.flush, self.recreate())
                await asyncio.to_thread(self.store.flush)
                if isinstance(clocks := self.fed.cycles.reserved.store, KubeReservationClockStore):
                    await asyncio.to_thread(clocks.flush)
                if isinstance(moved := self.fed.cycles.rebalancer.store, KubeMoveStore):  # last move times
                    await asyncio.to_thread(moved.flush)
                await self.read_cordons()
            except Exception:  # a failed round is retried on the next
                log.exception("writing MemberClusters failed")
            await asyncio.sleep(self.interval)

    async def flush_cancels(self, clusters: list[str]) -> None:
        """The record of cancels of these clusters (and any other owed) written to their MemberClusters; the ends
        awaited of silent cancels too, best effort (a failed write is tried again by the loop)."""
        await self.cancels.flush(clusters + self.fed.orphans.cancels.unwritten(), recreate=self.recreate())
        if self.silent is not None and self.silent.due:
            await asyncio.to_thread(self.silent.flush, self.recreate())

    def recreate(self) -> dict[str, bool]:
        """Whether a missing MemberCluster is made again, per cluster (as `write` decides)."""
        return {name: rec.connected or rec.state is not ClusterState.LOST for name, rec in self.fed.clusters.items()}

    async def read_cordons(self, *, every: float = CORDON_READ_SECONDS) -> None:
        """Take the cordons the MemberClusters' specs hold (backends/kube/cordons.py), at most every `every`
        seconds: an operator's `kubectl patch mc` holds within that."""
        store, now = self.fed.cordons.store, self.clock()
        if not isinstance(store, KubeCordonStore) or now - self._cordons_read < every:
            return
        self._cordons_read = now
        read_at = self.fed.cordons.changes
        try:
            current = await asyncio.to_thread(store.load, self.fed.cordons.held())
        except StoreUnavailable as exc:
            log.warning("cordons not read: %s", exc)
            return
        self.fed.cordons.sync(current, read_at=read_at)

    async def adopt(self) -> None:
        """MemberClusters the registry does not know (their agent has not connected to this federator yet)
        enter it Partitioned, or Lost if they were, and age to Lost like any cluster that is away. The cancels
        each one's record holds are read (cancel_records.py), the cordons their specs hold (cordons.py) and the
        quarantines their annotations keep (quarantines.py); once the members are restored, the ends awaited of
        placements cancelled while their member was silent (silent_cancels.py) are attached from that listing."""
        try:
            listed = await asyncio.to_thread(self.api.list, MEMBER_CLUSTERS)
        except KubeError as exc:
            log.warning("listing MemberClusters failed: %s; only connected clusters are shown", exc)
            if self.silent is not None:  # kept from now on (its first write reads the records first)
                self.fed.silent_cancels.attach(self.silent, now=self.clock())
            return
        self.cancels.loaded_from(listed.get("items") or [])  # before any deletion is reconciled
        store = self.fed.cordons.store
        if isinstance(store, KubeCordonStore):  # the cordons hold from the first cycle (read_cordons: then on)
            self.fed.cordons.sync(store.held_in(listed.get("items") or [], self.fed.cordons.held()),
                                  read_at=self.fed.cordons.changes)
            self._cordons_read = self.clock()
        if isinstance(self.fed.early.quarantine.store, KubeQuarantineStore):  # in force from the first cycle
            self.fed.early.quarantine.restore(held_in(listed.get("items") or []), self.clock())
        self.fed.orphans.resend_kept()  # the cancels just read, to the agents already connected
        for obj in listed.get("items") or []:
            name = str((obj.get("metadata") or {}).get("name", ""))
            spec, status = obj.get("spec") or {}, obj.get("status") or {}
            if name in self.fed.clusters:  # its agent connected first (gRPC serves before this): the Resizes owed
                restore_member(self.fed.clusters[name], status)
                admin_record(self.fed, self.fed.clusters[name], str(spec.get("region", "")))  # the record's wins
                continue
            if not name or (not spec.get("region") and not status):  # made by a cordon before its agent connected
                continue
            lost = status.get("state") == ClusterState.LOST.value
            self.fed.expect_cluster(name, region=str(spec.get("region", "")),
                                    labels={str(k): str(v) for k, v in (spec.get("labels") or {}).items()},
                                    lost=lost, last_report_at=parse_timestamp(status.get("lastReportTime")))
            restore_member(self.fed.clusters[name], status)  # features, notAfter, Resizes owed, Lost time
            placed_elsewhere(self.fed, name, str(spec.get("region", "")))  # re-regioned while this was away: said
            log.info("MemberCluster %s: its agent has not connected to this federator yet; %s", name,
                     "Lost" if lost else "Partitioned until it does")
        if self.silent is not None:  # after the members: an entry of a member Lost meanwhile ends at its last report
            self.silent.loaded_from(listed.get("items") or [])
            self.fed.silent_cancels.attach(self.silent, now=self.clock())

    async def write(self, *, refresh_after: float = 30.0) -> None:
        """Mirror the cluster registry; a status that did not change is rewritten only every refresh_after.

        A Lost cluster whose object an operator deleted is forgotten (server/leases.py); the object of a
        cluster the federator forgot by itself (--forget-lost-after) is deleted, so the two never disagree."""
        now = self.clock()
        for rec in list(self.fed.clusters.values()):
            status = member_status(self.fed, rec)  # what `federator get clusters` says of it (member_status.py)
            comparable = {k: v for k, v in status.items() if k != "lastReportTime"}
            last = self._written.get(rec.name)
            if last is not None and last[0] == comparable and now - last[1] < refresh_after:
                continue
            # A Lost, disconnected cluster's object an operator deleted stays deleted (until its agent is back).
            recreate = rec.connected or rec.state is not ClusterState.LOST
            there = await asyncio.to_thread(self._write_member, rec.name, rec.region, dict(rec.labels), status,
                                            recreate)
            if not there and self.fed.leases.forget(rec.name, "its MemberCluster was deleted"):
                self._written.pop(rec.name, None)
                continue
            self._written[rec.name] = (comparable, now)
            self._say_mismatch(rec, there)
        for name in [n for n in self._written if n not in self.fed.clusters]:
            try:
                await asyncio.to_thread(self.api.delete, MEMBER_CLUSTERS, name)
                log.info("MemberCluster %s deleted: the federator forgot that Lost cluster", name)
            except KubeError as exc:  # tried once: an old Role without delete would log this every round
                log.warning("MemberCluster %s: the federator forgot that Lost cluster, but could not delete its "
                            "object (%s); delete it by hand: kubectl delete mc %s", name, exc, name)
            del self._written[name]

    def _say_mismatch(self, rec: ClusterRecord, uid: str) -> None:
        """One Warning Event (reason RegionMismatch) on the cluster's MemberCluster when its spec.region and the
        region its certificate or trust file binds start to disagree (server/region_mismatch.py); the condition
        holds meanwhile, and the agent's refusals say nothing more here."""
        found = rec.region_mismatch
        if found is None:
            self._mismatch_said.pop(rec.name, None)
            return
        if self._mismatch_said.get(rec.name) == found or self.store.events is None or not uid:
            return
        self._mismatch_said[rec.name] = found
        self.store.events.record(member_event(rec.name, uid, reason=CONDITION, message=found.message(kube=True),
                                              now=self.clock(), instance=self.store.events.instance))

    def _write_member(self, name: str, region: str, labels: dict[str, str], status: dict[str, Any],
                      recreate: bool = True) -> str:
        """Write the object and its status: its uid ("" when it is gone and `recreate` is False)."""
        try:
            written = self.api.patch(MEMBER_CLUSTERS, name, {"spec": {"region": region, "labels": labels}})
        except NotFoundError:
            if not recreate:
                return ""
            try:
                written = self.api.create(MEMBER_CLUSTERS, member_cluster(name, region=region, labels=labels))
            except ConflictError:
                written = self.api.get(MEMBER_CLUSTERS, name)
        try:
            self.api.patch(MEMBER_CLUSTERS, name, {"status": status}, subresource="status")
        except KubeError as exc:
            log.warning("MemberCluster %s: status not written: %s", name, exc)
        return str((written.get("metadata") or {}).get("uid") or "?")


__all__ = ["CORDON_READ_SECONDS", "MemberClusters"]
