"""What each informer's event does: a workload, pod, node, Kueue Workload or FailedCreate Event changed on the member.

Why a module of its own: the backend polls nothing; every change it learns of arrives here, on the event loop, from
one of its informers (informer.py), and each handler finds the placements the change concerns and has them judged
again (placement_phases.py). A placement's workload deleted behind the agent's back is reported Cancelled, so the
federator queues the job again; one changed behind its back is changed back as the agent rendered it (`_restore`,
drift.py). A pod's first fault is kept, and a gang the guard watches sees every change of its pods in order (a gang
is whole only if some moment saw it so). A node's deletion or NotReady, which changes none of the pods bound to it,
has every placement with a pod there judged again. Until `start` has every informer synced, what the events say is
recorded but not yet told to the agent (`_report`).
"""

from __future__ import annotations

import asyncio
import logging

from federator.backends.kube.api import ForbiddenError, KubeError, Obj
from federator.backends.kube.create_refusals import refusing
from federator.backends.kube.gang_health import node_unready
from federator.backends.kube.gang_watch import GangWatch
from federator.backends.kube.informer import DELETED
from federator.backends.kube.kinds import resource_of
from federator.backends.kube.placement_state import key_name
from federator.backends.kube.pod_faults import pod_fault
from federator.backends.kube.silent_nodes import blamed_on_a_silent_node
from federator.backends.kube.workloads import adapter_of, placement_of
from federator.model import JobPhase

log = logging.getLogger("federator.agent.kube")


class InformerEvents(GangWatch):
    """The handlers the backend's informers call (`on_event`)."""

    def _workload_event(self, kind: str, obj: Obj) -> None:
        pid = placement_of(obj)
        if not pid:
            return
        if kind == DELETED:
            self._launched.pop(pid, None)
            self._faults.pop(pid, None)
            self._pods_read.pop(pid, None)
            self.gang.forget(pid)
            self.tenants.forget(pid)
            self.drift.forget(pid)
            last = self._phases.pop(pid, None)
            self._counts.pop(pid, None)
            self.pod_nodes.forget(pid)
            if pid not in self._cancelled and last is not None and not last[0].is_terminal:
                # The member's operator (or a controller of theirs) deleted it, not the user's code: stopped by the
                # cluster, so the federator queues the job again. Reported Failed, it was over for good.
                self._cancelled.add(pid)
                self._on_update(pid, JobPhase.CANCELLED, f"{obj.get('kind')} {key_name(obj)} was deleted in the "
                                                         "member cluster")
            return
        self._launched.pop(pid, None)
        self.tenants.seen(pid, obj)
        self._restore(pid, obj)
        self._refresh(pid, obj)

    def _restore(self, pid: str, obj: Obj) -> None:
        """The agent owns what it made: an object of a running placement changed on the member behind its back
        (`kubectl scale`, `kubectl set image`, a node selector removed) is changed back as the agent rendered it,
        with a warning naming the fields (drift.py says what is compared and what is not). Outside QA: a scaled
        Deployment read "1 of 3 replicas running" for good while 3 accelerators stayed booked; F4: an image edit
        or the model pin removed ran, unreported, on what the federator bills."""
        phase = self._phases.get(pid, (JobPhase.PLACED, ""))[0]
        if not pid or not self._started or pid in self._cancelled or phase.is_terminal \
                or (adapter := adapter_of(obj)) is None or (patch := self.drift.check(pid, obj)) is None:
            return
        meta = obj.get("metadata") or {}

        async def revert() -> None:
            try:
                await asyncio.to_thread(self.api.patch, resource_of(adapter), str(meta.get("name", "")), patch,
                                        str(meta.get("namespace", "")))
            except KubeError as exc:
                rbac = "; the agent needs patch on its workload kinds (deploy/kubernetes/rbac-agent.yaml)" \
                    if isinstance(exc, ForbiddenError) else ""
                log.warning("placement %s: changing %s %s back failed (%s)%s", pid, obj.get("kind"), key_name(obj),
                            exc, rbac)

        self._background(revert())

    def _pod_event(self, _kind: str, pod: Obj) -> None:
        pid = self._placement_of_pod(pod)
        if not pid:
            return
        self._note_pod_relists()
        workload, watched = self._workload(pid), self.gang.watched(pid)
        if workload is None and not watched:
            return
        pods = self._pods_of(pid)
        if pid not in self._faults and (fault := pod_fault(pod)):  # its final state too, as it leaves the watch
            # A crash while a peer's node is silent is that node's doing (silent_nodes.py).
            self._faults[pid] = blamed_on_a_silent_node(fault, pods, self.nodes.cache, gone=self._nodes_gone)
        if watched:  # every change, in order: a gang is whole only if some moment saw it so
            if self._started and workload is not None and (why := self._gang_overdue(pid, workload)):
                self._refuse(pid, why)  # its deadline passed before this change: judged on what came before
                return
            self.gang.observe(pid, pods, self._replicas(pid))
        if workload is not None:
            self._refresh(pid, workload, pods)

    def _node_event(self, kind: str, node: Obj) -> None:
        """A node changed: deleted (its pods are lost), NotReady, Ready again. Every live placement with a pod on
        it is judged again: pods bound to a node do not change when the node goes."""
        name = str((node.get("metadata") or {}).get("name", ""))
        was_gone, before = name in self._nodes_gone, self._node_unready.get(name)
        if kind == DELETED:
            self._nodes_gone.add(name)
            self._node_unready.pop(name, None)
        else:
            self._nodes_gone.discard(name)
            self._node_unready[name] = node_unready(node)[0]
            if self._node_unready[name] == before and not was_gone:
                return  # a heartbeat, a label: nothing its pods' placements say changes (one pod scan per change)
        if not self._started:
            return  # the first list: each placement is judged as its own objects come in
        for pid in {self._placement_of_pod(p) for p in self.pods.cache.values()
                    if (p.get("spec") or {}).get("nodeName") == name} - {""}:
            if (workload := self._workload(pid)) is not None:
                self._refresh(pid, workload)

    def _kueue_event(self, owner_uid: str) -> None:
        """Kueue changed the Workload it keeps for one of ours: its admission state may have changed."""
        for informer in list(self.workloads.values()):
            for workload in list(informer.cache.values()):
                if (workload.get("metadata") or {}).get("uid") == owner_uid and (pid := placement_of(workload)):
                    self._refresh(pid, workload)

    def _refusal_event(self, kind: str, event: Obj) -> None:
        """A FailedCreate Event on a Job: the placement whose pods it refuses is judged again (`_refresh`)."""
        involved = event.get("involvedObject") or {}
        if kind == DELETED or not self._started or not refusing(event):
            return
        for informer in list(self.workloads.values()):
            for workload in list(informer.cache.values()):
                meta = workload.get("metadata") or {}
                name = str(meta.get("name") or "")
                if name and meta.get("namespace") == involved.get("namespace") \
                        and str(involved.get("name") or "").startswith(name) and (pid := placement_of(workload)):
                    self._refresh(pid, workload)  # its Job, or a child Job of it: `_create_refused` tells which
