"""The agent's Kubernetes backend: a real member cluster behind the `Backend` protocol.

Informers keep the picture current without polling: Nodes and non-terminated
Pods (all namespaces: every pod takes capacity) for the resource model, and
the workloads the federator launched (selected by the managed-by label, in
`--namespace`, or with `--namespace-per-queue` in every namespace, keeping the
agent's own: tenant_namespaces.py), one informer per workload kind the cluster serves (Jobs,
Deployments, StatefulSets, and JobSets, LeaderWorkerSets, ... where their CRDs
are installed: `kinds.served_kinds`, checked again every `discovery_interval`),
for placements and their phases.
Blocking API calls run in threads (`asyncio.to_thread`); informer events arrive
on the event loop, where every piece of state here lives.

`KubeBackend` is made of one class per concern, each in a module of its own: the state they share and the lookups
over it (placement_state.py), launching a placement (placement_launch.py), the capacity report (capacity_report.py),
what each informer event does (informer_events.py), judging a placement's phase (placement_phases.py), the gang
watch's tick (gang_watch.py) and stopping a placement (placement_stops.py). This module builds the backend, starts
and stops its informers, and keeps the rest of the `Backend` protocol (resize, logs, the member probe, the claim).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from federator.agent.backend import ReplicaOutput, UpdateCallback, no_update
from federator.backends.kube import pod_logs, stranded
from federator.backends.kube.admission import (
    DEFAULT_GANG_TIMEOUT_SECONDS,
    DEFAULT_KUEUE_ADMISSION_TIMEOUT_SECONDS,
    GangAdmission,
)
from federator.backends.kube.agent_identity import AgentIdentity
from federator.backends.kube.api import NODES, PODS, KubeApi, KubeError, NotFoundError, Obj
from federator.backends.kube.capacity import DEFAULT_TOLERATED_TAINTS
from federator.backends.kube.claims import DraClaims
from federator.backends.kube.create_refusals import CreateRefusals
from federator.backends.kube.discovery import Discovery, default_discovery
from federator.backends.kube.drift import DriftGuard
from federator.backends.kube.events import EventRecorder
from federator.backends.kube.gang import GangGuard
from federator.backends.kube.informer import ADDED, Informer
from federator.backends.kube.informer_events import InformerEvents
from federator.backends.kube.kinds import resource_of, served_kinds
from federator.backends.kube.model_clash import ModelClashes
from federator.backends.kube.namespace_claim import ClaimSaid, NamespaceClaim
from federator.backends.kube.namespace_level import read_namespace_warnings
from federator.backends.kube.placement_launch import PlacementLaunch
from federator.backends.kube.placement_state import key_name, names_of
from federator.backends.kube.pod_faults import PodFault
from federator.backends.kube.pod_nodes import NodeList, PodNodes
from federator.backends.kube.resizing import RESIZABLE, resize_patch
from federator.backends.kube.resource_quotas import ResourceQuotas
from federator.backends.kube.stops import StopNotices
from federator.backends.kube.tenant_namespaces import TenantNamespaces
from federator.backends.kube.unlabelled import UnlabelledAccelerators
from federator.backends.kube.unsupported import UnsupportedAccelerators
from federator.backends.kube.workloads import (
    DEFAULT_FINISHED_TTL_SECONDS,
    SELECTOR,
    WorkloadAdapter,
    adapter_for,
    adapter_of,
    placement_of,
)
from federator.backends.kube.workloads.common import DEFAULT_CLUSTER_DOMAIN
from federator.model import JobPhase, Placement
from federator.security.podsecurity import PodSecurity
from federator.timestamps import utc_seconds

log = logging.getLogger("federator.agent.kube")
ACTIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"
PROBE_TIMEOUT_SECONDS = 5.0
"""How long the probe of the member's API server waits for its answer (`probe_member`)."""


