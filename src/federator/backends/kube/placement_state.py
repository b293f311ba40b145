"""What the Kubernetes backend knows of each placement, and the lookups every part of it shares.

Why a module of its own: `KubeBackend` (backend.py) is split by concern (launching a placement, judging its phase,
stopping it, the informer events, the capacity report), and each concern is a class here that the backend is made
of. They share one set of state: the informers' caches, the phase last reported per placement, the placements
launched, cancelled and faulted. `PlacementState` declares that state, set by `KubeBackend.__init__`, so each concern
is typed against it, and holds what each of them reads it with: a placement's workload and pods, its replica count,
whose a pod is, and `_report`, the one way a phase is told to the agent. All of it runs on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any

from federator.agent.backend import UpdateCallback
from federator.backends.kube.admission import gang_size
from federator.backends.kube.agent_identity import AgentIdentity
from federator.backends.kube.api import KubeApi, Obj
from federator.backends.kube.claims import DraClaims
from federator.backends.kube.create_refusals import CreateRefusals
from federator.backends.kube.discovery import Discovery
from federator.backends.kube.drift import DriftGuard
from federator.backends.kube.gang import GangGuard
from federator.backends.kube.informer import Informer
from federator.backends.kube.model_clash import ModelClashes
from federator.backends.kube.pod_faults import PodFault
from federator.backends.kube.pod_nodes import NodeList, PodNodes
from federator.backends.kube.resource_quotas import ResourceQuotas
from federator.backends.kube.stops import StopNotices
from federator.backends.kube.tenant_namespaces import TenantNamespaces
from federator.backends.kube.unlabelled import UnlabelledAccelerators
from federator.backends.kube.unsupported import UnsupportedAccelerators
from federator.backends.kube.workloads import (
    PLACEMENT_LABEL,
    TRAINJOB_KEY,
    TRAINJOB_POD_LABEL,
    WorkloadAdapter,
    adapter_of,
    placement_label,
    placement_of,
    trainjob_of_pod,
    workload_name,
)
from federator.model import JobKind, JobPhase, Placement
from federator.security.podsecurity import PodSecurity


def serves(workload: Mapping[str, Any]) -> bool:
    """An inference kind: it never finishes, so fewer replicas running than asked is a shortfall to tell the
    federator of, not replicas finishing one by one."""
    adapter = adapter_of(workload)
    return adapter is not None and adapter.job_kind is JobKind.INFERENCE


def names_of(adapter: WorkloadAdapter, pid: str) -> tuple[str, ...]:
    """The names a placement's object of this kind may have: its kind's, and the one every kind had before
    kinds had budgets of their own (an object an older agent made, still running)."""
    name, before = adapter.member_name(pid), workload_name(pid)
    return (name,) if name == before else (name, before)


def key_name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class PlacementState:
    """The state the backend's concerns share (set by `KubeBackend.__init__`, where each is explained) and the
    lookups over it."""

    api: KubeApi
    cluster: str
    namespace: str
    federator: str
    pod_security: PodSecurity
    discovery: Discovery
    tenants: TenantNamespaces
    tolerated_taints: frozenset[str]
    finished_ttl_seconds: int | None
    cluster_domain: str
    nodes: Informer
    pods: Informer
    served: dict[str, WorkloadAdapter]
    workloads: dict[str, Informer]
    gang: GangGuard
    dra: DraClaims
    stops: StopNotices
    drift: DriftGuard
    unlabelled: UnlabelledAccelerators
    unsupported: UnsupportedAccelerators
    clashes: ModelClashes
    quotas: ResourceQuotas
    refusals: CreateRefusals
    pod_nodes: PodNodes
    _on_update: UpdateCallback
    _nodes_gone: set[str]
    _node_unready: dict[str, bool]
    _phases: dict[str, tuple[JobPhase, str]]
    _counts: dict[str, tuple[int, int]]
    _faults: dict[str, PodFault]
    _pods_read: dict[str, bool]
    _launched: dict[str, Placement]
    _digests: dict[str, str]
    _seals: dict[str, str]
    _cancelled: set[str]
    _retries: set[asyncio.Task[None]]
    _sequence: int
    _started: bool
    _pod_relists: int

    @property
    def identity(self) -> AgentIdentity:
        """Who this agent is, as written on every workload and pod it makes (agent_identity.py)."""
        return AgentIdentity(self.cluster, self.namespace, self.federator)

    def _replicas(self, pid: str) -> int:
        """Pods the placement runs here (all its pod sets), as its workload says."""
        workload = self._workload(pid)
        if workload is not None:
            return gang_size(workload)
        placement = self._launched.get(pid)
        return placement.replicas if placement else 1

    def _workload(self, pid: str) -> Obj | None:
        namespace = self.tenants.namespace_of(pid)
        for key, informer in self.workloads.items():
            for name in names_of(self.served[key], pid):
                if (obj := informer.cache.get(f"{namespace}/{name}")) is not None:
                    return obj
        return None

    def _pods_of(self, pid: str) -> list[Mapping[str, Any]]:
        return [p for p in self.pods.cache.values() if self._placement_of_pod(p) == pid]

    def _pods_selector(self, pid: str) -> str:
        """The label selector of a placement's pods: its placement label, or for a TrainJob (whose pods carry none:
        Trainer v2 puts `spec.labels` on the JobSet only) the JobSet controller's label naming the TrainJob. Before,
        a TrainJob's pods were never found: `federator logs` said "no pods", and a failed one's exit codes went
        unread."""
        informer, adapter = self.workloads.get(TRAINJOB_KEY), self.served.get(TRAINJOB_KEY)
        if informer is not None and adapter is not None:
            namespace = self.tenants.namespace_of(pid)
            for name in names_of(adapter, pid):
                if f"{namespace}/{name}" in informer.cache:
                    return f"{TRAINJOB_POD_LABEL}={name}"
        return f"{PLACEMENT_LABEL}={placement_label(pid)}"

    def _identity_bearer(self, pod: Mapping[str, Any]) -> Mapping[str, Any]:
        """What says whose a pod is: the pod, or for a TrainJob's pod (which carries no identity) its TrainJob."""
        name, informer = trainjob_of_pod(pod), self.workloads.get(TRAINJOB_KEY)
        if name and not placement_of(pod) and informer is not None:
            return informer.cache.get(f"{(pod.get('metadata') or {}).get('namespace')}/{name}") or pod
        return pod

    def _placement_of_pod(self, pod: Mapping[str, Any]) -> str:
        """The placement a pod runs: its annotation, or for a TrainJob's pods (which carry none) their TrainJob's;
        "" for a pod outside this agent's namespaces (`TenantNamespaces.holds`): another agent's on this member,
        whose placements this one must neither report, nor follow, nor have fenced (outside provider QA)."""
        if pid := placement_of(pod):
            return pid if self.tenants.holds(str((pod.get("metadata") or {}).get("namespace") or "")) \
                and self.tenants.mine(pod) else ""
        name = trainjob_of_pod(pod)
        informer = self.workloads.get(TRAINJOB_KEY)
        if not name or informer is None:
            return ""
        trainjob = informer.cache.get(f"{(pod.get('metadata') or {}).get('namespace')}/{name}")  # ours only
        return placement_of(trainjob) if trainjob is not None else ""

    def _background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task kept until done (`stop` cancels it)."""
        task = asyncio.get_running_loop().create_task(work)
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)
        return task

    def _report(self, pid: str, phase: JobPhase, message: str, counts: tuple[int, int] | None = None,
                nodes: NodeList = (), *, ended_at: float | None = None) -> None:
        """Tell the agent; `counts` (running, ready) of a serving placement ride along (JobUpdate.replicas_running
        and replicas_ready), a kind that does not serve says none; `nodes`, where its bound replicas run
        (JobUpdate.nodes), () when none is bound (the agent keeps what was said); `ended_at`, when a final phase
        was reached on the member's clock (None: now, or unknown)."""
        self._phases[pid] = (phase, message)
        if counts is None:
            self._counts.pop(pid, None)
        else:
            self._counts[pid] = counts
        if phase.is_terminal:
            self.pod_nodes.forget(pid)
        else:
            self.pod_nodes.said(pid, nodes)
        if self._started:
            if counts is None:
                self._on_update(pid, phase, message, nodes=nodes, ended_at=ended_at)
            else:
                self._on_update(pid, phase, message, running=counts[0], ready=counts[1], nodes=nodes)
