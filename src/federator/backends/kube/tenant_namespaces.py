"""Where each placement runs on its member: one namespace per tenant (`federator agent --namespace-per-queue`).

Kubernetes keeps tenants apart by namespace: a pod mounts only the Secrets,
ConfigMaps and PVCs of its own namespace, runs as one of its ServiceAccounts,
and a provider gives a namespace its own ResourceQuota, LimitRange and
NetworkPolicies. So with the flag, a placement of queue Q (the federator's
tenant: its queues are access-controlled by the federator's tenancy policy)
runs in `<--namespace>-<Q>` rather than in the one shared `--namespace`, as
MultiKueue and Karmada mirror a workload's namespace onto their members.

A namespace the agent finds missing it creates, labelled as its own
(`app.kubernetes.io/managed-by`, `federator.io/queue`) and with the Pod
Security Admission `enforce` label at the agent's own level, and gives it a
NetworkPolicy that admits ingress only from pods of the same namespace (a
gang's rendezvous is pod to pod within it). A namespace that exists already
(a provider made it, with that tenant's Secrets, PVCs and quota) is used only
when the provider marked it `federator.io/queue: Q`, exactly (an annotation, or
a label; a queue's name picks its namespace, and must not pick the provider's
own, nor another queue's), and then as it is:
never relabelled, only warned about (namespace_level.py). None is ever
deleted: it may hold the provider's objects for the tenant. In Kueue mode each
tenant namespace needs the LocalQueue the agent hands workloads to; the agent
makes a missing one, pointing at the ClusterQueue of the LocalQueue of the
same name in `--namespace`.

Without the flag every placement runs in `--namespace`, as before; nothing
here creates anything.

`tenant_namespace`, `namespace_object`, `same_namespace_policy` and
`local_queue_copy` are pure; `TenantNamespaces.ensure` does the blocking I/O
(call it in a thread) and answers "" or why the placement is refused.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from federator.backends.kube.agent_identity import AgentIdentity, identity_of
from federator.backends.kube.api import (
    NAMESPACES,
    ConflictError,
    ForbiddenError,
    KubeApi,
    KubeError,
    NotFoundError,
    Obj,
    Resource,
)
from federator.backends.kube.gang import KUEUE_LOCAL_QUEUES
from federator.backends.kube.namespace_level import ENFORCE_LABEL, ENFORCE_VERSION_LABEL, namespace_warnings
from federator.backends.kube.workloads import MANAGED_BY, MANAGED_BY_LABEL, placement_label
from federator.security.podsecurity import PodSecurity
from federator.security.podsecurity_member import admission_level

log = logging.getLogger("federator.agent.kube")

QUEUE_LABEL = "federator.io/queue"
NETWORK_POLICIES = Resource("networking.k8s.io/v1", "networkpolicies")
NETWORK_POLICY_NAME = "federator-same-namespace"
DEFAULT_QUEUE = "default"
RBAC_FIX = ("apply deploy/kubernetes/rbac-agent-namespace-per-queue.yaml in this cluster (or install the "
            "federator-agent chart with namespacePerQueue: true)")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def tenant_namespace(base: str, queue: str) -> str:
    """The namespace of queue `queue`'s placements: `<base>-<queue>` when that is a DNS label of at most 63
    characters; else a stable, readable form with a digest of both (`<base>-<queue, cut>-<8 hex>`), so two
    queues never share one and the same queue always lands in the same one."""
    queue = queue or DEFAULT_QUEUE
    name = f"{base}-{queue}"
    if _DNS_LABEL.match(name):
        return name
    digest = hashlib.sha256(f"{base}/{queue}".encode()).hexdigest()[:8]
    readable = _NOT_DNS.sub("-", name.lower()).strip("-")
    return f"{readable[:54].rstrip('-')}-{digest}"


def queue_label(queue: str) -> str:
    """`federator.io/queue`'s value: the queue's name, or a shortened unique form of a name no label can hold."""
    return placement_label(queue or DEFAULT_QUEUE)


def namespace_object(name: str, queue: str, policy: PodSecurity) -> Obj:
    """A tenant namespace as the agent creates it: labelled as the agent's, with its queue (the label for
    selectors, the annotation exact: `queue_of`), enforcing the agent's level (what Pod Security Admission can
    enforce of it: `admission_level`, as the chart labels `--namespace`)."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "annotations": {QUEUE_LABEL: queue or DEFAULT_QUEUE}, "labels": {
            MANAGED_BY_LABEL: MANAGED_BY, QUEUE_LABEL: queue_label(queue),
            ENFORCE_LABEL: str(admission_level(policy)), ENFORCE_VERSION_LABEL: "latest"}}}


