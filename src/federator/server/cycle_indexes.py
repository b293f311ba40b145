"""What the federator tells the cycle between cycles: the job indexes a plan reads, kept as jobs change.

Why a module of its own: the cycle (server/scheduling.py, `Cycles`) plans, computes and commits; what it plans
over is kept between cycles here, by the federator's calls as a job becomes Pending, is placed, rests, ends or
releases its room, and as a member's report changes what fits: the candidates, the active jobs, the parked ones
and the exact pending counts Submit's caps read. Kept in scheduling.py, it made that module 640 lines, a third of
them bookkeeping the three steps only read. `Cycles.__init__` sets what the class body declares.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from federator.model import ClusterCapacity, Job, JobId, Placement
from federator.model.node_room import node_room_grew
from federator.scheduler import Arrival, PlacementRequest
from federator.scheduler.demand import DemandMemory
from federator.server.parking import ANY_MODEL, ParkingLot
from federator.server.pending_counts import PendingCounts
from federator.server.reason_refresh import ReasonRefresh, room_changed
from federator.server.rebalancing import Rebalancer
from federator.server.reservations import KeptReservations

if TYPE_CHECKING:
    from federator.server.federator import Federator

class CycleIndexes:
    """The candidate and active job indexes, parking and the pending counts, as the federator's calls keep them."""

    fed: Federator
    parked: ParkingLot
    refresh: ReasonRefresh
    by_queue: PendingCounts
    by_owner: PendingCounts
    by_delegate: PendingCounts
    _candidates: dict[JobId, None]
    _active: dict[JobId, None]
    _requests: dict[JobId, PlacementRequest]
    _preemptible: dict[str, set[str]]
    memory: DemandMemory
    reserved: KeptReservations
    rebalancer: Rebalancer

    # -- what the federator tells the cycle ----------------------------------------------

    def pending(self, job: Job) -> None:
        """A job is Pending (new, or re-queued): a candidate for the next cycle."""
        self.parked.unpark(job.job_id)
        self._candidates[job.job_id] = None
        self.count_pending(job)
        self.reserved.waiting(job)

    def adopted(self, job: Job) -> None:
        """A Pending job took a placement its member already runs (server/adoption.py): no longer a candidate, as
        after a cycle's commit."""
        self.parked.unpark(job.job_id)
        self._candidates.pop(job.job_id, None)
        self._requests.pop(job.job_id, None)
        self.uncount_pending(job.job_id)
        self.refresh.left(job.job_id)
        self._active[job.job_id] = None
        self._held(job)

    def rest(self, job: Job) -> None:
        """A placed job lost a part and owes its replicas (server/partial.py): a candidate for them. Not a Pending
        job: the pending counts Submit's caps read leave it out."""
        self.parked.unpark(job.job_id)
        self._candidates[job.job_id] = None

    def gone(self, job: Job) -> None:
        """A job ended (it may have been parked): the demand remembers what it asked for."""
        self.parked.unpark(job.job_id)
        self._candidates.pop(job.job_id, None)
        self._requests.pop(job.job_id, None)
        self.uncount_pending(job.job_id)
        self.refresh.left(job.job_id)
        self.memory.add(Arrival.of(job.spec))

    def count_pending(self, job: Job) -> None:
        """The job waits (reserved by intake, re-queued, loaded Pending): its queue's and its owner's counts hold
        it. Idempotent, as is `uncount_pending`."""
        self.by_queue.enter(job)
        self.by_owner.enter(job)
        self.by_delegate.enter(job)

    def uncount_pending(self, job_id: JobId) -> None:
        """The job no longer waits (placed, ended, or its write failed)."""
        self.by_queue.leave(job_id)
        self.by_owner.leave(job_id)
        self.by_delegate.leave(job_id)

    def _held(self, job: Job) -> None:
        if job.spec.preemptible:
            for p in job.placements:
                self._preemptible[p.cluster].add(p.placement_id)

    def released(self, job: Job, placements: list[Placement]) -> None:
        """A job's active placements stopped holding resources: jobs that may fit there now come back."""
        if job.spec.preemptible:
            for p in placements:
                held = self._preemptible.get(p.cluster)
                if held is not None:
                    held.discard(p.placement_id)
                    if not held:
                        del self._preemptible[p.cluster]
        # phases may already say Cancelled: the job held them
        if not placements:
            return
        models: dict[str, str] = {}
        for p in placements:
            cap = self._unbound(p)
            if cap is None:
                models[p.accelerator_model] = self._family(p.cluster, p.accelerator_model)
                continue
            # Its member never reported holding it (refused, or not bound yet): no room came free there, only
            # the federator's reservation of it ends, so the jobs back are those the member's last report
            # holds, as a report brings back (the report bounds the room a cycle sees). Not every job of the
            # model: a refusal brought back most of a backlog each time (docs/benchmarks.md).
            pool = cap.pool(p.accelerator_model) if p.accelerator_model else None
            if pool is not None:
                self._unpark(self.parked.pool_changed(pool, cap))
            self._unpark(self.parked.host_changed(cap))
        for model, family in models.items():
            self._unpark(self.parked.model_changed(model, family))
        self._unpark(self.parked.queue_released(job.spec.queue))  # quota and fair share: its usage did end

    def _unbound(self, p: Placement) -> ClusterCapacity | None:
        """The last report of a placement's cluster when that report does not list the placement (its room was
        the federator's reservation only), on a cluster running no preemptible work (where a job may fit by
        stopping work, which room does not show); else None."""
        rec = self.fed.clusters.get(p.cluster)
        cap = rec.capacity if rec is not None else None
        if cap is None or p.placement_id in cap.placement_ids or p.cluster in self._preemptible:
            return None
        if p.accelerator_model and cap.pool(p.accelerator_model) is None:
            return None  # its pool is gone from the report: judge as before
        return cap

    def _family(self, cluster: str, accelerator_model: str) -> str:
        """The catalog family of a cluster's pool of this model, as its agent last reported it ("" if none)."""
        rec = self.fed.clusters.get(cluster)
        pools = rec.capacity.accelerator_pools if rec is not None and rec.capacity is not None else ()
        return next((p.family for p in pools if p.accelerator_model == accelerator_model), "")

    def capacity_changed(self, pools: Iterable[tuple[str, str]] = (), *, everything: bool = False) -> None:
        """A cluster's report differs from its last one in these pools ((model, family) pairs), or a cluster
        became Ready, or the policy changed (`everything`)."""
        if everything:
            self._unpark(self.parked.clear())
            return
        for model, family in pools:
            self._unpark(self.parked.model_changed(model, family))

    def reported(self, cluster: str, previous: ClusterCapacity | None, capacity: ClusterCapacity) -> None:
        """A cluster reported: bring back the parked jobs that may fit there now; a report like the last brings
        back none.

        A pool that changed brings back the jobs that take its model (or any) and whose need it now holds; more
        CPU or memory free, or a workload kind's controller, does the same for every pool of the cluster and
        for CPU-only work (parking.py). Members report every few seconds and their pools and CPU free move
        with every pod, so bringing back every job that might use the cluster would leave nothing parked on a
        busy fleet: a job pinned to Ascend910B waiting through every NVIDIA cluster's churn, an 8 x 8 gang
        through every one-GPU job's end. A cluster running preemptible work brings back every job of a
        changed pool's model, as a placement's end does: a job may fit there by stopping that work."""
        if previous is None:
            self.rebalancer.tried.clear()  # a cluster (back) in the fleet: the moves no room was found for may fit
            self.capacity_changed(everything=True)
            return
        if room_changed(previous, capacity):
            self.refresh.cluster_changed(cluster)
        host = bool(capacity.workload_kinds - previous.workload_kinds
                    or capacity.cpu_milli_free > previous.cpu_milli_free
                    or capacity.memory_bytes_free > previous.memory_bytes_free
                    or capacity.node_cpu_milli_free_max > previous.node_cpu_milli_free_max
                    or capacity.node_memory_bytes_free_max > previous.node_memory_bytes_free_max
                    or node_room_grew(previous.node_room, capacity.node_room))
        before = {p.accelerator_model: p for p in previous.accelerator_pools}
        changed = [p for p in capacity.accelerator_pools if host or before.get(p.accelerator_model) != p]
        if cluster in self._preemptible:
            self.capacity_changed([(p.accelerator_model, p.family) for p in changed]
                                  + ([(ANY_MODEL, "")] if host else []))
            return
        for p in changed:
            self._unpark(self.parked.pool_changed(p, capacity))
            old = before.get(p.accelerator_model)
            if old is not None and p.quota_held_accelerators < old.quota_held_accelerators:
                # The member's own queue holds back less (its quota raised): every waiting job of this model
                # whose reason blamed that quota is looked at again, fit or not, so its reason is true again.
                self.capacity_changed([(p.accelerator_model, p.family)])
        if host:
            self._unpark(self.parked.host_changed(capacity))

    def _unpark(self, ids: set[JobId]) -> None:
        for job_id in ids:
            self._candidates[job_id] = None

    @property
    def pending_count(self) -> int:
        """Pending jobs, parked or not (an upper bound: ended jobs leave the candidates lazily)."""
        return len(self._candidates) + len(self.parked)


__all__ = ["CycleIndexes"]
