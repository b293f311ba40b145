"""Stopping a placement: the federator's cancel, and the stops of the agent's own (refused, evicted, lost).

Why a module of its own: every way a placement ends here before its workload finished goes the same path, and
the path has an order that matters. The stop is said first (its Event and count, stops.py, while its workload
can still be named), then the placement is forgotten by every guard (launched, faults, the gang's clocks) and
reported Cancelled, so the federator queues the job again at once; only then are its objects deleted, in a task,
and a delete the API server does not take is retried in the background until it is (the stream to the federator
is never held for it). What decides that a placement stops is elsewhere: the gang timeout and the member's
disruptions (placement_phases.py), the federator (`cancel`).
"""

from __future__ import annotations

import asyncio
import logging

from federator.backends.kube.api import SERVICES, KubeError
from federator.backends.kube.kinds import resource_of
from federator.backends.kube.placement_state import PlacementState, names_of
from federator.backends.kube.stops import StopReason
from federator.backends.kube.workloads.registry import BATCH_JOB
from federator.model import JobPhase

log = logging.getLogger("federator.agent.kube")


class PlacementStops(PlacementState):
    """Ends a placement here: says why, reports it Cancelled, deletes its objects until they are gone."""

    async def cancel(self, placement_id: str) -> None:
        known = placement_id in self._phases or placement_id in self._launched
        phase = self._phases.get(placement_id, (JobPhase.PLACED, ""))[0]
        if known and not phase.is_terminal and placement_id not in self._cancelled:
            self._notice(StopReason.CANCELLED, placement_id, "cancelled by the federator: deleting its workload")
        self._cancelled.add(placement_id)
        self._launched.pop(placement_id, None)
        self._faults.pop(placement_id, None)
        self._pods_read.pop(placement_id, None)
        self.gang.forget(placement_id)
        try:
            await self._delete(placement_id)
        except KubeError as exc:  # keep the stream alive; delete in the background until it works
            log.warning("deleting the workload of %s failed (%s); retrying in the background", placement_id, exc)
            task = asyncio.get_running_loop().create_task(self._delete_until_done(placement_id))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
        if known and not phase.is_terminal:
            self._report(placement_id, JobPhase.CANCELLED, "cancelled: workload deleted")

    async def _delete(self, placement_id: str) -> None:
        namespace = self.tenants.namespace_of(placement_id)  # read once: the watch may forget it meanwhile
        for adapter in list(self.served.values()):
            for name in names_of(adapter, placement_id):
                await asyncio.to_thread(self.api.delete, resource_of(adapter), name, namespace,
                                        propagation="Background")
        for name in names_of(BATCH_JOB, placement_id):  # a batch Job's rendezvous Service has the Job's name
            await asyncio.to_thread(self.api.delete, SERVICES, name, namespace, propagation="Background")
        await self.dra.delete_template(placement_id, namespace)

    async def _delete_until_done(self, placement_id: str) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                await self._delete(placement_id)
                log.info("deleted the workload of cancelled placement %s", placement_id)
                return
            except KubeError as exc:
                delay = min(delay * 2, 30.0)
                log.warning("deleting the workload of %s failed again (%s)", placement_id, exc)

    def _refuse(self, pid: str, why: str, reason: StopReason = StopReason.GANG_TIMEOUT) -> asyncio.Task[None]:
        """Report a placement stopped here, saying why, now, and delete its objects (its pods go with them)
        in a task, returned for a caller that can wait for it (a failed delete is retried in another, as
        `cancel` does)."""
        log.warning("placement %s: %s", pid, why)
        return self._stop(pid, f"refused: {why}", reason)

    def _stop(self, pid: str, why: str, reason: StopReason) -> asyncio.Task[None]:
        """Report a placement stopped by this cluster (Cancelled: the federator queues the job again), and delete
        its objects in a task (`_refuse`), after its Event and count (stops.py)."""
        self._notice(reason, pid, why)
        self._cancelled.add(pid)
        self._launched.pop(pid, None)
        self._faults.pop(pid, None)
        self._pods_read.pop(pid, None)
        self.gang.forget(pid)
        self._report(pid, JobPhase.CANCELLED, why)
        return self._background(self._delete_or_retry(pid))

    def _fail(self, pid: str, why: str) -> asyncio.Task[None]:
        """Report a placement Failed now, in `why`, and delete its objects in a task: an elastic gang that crashed
        as a whole at its start (elastic_crash.py), whose Job would otherwise retry its pods for minutes. Failed,
        not Cancelled: the federator's early-failure rule decides what follows, as for a gang's own failure."""
        log.warning("placement %s: failed: %s", pid, why)
        self._cancelled.add(pid)
        self._launched.pop(pid, None)
        self._faults.pop(pid, None)
        self._pods_read.pop(pid, None)
        self.gang.forget(pid)
        self._report(pid, JobPhase.FAILED, why)
        return self._background(self._delete_or_retry(pid))

    async def _delete_or_retry(self, pid: str) -> None:
        try:
            await self._delete(pid)
        except KubeError as exc:  # keep going; delete in the background until it works
            log.warning("deleting the workload of %s failed (%s); retrying in the background", pid, exc)
            self._background(self._delete_until_done(pid))

    def _notice(self, reason: StopReason, pid: str, why: str) -> None:
        """The Event and the count of a stop of the agent's own (stops.py), before its workload is deleted."""
        self.stops.stopped(reason, pid, why, workload=self._workload(pid), namespace=self.tenants.namespace_of(pid))
