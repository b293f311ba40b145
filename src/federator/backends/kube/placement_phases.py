"""Judging a placement's phase: what its workload and pods say, and whether the member has broken its gang.

Why a module of its own: this is where the agent decides what it tells the federator of a placement, and every
informer event (informer_events.py) and the gang watch's tick (gang_watch.py) ends here. `_refresh` reads the
workload's phase (workloads/), then holds it to the agent's rules before anything is reported: a finished placement
stays finished, a phase only moves forward, a gang past its timeout and never whole is refused (gang.py), one the
member refuses to create is refused in the member's words (create_refusals.py), and one the member disrupted (a pod
evicted, a node deleted, a gang that ran whole and broke: gang_health.py) is stopped and queued again, not Failed;
an elastic gang whose replicas all fail at its start is Failed at once, its Job's retries cut short (elastic_crash.py).
A Failed workload is judged on its pods' exit codes, read once when the pod watch did not see them (`_read_pods`).
How a stop is carried out is placement_stops.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from federator.backends.kube.admission import SUSPEND_FIELD, group_kind
from federator.backends.kube.api import PODS, KubeError, Obj
from federator.backends.kube.elastic_crash import crashed_at_start
from federator.backends.kube.gang_health import ReplicaHealth, gang_broken, node_lost, replica_health, unready_note
from federator.backends.kube.placement_state import serves
from federator.backends.kube.placement_stops import PlacementStops
from federator.backends.kube.pod_faults import cause_among, disrupted_job, ended_by_its_own_rule
from federator.backends.kube.pod_nodes import node_replicas, replica_pods
from federator.backends.kube.silent_nodes import blamed_on_a_silent_node
from federator.backends.kube.stops import StopReason, fault_reason
from federator.backends.kube.workload_ends import workload_ended_at
from federator.backends.kube.workloads import workload_counts, workload_phase
from federator.model import JobPhase

log = logging.getLogger("federator.agent.kube")
_RANK = {JobPhase.PENDING: 0, JobPhase.PLACED: 1, JobPhase.RUNNING: 2, JobPhase.SUCCEEDED: 3, JobPhase.FAILED: 3,
         JobPhase.CANCELLED: 3}


class PlacementPhases(PlacementStops):
    """The phase, counts and nodes of each placement, judged and reported (`_refresh`)."""

    def _refresh(self, pid: str, workload: Obj, pods: list[Mapping[str, Any]] | None = None) -> None:
        """Report the placement's phase as its workload and pods (`pods`: found already, else looked up) say.

        A gang past its timeout and never whole is refused first, whatever phase the change brings."""
        pods = self._pods_of(pid) if pods is None else pods
        last = self._phases.get(pid)
        if last is not None and last[0].is_terminal:
            return  # a finished placement stays finished
        if self._started and (why := self._gang_overdue(pid, workload, pods)):
            self._refuse(pid, why)
            return
        if self._started and (why := self._create_refused(pid, workload, pods)):
            self._refuse(pid, why, StopReason.CREATE_FORBIDDEN)
            return
        health = replica_health(pods, self.nodes.cache, gone=self._nodes_gone)  # a node's key is its name
        if self._started and self._gang_ended(pid, workload, health, last):
            return
        if self._started and pid not in self._cancelled and (why := crashed_at_start(workload, time.time())):
            fault = self._faults.get(pid)
            if (fault is None or fault.deleted) and not self._pods_read.get(pid):
                self._read_pods(pid)  # the first pod's exit code, which the watch of active pods did not see
                return
            self._fail(pid, f"{fault.message}; {why}" if fault is not None and not fault.deleted else why)
            return
        if (workload.get("spec") or {}).get("suspend") and (f := self._faults.get(pid)) is not None and f.deleted:
            del self._faults[pid]  # suspended (Kueue preempted it): that deleted its pods, and it may run again
        phase, message = workload_phase(workload, pods)
        if phase is JobPhase.FAILED and pid not in self._cancelled and not serves(workload):
            fault = self._faults.get(pid)
            if fault is not None and fault.deleted and ended_by_its_own_rule(workload):
                fault = None  # its own deadline deleted its pods: the workload's words say so
            elif (fault is None or fault.deleted) and not disrupted_job(workload) \
                    and not self._pods_read.get(pid) and not ended_by_its_own_rule(workload):
                self._read_pods(pid)  # a replica's exit may have left the pod watch unseen: judged once read
                return
            if disrupted_job(workload) or (fault is not None and fault.disruption):
                # The member stopped it (a drain, a preemption, a node lost), not the user's code: re-queued.
                why = fault.message if fault is not None and fault.disruption else disrupted_job(workload)
                log.warning("placement %s: stopped by the cluster: %s", pid, why)
                self._stop(pid, why, fault_reason(fault) if fault is not None and fault.disruption
                           else StopReason.EVICTED)
                return
            if fault is not None:
                message = fault.message  # the pod and its exit code, not a backoff limit the user never set
        waiting = self.gang.wait_message(workload) if phase is JobPhase.PLACED else ""
        if waiting:
            message = waiting  # Kueue holds it: say why, in Kueue's words
        if pid in self._cancelled:
            phase, message = JobPhase.CANCELLED, "cancelled"
        elif last is not None and _RANK[phase] < _RANK[last[0]]:
            # A placement only moves forward: a service that ran whole and lost a replica (a drained node) stays
            # Running, and so does a gang whose replica finished early or restarts; the message says how many run
            # and why the others wait (a gang that stays broken is ended: `_gang_ended`).
            phase = last[0]
        counts = self._counts_of(pid, workload, pods, health) if phase.is_active else None
        nodes = node_replicas(replica_pods(pods), self._replicas(pid), gone=self._nodes_gone) \
            if phase.is_active and pid not in self._cancelled else ()
        if phase.is_active and pid not in self._cancelled:
            message += unready_note(health)
        if last != (phase, message) or (counts is not None and counts != self._counts.get(pid)) \
                or self.pod_nodes.changed(pid, nodes):
            # A new message alone is news too ("1 of 2 replicas running; 1 pending: ..."), and so is a new count,
            # and a replica bound or moved to another node (JobUpdate.nodes). A final phase says when the member
            # says it ended (workload_ends.py), not when this agent noticed: it may have been paused meanwhile.
            ended_at = workload_ended_at(workload, pods, self._faults.get(pid) if phase is JobPhase.FAILED else None) \
                if phase.is_terminal and pid not in self._cancelled else None
            self._report(pid, phase, message, counts, nodes, ended_at=ended_at)

    def _counts_of(self, pid: str, workload: Obj, pods: list[Mapping[str, Any]],
                   health: ReplicaHealth) -> tuple[int, int]:
        """(running, ready) of an active placement, from its pods: a serving kind's as its adapter counts them, a
        gang's its pods in phase Running; ready only on a node that is there and Ready (gang_health.py). A gang
        said nothing and read "2/2 ready" from its launch while half of it was Pending (F13) or on dead nodes
        (F10)."""
        counts = workload_counts(workload, pods)
        if counts is None:
            want = self._replicas(pid)
            return min(health.running, want), min(health.ready, want)
        return counts[0], min(counts[1], health.ready)

    def _gang_ended(self, pid: str, workload: Obj, health: ReplicaHealth, last: tuple[JobPhase, str] | None) -> bool:
        """End a gang (a kind that runs to completion) the member disrupted, whatever its controller does next:
        a pod of it with a DisruptionTarget, a node deleted under it, or, once it ran whole, not whole for the gang
        timeout (gang_health.py, `GangGuard.broken`). True when it was ended now."""
        if pid in self._cancelled or serves(workload) or group_kind(workload) not in SUSPEND_FIELD:
            return False
        fault = self._faults.get(pid)
        why, reason = "", StopReason.EVICTED
        if fault is not None and fault.disruption and not fault.deleted:
            why, reason = fault.message, fault_reason(fault)
        elif lost := node_lost(health, self._nodes_gone):
            why, reason = lost, StopReason.NODE_LOST
        elif (last is not None and last[0] is JobPhase.RUNNING) or self.gang.was_whole(pid):
            why = self.gang.broken(pid, gang_broken(health, self._replicas(pid)))
            reason = StopReason.GANG_BROKEN
        if not why:
            return False
        log.warning("placement %s: stopped by the cluster: %s", pid, why)
        self._stop(pid, why, reason)
        return True

    def _gang_overdue(self, pid: str, workload: Obj, pods: list[Mapping[str, Any]] | None = None) -> str:
        """Why the placement's gang is refused now, by the gang timeout ("" when it is not): on `pods`,
        or without them on the pods seen before the change being handled (`GangGuard.expired`)."""
        phase = self._phases.get(pid, (JobPhase.PLACED, ""))[0]
        if not self.gang.times_out or phase.is_terminal or pid in self._cancelled \
                or group_kind(workload) not in SUSPEND_FIELD:  # gangs: the kinds that run to completion
            return ""
        if phase is not JobPhase.PLACED and not self.gang.watched(pid):
            return ""  # past Placed in a stretch this process did not watch: trust the member
        if pods is None:
            return self.gang.expired(pid)
        return self.gang.overdue(pid, pods, self._replicas(pid))

    def _create_refused(self, pid: str, workload: Obj, pods: list[Mapping[str, Any]]) -> str:
        """Why the member refuses to create the pods of a gang still Placed and not whole, in its words
        (create_refusals.py); "" when it does not. A kind that serves keeps its ReplicaFailure words instead."""
        phase = self._phases.get(pid, (JobPhase.PLACED, ""))[0]
        if phase is not JobPhase.PLACED or pid in self._cancelled or serves(workload) \
                or group_kind(workload) not in SUSPEND_FIELD \
                or sum(1 for p in pods if (p.get("spec") or {}).get("nodeName")) >= self._replicas(pid):
            return ""
        meta = workload.get("metadata") or {}
        return self.refusals.refusal(str(meta.get("namespace") or ""), str(meta.get("name") or ""),
                                     own_job=group_kind(workload) == ("batch", "Job"), uid=str(meta.get("uid") or ""))

    def _read_pods(self, pid: str) -> None:
        """Read a failed workload's pods once, in a task, and judge it again on what they say (`cause_among`).

        The pod watch keeps only active pods (`ACTIVE_PODS`, backend.py): a member may run thousands, and finished
        ones hold nothing the capacity report counts, so the watch neither lists nor caches them. A pod that turns
        Failed leaves it with its state before (Running), so its exit code went unseen and the Job controller
        deleting the rest of the gang read as the member's doing. One list by the placement's label, when the workload
        has failed and only then, costs one request per failed placement, where a watch of finished pods would
        cost every finished pod of the member."""
        if pid in self._pods_read:
            return  # being read
        self._pods_read[pid] = False
        namespace = self.tenants.namespace_of(pid)

        async def read() -> None:
            try:
                listed = await asyncio.to_thread(self.api.list, PODS, namespace,
                                                 label_selector=self._pods_selector(pid))
                pods = [p for p in listed.get("items") or [] if self._placement_of_pod(p) == pid]
            except KubeError as exc:
                log.warning("placement %s: reading its pods failed (%s); judged on what the watch saw", pid, exc)
                pods = []
            if pid not in self._pods_read:
                return  # cancelled or gone meanwhile
            self._pods_read[pid] = True
            if (cause := cause_among(self._faults.get(pid), pods)) is not None:
                self._faults[pid] = blamed_on_a_silent_node(cause, [*pods, *self._pods_of(pid)], self.nodes.cache,
                                                            gone=self._nodes_gone)
            if (workload := self._workload(pid)) is not None:
                self._refresh(pid, workload)

        self._background(read())