def same_namespace_policy(namespace: str) -> Obj:
    """Ingress to every pod of the namespace only from pods of the same namespace: a gang's rendezvous works,
    other tenants' pods cannot reach it. NetworkPolicies add up, so a provider opens more with one of its own."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": NETWORK_POLICY_NAME, "namespace": namespace,
                         "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]}}


def local_queue_copy(template: Mapping[str, Any], namespace: str, queue: str) -> Obj:
    """The LocalQueue of `template` (the one in `--namespace`) for a tenant namespace: same name and ClusterQueue."""
    meta = template.get("metadata") or {}
    spec = {"clusterQueue": (template.get("spec") or {}).get("clusterQueue")}
    return {"apiVersion": KUEUE_LOCAL_QUEUES.group_version, "kind": "LocalQueue",
            "metadata": {"name": meta.get("name"), "namespace": namespace,
                         "labels": {MANAGED_BY_LABEL: MANAGED_BY, QUEUE_LABEL: queue_label(queue)}},
            "spec": spec}


def queue_of(obj: Mapping[str, Any]) -> str | None:
    """The queue a namespace (or a workload) is marked for, exactly: its `federator.io/queue` annotation, else its
    label of that key. Exactly, never a shortened form: two queues must never read as one. The hashed namespace
    of queue `ml.team-a` is `<base>-ml-team-a-<8 hex>`, which queue `ml-team-a-<8 hex>` names plainly, and a
    shortened label of a long name may be another queue's whole name."""
    meta = obj.get("metadata") or {}
    marked = (meta.get("annotations") or {}).get(QUEUE_LABEL, (meta.get("labels") or {}).get(QUEUE_LABEL))
    return None if marked is None else str(marked)


def not_the_queues(namespace: str, queue: str) -> str:
    """Why a namespace that exists but is not marked for `queue` is refused. A queue's name picks its namespace,
    so a queue named to match one of the provider's own (`<--namespace>-monitoring`) would otherwise run a tenant
    beside that namespace's Secrets and ServiceAccounts; a provider who makes a tenant's namespace beforehand
    says whose it is with the label. The fix comes early: a job's pending reason keeps a refusal's first 160
    characters (server/refusals.py), and a longer wording cut it off."""
    queue = queue or DEFAULT_QUEUE
    label = f"{QUEUE_LABEL}={queue}"
    how = "label" if queue_label(queue) == queue else "annotate"  # a name no label value holds: the annotation
    return (f"namespace not marked for queue {queue}: kubectl {how} namespace {namespace} {label} if it is that "
            "queue's; else delete it or run the agent with another --namespace")


def made_by_agent(namespace: Mapping[str, Any]) -> bool:
    """Whether the agent made this namespace (its labels say so): only then does the agent see to its
    NetworkPolicy; a provider's namespace is the provider's to police."""
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY and QUEUE_LABEL in labels


