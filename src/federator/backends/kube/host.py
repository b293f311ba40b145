"""Kubernetes mode of the federator process: the host cluster as store, controller and lock.

The order matters. A replica first waits for the Lease (a standby serves
nothing: no gRPC, so agents and clients only ever reach the leader), then loads
every job from the FederatedJobs' status, then starts the controllers (Queues
first, so their quotas hold before any FederatedJob is submitted). When it
loses the Lease it stops at once, and the process exits non-zero so its
supervisor restarts it as a standby.

Losing the Lease also fences every write (fencing.py): from the moment this
replica's own clock says the Lease may be lost, the store, its Events and its
status fields send nothing, and the stop path drops what was queued instead of
flushing it; a status write refused for an object written since (its
resourceVersion) makes the replica step down unless the Lease is still its own.

It renews the Lease from the moment it has it (`prepare`), not from the end of
`start`: loading the jobs and listing the Queues, FederatedJobs and
MemberClusters take seconds on a big or busy host, and a leader that had not
renewed by its renew deadline stepped down as soon as it had started (seen on
the test bed: 3 s of start at --renew-deadline 3; with the defaults, a start
over 10 s made every new leader step down in turn), while past the lease
duration a standby could take the Lease under a replica still starting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from federator.backends.kube.api import KubeApi, KubeError
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.cordons import KubeCordonStore
from federator.backends.kube.events import EventRecorder
from federator.backends.kube.fencing import Fence
from federator.backends.kube.leader import LeaderElector, LeaseConfig
from federator.backends.kube.move_times import KubeMoveStore
from federator.backends.kube.namespace_gate import HostNamespaces
from federator.backends.kube.options import KubeOptions
from federator.backends.kube.quarantines import KubeQuarantineStore
from federator.backends.kube.queue_controller import QueueController
from federator.backends.kube.reservation_clocks import KubeReservationClockStore
from federator.backends.kube.silent_cancels import KubeSilentCancelStore
from federator.backends.kube.store import KubeJobStore
from federator.security.audit import AuditLog
from federator.security.authz import Authorizer
from federator.server.federator import Federator

log = logging.getLogger("federator.kube")


class KubeMode:
    def __init__(self, opts: KubeOptions, api: KubeApi, elector: LeaderElector | None) -> None:
        self.opts = opts
        self.api = api
        self.elector = elector
        self.fence = Fence(elector)  # whether this replica may still write (fencing.py)
        events = EventRecorder(api, instance=opts.identity)
        events.fence = self.fence
        self.store = KubeJobStore(api, namespace=opts.namespace, events=events, fence=self.fence)
        self.reservation_clocks = KubeReservationClockStore(self.store)  # in the gangs' FederatedJob status
        self.moves = KubeMoveStore(self.store)  # when each job last moved, in its FederatedJob status
        # The ends awaited of placements cancelled on a silent member, on its MemberCluster (silent_cancels.py):
        # attached by the controller once it restored the members from its listing at start.
        self.silent = KubeSilentCancelStore(api)
        self.controller: FederatedJobController | None = None
        self.queues: QueueController | None = None
        self.lost = False
        self._renewals: asyncio.Task[None] | None = None

    @classmethod
    async def prepare(cls, opts: KubeOptions) -> KubeMode:
        try:
            api = await asyncio.to_thread(KubeApi.connect, opts.kubeconfig)
        except KubeError as exc:
            raise SystemExit(f"federator serve: --kubeconfig: {exc}") from exc
        elector = None
        if opts.leader_elect:
            try:
                cfg = LeaseConfig(namespace=opts.lease_namespace, name=opts.lease_name, identity=opts.identity,
                                  lease_duration=opts.lease_duration, renew_deadline=opts.renew_deadline,
                                  retry_period=opts.retry_period)
            except ValueError as exc:
                raise SystemExit(f"federator serve: {exc}") from exc
            elector = LeaderElector(api, cfg)
            await elector.acquire()
        mode = cls(opts, api, elector)
        if elector is not None:  # renewed while the federator starts (module docstring); `start` watches it
            mode._renewals = asyncio.get_running_loop().create_task(elector.renew())
        return mode

    def namespace_gate(self, authz: Authorizer) -> HostNamespaces:
        """What gRPC Submits may do to host namespaces (namespace_gate.py): the Queues' namespaceSelectors, and
        never kube-* nor the federator's own namespace."""
        return HostNamespaces(self.api, authz, own=self.opts.own_namespaces())

    async def start(self, fed: Federator, *, on_lost: Callable[[], None], authz: Authorizer | None = None,
                    audit: AuditLog | None = None) -> None:
        # Queues first: jobs are submitted (and scheduled) only once the Queue objects' quotas are in force.
        self.store.warnings_of = fed.intake.warnings  # a gRPC job's FederatedJob gets its Submit's warnings
        self.queues = QueueController(fed, self.api, status_interval=fed.report_interval, authz=authz, audit=audit,
                                      clock=fed.clock)
        await self.queues.start()
        # Cordons live in the MemberClusters' spec (backends/kube/cordons.py); the controller takes them from the
        # listing it makes at start, before the first cycle, and reads them again every few seconds.
        fed.cordons.attach(KubeCordonStore(self.api, clock=fed.clock), load=False)
        # Quarantines are kept in a MemberCluster annotation (backends/kube/quarantines.py), read from that listing.
        fed.early.quarantine.attach(KubeQuarantineStore(self.api), now=fed.clock(), load=False)
        self.controller = FederatedJobController(fed, self.api, self.store, namespace=self.opts.namespace,
                                                 member_interval=fed.report_interval, authz=authz, audit=audit,
                                                 clock=fed.clock, silent=self.silent)
        await self.controller.start()
        if self._renewals is not None:  # lost already while starting: the callback comes at once
            self._renewals.add_done_callback(lambda task: self._lease_ended(task, on_lost))
        loop = asyncio.get_running_loop()
        # a status write that found the Lease another's (store.py, from a writer thread): stop, as a lost renewal does
        def deposed() -> None:
            loop.call_soon_threadsafe(self._deposed, on_lost)

        self.fence.on_lost = deposed

    def _deposed(self, on_lost: Callable[[], None]) -> None:
        self.lost = True
        on_lost()

    def _lease_ended(self, task: asyncio.Task[None], on_lost: Callable[[], None]) -> None:
        """The renewals ended: the Lease is lost (`renew` returned, or failed), unless `stop` cancelled them."""
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            log.error("leader election: renewing the Lease failed; stepping down", exc_info=exc)
        self.lost = True
        on_lost()

    async def stop(self, *, release: bool = True) -> None:
        """Stop the controllers and write what is due while this replica holds the Lease; then give the Lease up,
        unless `release` is False: serve then writes its queued jobs (the group commit) and calls `release` after
        them, renewing meanwhile, so that no write of this replica's lands after a standby took over."""
        if release and self._renewals is not None:
            self._renewals.cancel()
        if self.controller is not None:
            await self.controller.stop()
        if self.queues is not None:
            await self.queues.stop()
        # Written only while this replica still holds the Lease (a SIGTERM); after a lost one the store and the
        # status fields drop what is due instead (fencing.py), and the MemberClusters are not written.
        await asyncio.to_thread(self.store.flush)
        await asyncio.to_thread(self.reservation_clocks.flush)
        await asyncio.to_thread(self.moves.flush)
        if self.controller is not None and self.fence.holds():
            await asyncio.to_thread(self.silent.flush, self.controller.recreate())
        if release:
            await self.release()

    async def release(self) -> None:
        """Renew no more and give the Lease up (unless lost), after this replica's last write."""
        if self._renewals is not None:
            self._renewals.cancel()
        if self.elector is not None and not self.lost:
            await asyncio.to_thread(self.elector.release)


__all__ = ["KubeMode"]
