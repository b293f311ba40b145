"""The agent's gang guard: all-or-nothing admission of each placement on its member cluster.

`KubeBackend` asks and tells it these things (see `admission` for the why):

* `prepare(manifest)`: in Kueue mode, the LocalQueue label and the suspend switch;
* `wait_message(workload)`: while Kueue holds a placement, Kueue's reason, read
  from the Kueue Workload that Kueue made for it (watched by an informer);
* `created(pid)`: this process created the placement's workload, so it sees its
  pods from their start;
* `observe(pid, pods, replicas)`: on every change to a placement's pods, in the
  order the member made them, whether the gang is whole now;
* `overdue(pid, pods, replicas)`: without a gang admitter, whether a placement's
  pods have had `gang_timeout` seconds to all bind and have not;
* `expired(pid)`: the same verdict for a watched placement on what was seen so
  far, before the next change to its pods is taken in.

Whole means every replica holds a node *at the same time*. A replica that ran
and finished before the last one bound did not run in a gang: a rendezvous
would have waited for its peers instead. (The agent watches active pods only, so
a finished pod leaves its view; the workload's phase may still say Running,
counting the finished replica with the running one.) So for a placement this
process launched, and watched without a break since, the guard trusts only a
whole gang it saw.

How many pods make the gang whole is fixed when the placement is launched (the
rendered workload's pod count, `prepare`): the pod watch can run ahead of the
workload watch, and a pod seen before its workload must not make a gang of one.

The verdict falls at the deadline, on what the guard saw up to it: a change
the agent takes in after the deadline (the last replica binding late, the
workload finishing one replica after another) does not count; the gang is
judged as it was before that change (`expired`). So how late the backend's
periodic check runs on a loaded machine changes nothing, and neither a gang
made whole too late nor one that went on to finish is admitted.

The clock starts when this agent process launched the placement, or when it
first saw the workload (after a restart), so a restarted agent never deletes a
gang on the strength of time it did not watch; nor does it second-guess a
placement it did not watch from the start: for those, pods bound now (or a phase
past Placed, which the backend checks) are enough.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from federator.backends.kube.admission import (
    DEFAULT_GANG_TIMEOUT_SECONDS,
    DEFAULT_KUEUE_ADMISSION_TIMEOUT_SECONDS,
    GangAdmission,
    gang_size,
    is_suspended,
    kueue_admit,
    kueue_wait_message,
    owner_uids,
    unbound_gang,
)
from federator.backends.kube.api import ForbiddenError, KubeApi, KubeError, NotFoundError, Obj, Resource
from federator.backends.kube.informer import Informer
from federator.backends.kube.kueue_quota import FlavorRoom, flavor_nodes, flavor_quota, headroom

log = logging.getLogger("federator.agent.kube")

KUEUE_WORKLOADS = Resource("kueue.x-k8s.io/v1beta2", "workloads")
KUEUE_LOCAL_QUEUES = Resource("kueue.x-k8s.io/v1beta2", "localqueues")
KUEUE_CLUSTER_QUEUES = Resource("kueue.x-k8s.io/v1beta2", "clusterqueues", namespaced=False)
KUEUE_RESOURCE_FLAVORS = Resource("kueue.x-k8s.io/v1beta2", "resourceflavors", namespaced=False)


class GangGuard:
    """Kueue mode (`kueue_queue` set) or the gang timeout, for the placements of one namespace (or of every
    namespace the backend runs them in: `watch_namespace`). The quota read is the LocalQueue of `namespace`:
    the LocalQueues of tenant namespaces point at its ClusterQueue."""

    def __init__(self, api: KubeApi, *, namespace: str, cluster: str, kueue_queue: str = "",
                 gang_timeout: float = DEFAULT_GANG_TIMEOUT_SECONDS,
                 kueue_timeout: float = DEFAULT_KUEUE_ADMISSION_TIMEOUT_SECONDS, watch_timeout: int = 60,
                 on_kueue_event: Callable[[str], None] = lambda _uid: None,
                 clock: Callable[[], float] = time.monotonic, watch_namespace: str | None = "") -> None:
        self.api = api
        self.namespace = namespace
        self.cluster = cluster
        self.kueue_queue = kueue_queue
        self.gang_timeout = gang_timeout
        self.kueue_timeout = kueue_timeout
        self.clock = clock
        self._held_since: dict[str, float] = {}  # Kueue mode: placement id -> since when Kueue holds it
        self._since: dict[str, float] = {}  # placement id -> when this process started its clock
        self._watched: set[str] = set()  # launched by this process, its pods watched without a break since
        self._whole: set[str] = set()  # seen with every replica bound at once: its timeout is over
        self._size: dict[str, int] = {}  # placement id -> its pods, as this process rendered them
        self._unbound: dict[str, str] = {}  # placement id -> why it was not whole when last observed
        self._broken_since: dict[str, float] = {}  # placement id -> since when a gang that was whole is not
        self._on_kueue_event = on_kueue_event
        self.kueue_workloads: Informer | None = None
        # The quota Kueue has left (kueue_quota.py): the LocalQueue, and the ClusterQueues where RBAC lets the
        # agent read them (`quota_readable`; started by the backend only then).
        self.local_queues: Informer | None = None
        self.cluster_queues: Informer | None = None
        self.resource_flavors: Informer | None = None  # which nodes each flavor runs on (its nodeLabels)
        if kueue_queue:
            # Kueue's Workloads where the placements run: `namespace`, or every namespace (None) when the
            # backend runs them per queue (`watch_namespace`, as its workload informers: tenant_namespaces.py).
            where = namespace if watch_namespace == "" else watch_namespace
            self.kueue_workloads = Informer(api, KUEUE_WORKLOADS, namespace=where, name="kueue-workloads",
                                            on_event=self._kueue_event, watch_timeout=watch_timeout)
            self.local_queues = Informer(api, KUEUE_LOCAL_QUEUES, namespace=namespace, name="kueue-localqueues",
                                         field_selector=f"metadata.name={kueue_queue}", watch_timeout=watch_timeout)
            self.cluster_queues = Informer(api, KUEUE_CLUSTER_QUEUES, name="kueue-clusterqueues",
                                           watch_timeout=watch_timeout)
            self.resource_flavors = Informer(api, KUEUE_RESOURCE_FLAVORS, name="kueue-resourceflavors",
                                             watch_timeout=watch_timeout)

    @property
    def admission(self) -> GangAdmission:
        return GangAdmission.KUEUE if self.kueue_queue else GangAdmission.NONE

    @property
    def informers(self) -> tuple[Informer, ...]:
        return (self.kueue_workloads,) if self.kueue_workloads is not None else ()

    def quota_readable(self) -> bool:
        """Blocking: whether the agent may read ClusterQueues (Kueue mode; the agent's ClusterRole grants it
        since chart 0.3.0). If not, the quota is not held against the report, and the log says how to mend it."""
        if self.cluster_queues is None:
            return False
        try:
            self.api.list(KUEUE_CLUSTER_QUEUES)
        except ForbiddenError as exc:
            log.warning("Kueue quota not read: the agent may not list clusterqueues (%s); its report counts nodes "
                        "only, and a gang the ClusterQueue cannot admit may be sent here and wait for "
                        "--kueue-admission-timeout. Apply the agent chart's RBAC (deploy/kubernetes/rbac-agent.yaml)",
                        exc)
            return False
        except KubeError as exc:
            log.warning("Kueue quota not read: listing clusterqueues failed (%s)", exc)
            return False
        try:
            self.api.list(KUEUE_RESOURCE_FLAVORS)
        except KubeError as exc:  # an agent chart before resourceflavors were granted: the quota still counts
            log.warning("Kueue ResourceFlavors not read (%s): free accelerators on nodes no flavor of the "
                        "ClusterQueue matches are reported as free, and a job sent for them waits for "
                        "--kueue-admission-timeout. Apply the agent chart's RBAC (deploy/kubernetes/rbac-agent.yaml)",
                        exc)
            self.resource_flavors = None
        return True

    @property
    def quota_informers(self) -> tuple[Informer, ...]:
        return tuple(i for i in (self.local_queues, self.cluster_queues, self.resource_flavors) if i is not None)

    def quota_left(self, resources: Iterable[str]) -> dict[str, int] | None:
        """Kueue mode: the units of each accelerator resource the LocalQueue's ClusterQueue would still admit
        (`kueue_quota.headroom`); None when not known (not Kueue mode, the queues not read or not seen)."""
        if self.local_queues is None or self.cluster_queues is None or not self.cluster_queues.started:
            return None
        return headroom(self._local_queue(), self._cluster_queue(), resources)

    def quota_nodes(self, resources: Iterable[str], nodes: Iterable[Obj]) -> dict[str, set[str]] | None:
        """Kueue mode: per accelerator resource the ClusterQueue covers, the nodes one of its flavors runs on
        (`kueue_quota.flavor_nodes`); None when not known (the ResourceFlavors not read, or the queues not seen)."""
        if self.resource_flavors is None or not self.resource_flavors.started:
            return None
        cluster_queue = self._cluster_queue()
        if cluster_queue is None:
            return None
        flavors = {str((f.get("metadata") or {}).get("name", "")): f for f in self.resource_flavors.cache.values()}
        return flavor_nodes(cluster_queue, flavors, nodes, resources)

    def quota_flavors(self, resources: Iterable[str], nodes: Iterable[Obj]) -> dict[str, list[FlavorRoom]] | None:
        """Kueue mode: per accelerator resource, each flavor of the ClusterQueue with its nodes and its own quota
        left (`kueue_quota.flavor_quota`); None when not known (the ResourceFlavors or the queues not seen)."""
        if self.resource_flavors is None or not self.resource_flavors.started:
            return None
        if self.cluster_queues is None or not self.cluster_queues.started:
            return None
        flavors = {str((f.get("metadata") or {}).get("name", "")): f for f in self.resource_flavors.cache.values()}
        return flavor_quota(self._local_queue(), self._cluster_queue(), flavors, nodes, resources)

    def _local_queue(self) -> Obj | None:
        return self.local_queues.cache.get(f"{self.namespace}/{self.kueue_queue}") if self.local_queues else None

    def _cluster_queue(self) -> Obj | None:
        name = str(((self._local_queue() or {}).get("spec") or {}).get("clusterQueue") or "")
        return self.cluster_queues.cache.get(name) if name and self.cluster_queues is not None else None

    def check(self) -> str:
        """Blocking: "" or why Kueue mode cannot work here (Kueue's API missing); a missing LocalQueue is
        not an error (Kueue itself says so on every Workload, and the user sees it)."""
        if not self.kueue_queue:
            return ""
        try:
            self.api.get(KUEUE_LOCAL_QUEUES, self.kueue_queue, self.namespace)
        except NotFoundError as exc:
            if "localqueues" in str(exc) and self.kueue_queue in str(exc):
                return ""  # the API exists; the LocalQueue does not (yet)
            return f"--kueue-queue: Kueue's API ({KUEUE_LOCAL_QUEUES.group_version}) is not served by " \
                   f"{self.api.server}: is Kueue installed? ({exc})"
        except KubeError as exc:
            return f"--kueue-queue: reading LocalQueue {self.namespace}/{self.kueue_queue}: {exc}"
        return ""

    # -- launch ---------------------------------------------------------------

    def prepare(self, manifest: Obj, placement_id: str) -> Obj:
        """The rendered workload, handed to Kueue in Kueue mode; starts the placement's clock and notes
        how many pods make its gang whole."""
        self._since.setdefault(placement_id, self.clock())
        if self.kueue_queue:
            self._held_since.setdefault(placement_id, self.clock())
        self._size[placement_id] = gang_size(manifest)
        return kueue_admit(manifest, self.kueue_queue)

    @property
    def times_out(self) -> bool:
        """Whether the gang timeout applies here: no gang admitter, and a timeout set."""
        return not self.kueue_queue and self.gang_timeout > 0

    @property
    def kueue_times_out(self) -> bool:
        """Whether the Kueue admission timeout applies here: Kueue mode, and a timeout set."""
        return bool(self.kueue_queue) and self.kueue_timeout > 0

    @property
    def tick(self) -> float:
        """How often the backend checks the placements against the timeout in force (0: none is)."""
        timeout = self.gang_timeout if self.times_out else self.kueue_timeout if self.kueue_times_out else 0.0
        return max(0.2, min(5.0, timeout / 4)) if timeout > 0 else 0.0

    def created(self, placement_id: str) -> None:
        """This process created the workload just now: it watches the gang's pods from their start."""
        if self.times_out and placement_id not in self._whole:
            self._watched.add(placement_id)

    def forget(self, placement_id: str) -> None:
        self._since.pop(placement_id, None)
        self._watched.discard(placement_id)
        self._whole.discard(placement_id)
        self._size.pop(placement_id, None)
        self._unbound.pop(placement_id, None)
        self._held_since.pop(placement_id, None)
        self._broken_since.pop(placement_id, None)

    def watch_broke(self) -> None:
        """The pod watch was re-listed: changes in between went unseen, so no placement is watched whole."""
        self._watched.clear()

    def watched(self, placement_id: str) -> bool:
        """Whether this process saw every change to the placement's pods since it launched it."""
        return placement_id in self._watched

    # -- reading back ------------------------------------------------------------

    def wait_message(self, workload: Mapping[str, Any]) -> str:
        """Kueue's reason while Kueue holds the workload suspended ("" when it does not)."""
        if not self.kueue_queue or not is_suspended(workload):
            return ""
        return kueue_wait_message(self.cluster, self.kueue_queue, self._kueue_workload_of(workload))

    def observe(self, placement_id: str, pods: Iterable[Mapping[str, Any]], replicas: int) -> str:
        """Note whether the gang is whole now (every replica bound): "" once it has been, else why not.

        `replicas` is what the caller knows now; a gang this process launched needs at least the pods
        it was rendered with (the caller may not have seen the workload yet).
        """
        if placement_id in self._whole:
            return ""
        why = unbound_gang(pods, max(replicas, self._size.get(placement_id, 0)))
        if not why:
            self._whole.add(placement_id)  # whole once: the timeout is over for this placement
            self._since.pop(placement_id, None)
            self._watched.discard(placement_id)
            self._unbound.pop(placement_id, None)
        else:
            self._unbound[placement_id] = why
        return why

    def overdue(self, placement_id: str, pods: Iterable[Mapping[str, Any]], replicas: int) -> str:
        """Without a gang admitter: why the gang is refused now ("" while it is whole or still in time)."""
        if not self.times_out:
            return ""
        why = self.observe(placement_id, pods, replicas)
        if not why:
            return ""
        return self._verdict(placement_id, why)

    def expired(self, placement_id: str) -> str:
        """For a watched placement, before a change to its pods is taken in: why it is refused on what was
        seen up to now ("" while it is whole, in time, not watched, or not observed yet)."""
        if not self.times_out or placement_id not in self._watched:
            return ""
        why = self._unbound.get(placement_id, "")
        return self._verdict(placement_id, why) if why else ""

    def hold_overdue(self, placement_id: str, workload: Mapping[str, Any]) -> str:
        """Kueue mode: what to tell the federator when Kueue has held the placement suspended `kueue_timeout`
        seconds, so that it moves the job if another cluster can run it ("" while admitted, in time, or with
        no timeout). Admission stops the clock; an eviction (suspended again) starts a new one; so does
        asking, so a placement left here is asked about again one timeout later, not at every tick."""
        if not self.kueue_times_out:
            return ""
        waiting = self.wait_message(workload)
        if not waiting:
            self._held_since.pop(placement_id, None)
            return ""
        now = self.clock()
        started = self._held_since.setdefault(placement_id, now)
        waited = now - started
        if waited < self.kueue_timeout:
            return ""
        self._held_since[placement_id] = now
        return f"{waiting}; held {waited:.0f}s (--kueue-admission-timeout {self.kueue_timeout:g}s)"

    def was_whole(self, placement_id: str) -> bool:
        """Whether this process saw the placement's gang whole (every replica bound at once)."""
        return placement_id in self._whole

    def broken_clocks(self) -> list[str]:
        """The placements whose gang this process sees broken now (`broken`): the gang watch judges them at every
        tick, as no change to their pods may come."""
        return list(self._broken_since)

    def broken(self, placement_id: str, why: str) -> str:
        """A gang that was whole and is not (`why`, gang_health.gang_broken; "" when it is whole again): what to
        end it with once it has stayed broken for the gang timeout ("" while in time, or with no timeout).

        Why the timeout, not at once: a replica that its controller restarts in place may bind again within
        seconds, and a rendezvous can wait that long. Why at all: a workload that restarts its replicas itself (a
        JobSet with maxRestarts) never fails, so a replica that cannot bind again left the rest of the gang on
        its accelerators for good, reported Running (outside provider QA F13). The clock starts when this
        process first sees the gang broken, so a restarted agent gives it a full timeout again. Not in Kueue mode:
        Kueue's own waitForPodsReady (its recoveryTimeout) watches an admitted workload that stops being ready."""
        if not why or not self.times_out:
            self._broken_since.pop(placement_id, None)
            return ""
        started = self._broken_since.setdefault(placement_id, self.clock())
        waited = self.clock() - started
        if waited < self.gang_timeout:
            return ""
        return (f"gang broken on {self.cluster}: {why} for {waited:.0f}s (--gang-timeout {self.gang_timeout:g}s) "
                "after it ran whole; deleted the workload so no partial gang holds accelerators")

    def _verdict(self, placement_id: str, why: str) -> str:
        started = self._since.setdefault(placement_id, self.clock())
        waited = self.clock() - started
        if waited < self.gang_timeout:
            return ""
        return (f"gang timeout on {self.cluster}: {why} after {waited:.0f}s (--gang-timeout "
                f"{self.gang_timeout:g}s); deleted the workload so no partial gang holds accelerators")

    def _kueue_workload_of(self, workload: Mapping[str, Any]) -> Obj | None:
        if self.kueue_workloads is None:
            return None
        uid = str((workload.get("metadata") or {}).get("uid") or "")
        for obj in self.kueue_workloads.cache.values():
            if uid and uid in owner_uids(obj):
                return obj
        return None

    def _kueue_event(self, _kind: str, obj: Obj) -> None:
        for uid in owner_uids(obj):
            self._on_kueue_event(uid)


__all__ = ["KUEUE_CLUSTER_QUEUES", "KUEUE_LOCAL_QUEUES", "KUEUE_WORKLOADS", "GangGuard"]