class KubeBackend(PlacementLaunch, InformerEvents):
    """Runs placements as workloads (Jobs, Deployments, the kinds users bring) in one namespace of a
    member cluster, or in one per queue (`namespace_per_queue`)."""

    def __init__(self, api: KubeApi, *, namespace: str, tolerated_taints: frozenset[str] = DEFAULT_TOLERATED_TAINTS,
                 finished_ttl_seconds: int | None = DEFAULT_FINISHED_TTL_SECONDS, sync_timeout: float = 60.0,
                 watch_timeout: int = 60, discovery_interval: float = 60.0,
                 discovery: Discovery | None = None, cluster: str = "", kueue_queue: str = "",
                 gang_timeout: float = DEFAULT_GANG_TIMEOUT_SECONDS,
                 kueue_timeout: float = DEFAULT_KUEUE_ADMISSION_TIMEOUT_SECONDS,
                 pod_security: PodSecurity | None = None, namespace_per_queue: bool = False,
                 own_namespace: str = "", events: bool = False, federator: str = "",
                 claim: NamespaceClaim | None = None, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> None:
        self.api = api
        self.cluster_domain = cluster_domain  # the member's DNS domain: an elastic gang's rendezvous host (elastic.py)
        self.claim = claim  # its federation's claim on `namespace` (namespace_claim.py); None: none taken (tests)
        self.cluster = cluster
        self.federator = federator  # the --server it reports to: written on its workloads (agent_identity.py)
        # The member's own level (`federator agent --pod-security`): every workload is checked against it before
        # anything of its placement is created, whatever the federator's level was when the job was stored.
        self.pod_security = pod_security or PodSecurity()  # baseline, as `federator agent` defaults to
        self.discovery = discovery or default_discovery()
        self.namespace = namespace
        # Where each placement runs: `namespace`, or per queue `<namespace>-<queue>`, made ready at launch.
        self.tenants = TenantNamespaces(api, base=namespace, per_queue=namespace_per_queue,
                                        pod_security=self.pod_security, kueue_queue=kueue_queue,
                                        own_namespace=own_namespace)
        self.tenants.identity = lambda: self.identity  # a workload marked as another agent's is not this one's
        self.tolerated_taints = tolerated_taints
        self.finished_ttl_seconds = finished_ttl_seconds
        self._digests: dict[str, str] = {}  # Launch.job_digest of each launch on its way (placement_launch.py)
        self._seals: dict[str, str] = {}  # and its Launch.seal (placement_launch.py)
        self.sync_timeout = sync_timeout
        self.watch_timeout = watch_timeout
        self.discovery_interval = discovery_interval
        self._on_update: UpdateCallback = no_update
        self.nodes = Informer(api, NODES, name="nodes", on_event=self._node_event, watch_timeout=watch_timeout)
        self._nodes_gone: set[str] = set()  # nodes seen deleted (and not added again): their pods are lost
        self._node_unready: dict[str, bool] = {}  # node -> NotReady or unreachable, as last seen
        # Each stop of the agent's own: an Event on the member (`events`) and federator_agent_placements_stopped_total
        self.stops = StopNotices(EventRecorder(api, instance=f"federator-agent/{cluster}") if events else None,
                                 instance=f"federator-agent/{cluster}" if cluster else "federator-agent")
        self.pods = Informer(api, PODS, field_selector=ACTIVE_PODS, on_event=self._pod_event, name="pods",
                             watch_timeout=watch_timeout)
        self.served: dict[str, WorkloadAdapter] = {}  # "Kind.group" -> adapter, for the kinds the cluster serves
        self.workloads: dict[str, Informer] = {}  # "Kind.group" -> the informer of the federator's objects
        self.jobs = self._workload_informer(adapter_for({"apiVersion": "batch/v1", "kind": "Job"}))
        self.deployments = self._workload_informer(adapter_for({"apiVersion": "apps/v1", "kind": "Deployment"}))
        # All-or-nothing on this cluster: Kueue mode, or the gang timeout (gang.py).
        self.gang = GangGuard(api, namespace=namespace, cluster=cluster or "this cluster", kueue_queue=kueue_queue,
                              gang_timeout=gang_timeout, kueue_timeout=kueue_timeout, watch_timeout=watch_timeout,
                              on_kueue_event=self._kueue_event, watch_namespace=self.tenants.watched)
        self._informers = [self.nodes, self.pods, self.jobs, self.deployments, *self.gang.informers]
        self._gang_task: asyncio.Task[None] | None = None
        self._discovery: asyncio.Task[None] | None = None
        # DRA (resource.k8s.io/v1): started only where the API serves it and RBAC allows reading it.
        self.dra = DraClaims(api, namespace=namespace, watch_timeout=watch_timeout)
        self._phases: dict[str, tuple[JobPhase, str]] = {}  # placement id -> last phase reported
        self._counts: dict[str, tuple[int, int]] = {}  # placement id -> (running, ready) last reported (serving)
        self.pod_nodes = PodNodes()  # placement id -> the nodes its replicas run on, last said (pod_nodes.py)
        self._faults: dict[str, PodFault] = {}  # placement id -> the first fault its pods showed (pod_faults.py)
        # Placement id -> whether its failed workload's pods were read (True) or are being read (False): the pod
        # watch keeps only active pods, so a pod that turned Failed left it unseen (`_read_pods`).
        self._pods_read: dict[str, bool] = {}
        self._launched: dict[str, Placement] = {}  # created by this process, maybe not seen by a watch yet
        self._cancelled: set[str] = set()
        self._retries: set[asyncio.Task[None]] = set()
        self._sequence = 0
        self._started = False
        self._pod_relists = 0  # the pod informer's re-lists the gang guard has been told of
        self.drift = DriftGuard(kueue=bool(kueue_queue))  # what the agent rendered, kept so on the member (drift.py)
        self.unlabelled = UnlabelledAccelerators()  # devices no label names the model of (unlabelled.py)
        self.unsupported = UnsupportedAccelerators()  # devices in units that are not chips (unsupported.py)
        self.clashes = ModelClashes()  # a second vendor's pool under a model name already reported (model_clash.py)
        # The provider's ResourceQuotas where placements run, held against the report (resource_quotas.py).
        self.quotas = ResourceQuotas(api, base=namespace, per_queue=namespace_per_queue, watch_timeout=watch_timeout)
        # The Job controller's FailedCreate Events: a gang the member refuses to create is refused at once.
        self.refusals = CreateRefusals(api, namespace=self.tenants.watched, base=namespace,
                                       on_event=self._refusal_event, watch_timeout=watch_timeout)

    # -- Backend protocol ---------------------------------------------------

    def _workload_informer(self, adapter: WorkloadAdapter) -> Informer:
        def on_event(kind: str, obj: Obj) -> None:
            obj.setdefault("apiVersion", adapter.api_version)  # items of a list come without them
            obj.setdefault("kind", adapter.kind)
            self._workload_event(kind, obj)

        informer = Informer(self.api, resource_of(adapter), namespace=self.tenants.watched, label_selector=SELECTOR,
                            on_event=on_event, name=adapter.plural, watch_timeout=self.watch_timeout,
                            accept=self.tenants.owns)
        self.served[adapter.key] = adapter
        self.workloads[adapter.key] = informer
        return informer

    async def discover(self) -> list[Informer]:
        """Start watching every workload kind the cluster serves now and was not watched (blocking
        discovery in a thread); returns the informers it started."""
        found = await asyncio.to_thread(served_kinds, self.api)
        added = [self._workload_informer(a) for key, a in found.items() if key not in self.workloads]
        for informer in added:
            informer.start()
            log.info("the cluster serves %s: watching them", informer.name)
        self._informers.extend(added)
        return added

    async def _rediscover(self) -> None:
        while True:
            await asyncio.sleep(self.discovery_interval)
            try:
                await self.discover()
            except KubeError as exc:
                log.warning("API discovery failed (%s); the kinds found so far stay", exc)

    def count_stops(self, on_stopped: Callable[[str], None]) -> None:
        """The agent's count of each stop of this backend's own (agent/backend.py, `CountsStops`)."""
        self.stops.on_stopped = on_stopped

    @property
    def gang_admission(self) -> GangAdmission:
        """What admits a gang whole here (sent in the agent's Hello)."""
        return self.gang.admission

    def tell_claim(self, said: ClaimSaid) -> None:
        """The agent's metrics and /readyz, told the claim's state (agent/backend.py, `ClaimsNamespace`)."""
        if self.claim is not None:
            self.claim.said = said

    async def keep_claim(self) -> None:
        """Renew the claim while the agent runs; raise when another federation has taken it (namespace_claim.py)."""
        if self.claim is not None:
            await self.claim.keep()

    async def start(self, on_update: UpdateCallback) -> None:
        self._on_update = on_update
        if self.claim is not None:  # before any workload is read: another federation's are not this agent's
            await self.claim.take()
        problem = await asyncio.to_thread(self.gang.check)
        if problem:
            raise KubeError(0, problem)
        unreachable = await stranded.adopt(self)  # placements left in per-queue namespaces when the flag was turned off
        if not self.tenants.per_queue:  # per queue: each tenant namespace the agent finds made, when first used
            log.warning("every organisation's placements run in the one namespace %s: a job may mount the Secrets "
                        "and PVCs there and shares its ServiceAccount; --namespace-per-queue gives each queue a "
                        "namespace of its own (docs/kubernetes.md)", self.namespace)
            for warning in await asyncio.to_thread(read_namespace_warnings, self.api, self.namespace,
                                                   self.pod_security):
                log.warning("%s", warning)
        try:
            await self.discover()
        except KubeError as exc:
            raise KubeError(exc.status, f"API discovery at {self.api.server}: {exc}") from None
        if await asyncio.to_thread(self.dra.served):
            self._informers.extend(self.dra.informers)
        readable: bool = bool(self.gang.quota_informers) and await asyncio.to_thread(self.gang.quota_readable)
        if readable:
            self._informers.extend(self.gang.quota_informers)  # Kueue's quota, held against the report
        if await asyncio.to_thread(self.quotas.readable):
            self._informers.append(self.quotas.informer)
        if await asyncio.to_thread(self.refusals.readable):
            self._informers.append(self.refusals.informer)
        for informer in self._informers:
            if not informer.started:
                informer.start()
        try:
            await asyncio.gather(*(i.wait_synced(self.sync_timeout) for i in self._informers))
        except TimeoutError:
            late = [i.name for i in self._informers if not i.synced.is_set()]
            raise KubeError(0, f"no answer listing {', '.join(late)} from {self.api.server} "
                               f"within {self.sync_timeout:g}s") from None
        self._started = True
        for obj in [o for informer in self.workloads.values() for o in informer.cache.values()]:
            self._restore(placement_of(obj), obj)  # changed while no agent ran: the watch will not say it again
        for pid, why in unreachable.items():  # stranded where this agent may not reach them: Failed, said why
            self._report(pid, JobPhase.FAILED, why)
        for event in list(self.refusals.informer.cache.values()):  # FailedCreate said before this process ran
            self._refusal_event(ADDED, event)
        self._discovery = asyncio.get_running_loop().create_task(self._rediscover())
        if self.gang.tick:
            self._gang_task = asyncio.get_running_loop().create_task(self._watch_gangs())
        log.info("watching %s: %d nodes, %d active pods, %d placements in namespace %s; it runs %s", self.api.server,
                 len(self.nodes.cache), len(self.pods.cache), len(self._phases),
                 f"{self.namespace}-<queue>" if self.tenants.per_queue else self.namespace,
                 ", ".join(sorted(self.served)))

    async def stop(self) -> None:
        if self._discovery is not None:
            self._discovery.cancel()
        if self._gang_task is not None:
            self._gang_task.cancel()
        for informer in self._informers:
            informer.stop()
        for task in list(self._retries):
            task.cancel()
        await asyncio.to_thread(self.stops.close)

    @property
    def shared_namespace_agents(self) -> frozenset[AgentIdentity]:
        """The other agents whose active pods run in this agent's namespaces (a shared --namespace)."""
        return self.tenants.others_in(self.pods.cache.values())

    async def probe_member(self) -> str | None:
        """Does the member's API server answer (agent/member_health.py)? None when it does, else what failed.
        GET /readyz with a short timeout: anyone may read it (system:public-info-viewer), and it fails when the
        server cannot serve (its etcd gone) as well as when it does not answer. An answer that refuses us (401,
        403) is a server that answers: its RBAC is another matter, said where a call needs it."""
        try:
            await asyncio.to_thread(self.api.probe, "/readyz", timeout=PROBE_TIMEOUT_SECONDS)
        except KubeError as exc:
            if exc.status and exc.status < 500:
                return None
            words = " ".join(str(exc).split())  # /readyz lists its checks a line each
            return words if words.startswith("GET /readyz") else f"GET /readyz: {words}"
        return None

    def placements(self) -> dict[str, JobPhase]:
        out = {pid: phase for pid, (phase, _) in self._phases.items()}
        for pid in self._launched:
            out.setdefault(pid, JobPhase.PLACED)
        return out

    def nodes_of(self, placement_id: str) -> NodeList:
        """The nodes the placement's bound replicas run on, as last said: for the re-sync of an agent that
        restarted, whose own copy of what was said went with it (agent/backend.py, `SaysNodes`)."""
        return self.pod_nodes.of(placement_id)

    async def resize(self, placement_id: str, generation: int, replicas: int) -> str | None:
        """Shrink a placement's Deployment (or StatefulSet) in place: one merge patch of its replicas (resizing.py).
        An unknown, cancelled or ended placement, another generation or a count not smaller: nothing to do."""
        phase = self._phases.get(placement_id, (JobPhase.PLACED, ""))[0]
        if placement_id in self._cancelled or phase.is_terminal:
            return None
        obj = self._workload(placement_id) or await self._fetch(placement_id)
        if obj is None:
            return None
        patch = resize_patch(obj, generation=generation, replicas=replicas, cluster=self.cluster)
        adapter = adapter_of(obj)
        if not isinstance(patch, dict) or adapter is None:
            return patch if isinstance(patch, str) else None
        patch = self.drift.resized(placement_id, obj, patch)  # the record too: a restarted agent keeps the count
        meta = obj.get("metadata") or {}
        try:
            await asyncio.to_thread(self.api.patch, resource_of(adapter), str(meta.get("name", "")), patch,
                                    str(meta.get("namespace", "")))
        except NotFoundError:
            return None  # deleted meanwhile: its watch event reports it
        if (launched := self._launched.get(placement_id)) is not None:
            self._launched[placement_id] = replace(launched, replicas=replicas)
        log.info("placement %s: %s %s shrunk to %d replicas", placement_id, obj.get("kind"), key_name(obj), replicas)
        return None

    async def _fetch(self, placement_id: str) -> Obj | None:
        """A workload this process made whose watch event has not come yet: read from the API."""
        if placement_id not in self._launched:
            return None
        namespace = self.tenants.namespace_of(placement_id)
        for adapter in list(self.served.values()):
            if (adapter.api_version, adapter.kind) not in RESIZABLE:
                continue
            for name in names_of(adapter, placement_id):
                try:
                    return await asyncio.to_thread(self.api.get, resource_of(adapter), name, namespace)
                except NotFoundError:
                    continue
        return None

    async def logs(self, placement_id: str, replica: int, container: str, tail_lines: int,
                   limit_bytes: int) -> list[ReplicaOutput] | str:
        """The tail of the output of this agent's pods of a placement (agent.proto, LogsRequest;
        backends/kube/pod_logs.py): listed by the placement's label in its namespace, each read off the loop."""
        return await self._pod_logs(placement_id, replica, container, tail_lines, limit_bytes)

    async def logs_since(self, placement_id: str, replica: int, container: str, tail_lines: int, limit_bytes: int,
                         *, since: float | None) -> list[ReplicaOutput] | str:
        """As `logs`, each line dated by the kubelet (timestamps=true), from `since` on (sinceTime): a follow's."""
        return await self._pod_logs(placement_id, replica, container, tail_lines, limit_bytes,
                                    since_time="" if since is None else utc_seconds(since), timestamps=True)

    async def _pod_logs(self, placement_id: str, replica: int, container: str, tail_lines: int, limit_bytes: int,
                        *, since_time: str = "", timestamps: bool = False) -> list[ReplicaOutput] | str:
        namespace = self.tenants.namespace_of(placement_id)
        try:
            listed = await asyncio.to_thread(self.api.list, PODS, namespace,
                                             label_selector=self._pods_selector(placement_id))
        except KubeError as exc:
            return f"listing the pods of placement {placement_id} in namespace {namespace} failed: {exc}"
        pods, others = pod_logs.own_pods(listed.get("items") or [], placement_id, self.identity,
                                         self._placement_of_pod, self._identity_bearer)
        if not pods:
            return f"placement {placement_id}: no pods of this agent's in namespace {namespace}" + \
                (f" ({others} carry another agent's identity, or none: not read)" if others else
                 " (not started yet, or deleted: a finished Job's pods stay only until its TTL)")
        return await pod_logs.read_logs(self.api, namespace, pods, replica=replica, container=container,
                                        tail_lines=tail_lines, limit_bytes=limit_bytes, since_time=since_time,
                                        timestamps=timestamps)


__all__ = ["KubeBackend"]