class TenantNamespaces:
    """Which namespace each placement runs in, and (per queue) seeing that it is ready to run there."""

    def __init__(self, api: KubeApi, *, base: str, per_queue: bool = False, pod_security: PodSecurity | None = None,
                 kueue_queue: str = "", own_namespace: str = "") -> None:
        self.api = api
        self.own_namespace = own_namespace  # the agent pod's: its credentials are there
        self.base = base
        self.per_queue = per_queue
        self.pod_security = pod_security or PodSecurity()
        self.kueue_queue = kueue_queue
        # Without per_queue: the tenant namespaces that still held placements at start (stranded.py), watched too.
        self.adopted: frozenset[str] = frozenset()
        self._where: dict[str, str] = {}  # placement id -> its namespace (launched here, or seen by a watch)
        # Every namespace a placement of this agent was launched to or seen in (never forgotten: a cancelled
        # placement's pods still terminate there). `holds` reads it.
        self._held: set[str] = {base}
        self._ready: dict[str, str] = {}  # namespaces made ready by this process, and for which queue
        self._lock = threading.Lock()  # ensure runs in threads: one namespace is made ready once at a time
        # Who this agent is (agent_identity.py): a workload marked as another agent's is never its own.
        # (A callable: the backend's, whose cluster name may be set after this is made.)
        self.identity: Callable[[], AgentIdentity] | None = None
        self._clashes: set[tuple[str, AgentIdentity]] = set()  # another agent's, seen in a namespace of this one's

    @property
    def watched(self) -> str | None:
        """The namespace the workload informers watch: `--namespace`, or every one (None) per queue, or when
        placements were left in tenant namespaces by an agent that ran per queue (`adopted`)."""
        return None if self.per_queue or self.adopted else self.base

    def of(self, queue: str) -> str:
        """The namespace of a placement of `queue`."""
        return tenant_namespace(self.base, queue) if self.per_queue else self.base

    def owns(self, obj: Mapping[str, Any]) -> bool:
        """Whether a workload the managed-by selector found is this agent's: in `--namespace`, or in the tenant
        namespace of the queue it is labelled with. Another agent's (another federation's, on the same member,
        with another `--namespace`) is neither, and is left alone: the federator would fence it as unknown."""
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        if not self.mine(obj):
            return False
        if namespace == self.base:
            return True
        queue = queue_of(obj)
        return (self.per_queue or namespace in self.adopted) and queue is not None and \
            namespace == tenant_namespace(self.base, queue)

    def mine(self, obj: Mapping[str, Any]) -> bool:
        """False for a workload or pod marked as another agent's (agent_identity.py); True otherwise (this agent's,
        or one made before agents marked theirs, which the namespace rules decide). Another agent's in a namespace
        this one uses is a clash: said at WARNING, once for each such agent and namespace."""
        identity = self.identity() if self.identity is not None else None
        mine = identity.owns(obj) if identity is not None else None
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        other = identity_of(obj)
        if mine and other is not None and identity is not None and other.federator != identity.federator and \
                (namespace, other) not in self._clashes:  # the same cluster and --namespace: its own, but said
            self._clashes.add((namespace, other))
            log.warning("workloads in namespace %s carry this agent's cluster and --namespace but another federator "
                        "(theirs: %s; this one: %s): taken as this agent's. If --server was changed, nothing is "
                        "wrong; if another federation's agent runs with the same cluster name and --namespace, the "
                        "two take each other's placements for their own: give each a --namespace of its own",
                        namespace, other.federator or "(not said)", identity.federator or "(not said)")
        if mine is not False:
            return True
        if other is not None and (namespace == self.base or namespace in self._held) and \
                (namespace, other) not in self._clashes:
            self._clashes.add((namespace, other))
            log.warning("another federator agent's placements run in namespace %s, which this agent uses too: "
                        "theirs (%s), this one (%s). Each leaves the other's alone, but both create, cancel and "
                        "count workloads there; give each agent a --namespace of its own (chart: workloadNamespace)",
                        namespace, other, identity)
        return False

    def others_in(self, pods: Iterable[Mapping[str, Any]]) -> frozenset[AgentIdentity]:
        """The other agents (`mine` False) whose pods are among `pods` in a namespace this agent uses."""
        identity = self.identity() if self.identity is not None else None
        if identity is None:
            return frozenset()
        out: set[AgentIdentity] = set()
        for pod in pods:
            namespace = str((pod.get("metadata") or {}).get("namespace") or "")
            if (namespace == self.base or namespace in self._held) and identity.owns(pod) is False:
                other = identity_of(pod)
                if other is not None:
                    out.add(other)
        return frozenset(out)

    def label(self, manifest: Obj, queue: str) -> Obj:
        """Per queue: the workload carries its queue (`owns` reads it back after a restart), exactly in an
        annotation, and as a label for selectors."""
        if self.per_queue:
            meta = manifest.setdefault("metadata", {})
            meta.setdefault("labels", {})[QUEUE_LABEL] = queue_label(queue)
            meta.setdefault("annotations", {})[QUEUE_LABEL] = queue or DEFAULT_QUEUE
        return manifest

    def holds(self, namespace: str) -> bool:
        """Whether this agent's placements run in `namespace`: `--namespace`, or one it launched to or saw one of
        its own workloads (`owns`) in. The pods are watched cluster-wide (capacity counts every pod); only those
        in such a namespace are this agent's placements. Another agent's on the same member (another federation,
        or a staging one, with another `--namespace`) are not, though their ids may end in the same cluster name."""
        return namespace in self._held

    def place(self, placement_id: str, namespace: str) -> None:
        self._where[placement_id] = namespace
        self._held.add(namespace)

    def seen(self, placement_id: str, obj: Mapping[str, Any]) -> None:
        """A watch saw the placement's workload: it runs where the object is."""
        namespace = (obj.get("metadata") or {}).get("namespace")
        if namespace:
            self._where[placement_id] = str(namespace)
            self._held.add(str(namespace))

    def namespace_of(self, placement_id: str) -> str:
        """Where the placement runs (`--namespace` for one this process never saw, as before the flag). Every delete
        of a cancel or fence goes here: only a namespace of this agent's (`holds`), never another agent's, whatever
        the id."""
        return self._where.get(placement_id, self.base)

    def forget(self, placement_id: str) -> None:
        self._where.pop(placement_id, None)

    def gone(self, namespace: str) -> None:
        """The member says the namespace is not there (deleted since): make it again at the next launch."""
        with self._lock:
            self._ready.pop(namespace, None)

    # -- blocking: call in a thread ---------------------------------------------

    def ensure(self, namespace: str, queue: str) -> str:
        """Make `namespace` ready for a placement of `queue`: "" when it is, else why the placement is refused
        (naming the namespace, and what to fix). Per queue only; without the flag there is nothing to make."""
        queue = queue or DEFAULT_QUEUE
        if not self.per_queue or self._ready.get(namespace) == queue:
            return ""
        if why := self.off_limits(namespace, queue):
            return why
        with self._lock:
            if namespace in self._ready:  # made ready for another queue whose name leads here too
                return "" if self._ready[namespace] == queue else not_the_queues(namespace, queue)
            why = self._ensure_namespace(namespace, queue) or self._ensure_local_queue(namespace, queue)
            if not why:
                self._ready[namespace] = queue
            return why

    def off_limits(self, namespace: str, queue: str) -> str:
        """Why no tenant may run in `namespace` ("" when one may): the agent's own (its client certificate and
        ServiceAccount token are there, and its cluster-wide RBAC would not stop a workload landing beside
        them), and Kubernetes' own (`default`, `kube-*`). A queue reaches one only by a name made to:
        `--namespace` w and queue `system` would be `w-system`."""
        if namespace == self.own_namespace:
            what = "the agent's own namespace (its credentials are there)"
        elif namespace == "default" or namespace.startswith("kube-"):
            what = "a namespace of Kubernetes itself"
        else:
            return ""
        return (f"queue {queue or DEFAULT_QUEUE} would run in namespace {namespace}, {what}: refused; run the agent "
                f"with another --namespace, or install it in another namespace")

    def _ensure_namespace(self, namespace: str, queue: str) -> str:
        try:
            found = self.api.get(NAMESPACES, namespace)
        except NotFoundError:
            found = None
        except KubeError as exc:
            return _refused(f"reading namespace {namespace} (queue {queue or DEFAULT_QUEUE})", namespace, exc)
        if found is None:
            try:
                found = self.api.create(NAMESPACES, namespace_object(namespace, queue, self.pod_security))
                log.info("created namespace %s for the placements of queue %s", namespace, queue or DEFAULT_QUEUE)
            except ConflictError:  # made meanwhile (by a provider, or another launch): read what it is
                try:
                    found = self.api.get(NAMESPACES, namespace)
                except KubeError as exc:
                    return _refused(f"reading namespace {namespace} (queue {queue or DEFAULT_QUEUE})", namespace,
                                    exc)
            except KubeError as exc:
                return _refused(f"creating namespace {namespace} (queue {queue or DEFAULT_QUEUE})", namespace, exc)
        if queue_of(found) != queue:
            return not_the_queues(namespace, queue)
        if not made_by_agent(found):
            for warning in namespace_warnings(found, self.pod_security):
                log.warning("%s", warning)
            return ""
        try:
            self.api.create(NETWORK_POLICIES, same_namespace_policy(namespace), namespace)
        except ConflictError:
            pass
        except KubeError as exc:
            return _refused(f"creating NetworkPolicy {NETWORK_POLICY_NAME}", namespace, exc)
        return ""

    def _ensure_local_queue(self, namespace: str, queue: str) -> str:
        if not self.kueue_queue:
            return ""
        name = self.kueue_queue
        try:
            self.api.get(KUEUE_LOCAL_QUEUES, name, namespace)
            return ""
        except NotFoundError:
            pass
        except KubeError as exc:
            return _refused(f"reading LocalQueue {namespace}/{name}", namespace, exc)
        try:
            template = self.api.get(KUEUE_LOCAL_QUEUES, name, self.base)
        except NotFoundError:
            return (f"--kueue-queue: LocalQueue {self.base}/{name} does not exist, so the agent cannot give "
                    f"namespace {namespace} (queue {queue or DEFAULT_QUEUE}) a LocalQueue {name} on the same "
                    f"ClusterQueue: create LocalQueue {name} in {self.base}, or one in {namespace} "
                    f"({namespace}/{name})")
        except KubeError as exc:
            return _refused(f"reading LocalQueue {self.base}/{name}", namespace, exc)
        try:
            self.api.create(KUEUE_LOCAL_QUEUES, local_queue_copy(template, namespace, queue), namespace)
            log.info("created LocalQueue %s/%s on ClusterQueue %s", namespace, name,
                     (template.get("spec") or {}).get("clusterQueue"))
        except ConflictError:
            pass
        except KubeError as exc:
            return _refused(f"creating LocalQueue {namespace}/{name}", namespace, exc)
        return ""


def _refused(what: str, namespace: str, exc: KubeError) -> str:
    """A refusal for a tenant namespace the member would not make ready: the API server's words first (the
    federator keeps only a refusal's first 160 characters), and the fix when it is the agent's RBAC."""
    status = f"HTTP {exc.status} {exc.reason}".rstrip() if exc.status else "no answer"
    out = f"the member cluster refused {what}: {exc.message or exc} ({status}; {namespace})"
    if isinstance(exc, ForbiddenError):
        out += f" (--namespace-per-queue needs the agent's cluster-wide RBAC: {RBAC_FIX})"
    return out


__all__ = ["DEFAULT_QUEUE", "NETWORK_POLICIES", "NETWORK_POLICY_NAME", "QUEUE_LABEL", "TenantNamespaces",
           "local_queue_copy", "made_by_agent", "namespace_object", "queue_label", "same_namespace_policy",
           "tenant_namespace"]
