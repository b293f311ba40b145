"""Whose namespace it is: an agent's claim on its `--namespace`, a Lease there naming the federation it serves.

Why: a provider's cluster may serve two networks (a national one and a regional one), each with its own federator
and its own agent there. Given one cluster name and one `--namespace` (the default `federator-workloads`), the two
agents found each other's workloads (they carry the same labels, and the identity written on them, cluster and
`--namespace`, agent_identity.py, is the same) and each reported the other's to its federator, which cancelled them
as orphans (at once, or after `--orphan-grace`): one network killed the other's training, and nothing said why.

Decided:
- At start, before it reads a workload, the agent takes the Lease `federator-agent-<cluster>` in its `--namespace`
  (coordination.k8s.io/v1; labelled `app.kubernetes.io/managed-by: federator`, so the write guard lets it write it),
  holderIdentity the federation: its `--server`, as given (the address already written on each of its workloads,
  `federator.io/federator`). Annotations name the cluster and the host (the pod) that holds it, for `kubectl`.
- An agent of another federation that finds it held by a live holder does not run there: it waits, said once at
  ERROR naming the namespace, the other federation and the fix (another `--namespace`), with /readyz failing on
  those words and `federator_agent_namespace_claim{state="refused"}` 1. It never connects to its federator meanwhile
  (its federator shows the cluster never connected, or Partitioned): reading no workload, it cancels none.
- The claim belongs to the federation, not to a process: a restarted agent, a second replica or the next pod of a
  rollout of the same federation takes it at once (its holder is theirs), so replicas never trip over it.
- Live is "renewed": the holder rewrites the Lease every RENEW_SECONDS; another federation takes it over only after
  seeing it unchanged for its leaseDurationSeconds (CLAIM_SECONDS, 10 minutes) on its own clock, as client-go's
  leader election does (clock skew between agents does not matter). A removed federation's claim thus blocks for
  10 minutes at most; deleting the Lease hands it over at once. Long on purpose: an agent whose pod is rescheduled
  after its node died (5 minutes of the default tolerations) must find its namespace still its own, since a waiting
  agent of the other federation would take the workloads for its own the moment it took the claim.
- A holder never gives it up: not when it stops cleanly (a rollout would hand the namespace to the waiting agent of
  the other federation), not when a renewal fails (the API server away: the agent can do nothing there anyway, and
  it is another federation's renewal that would have to wait). Finding its claim taken (it could not renew for 10
  minutes) ends the agent with the refusal's words; restarted, it waits as any other.
- An agent whose RBAC has no Lease rule (from before 0.14.0) or whose `--namespace` does not exist runs unclaimed,
  said at WARNING with the fix, `state="unchecked"`; it keeps trying, and holds the claim once it can.
- The federation is named by its `--server`: an operator who changes it (a new DNS name for the same federator)
  restarts the agent into another federation's name, and waits out the old claim (or deletes the Lease; said in
  the refusal). A CA fingerprint would change at a CA rotation instead, and two federations may share a CA.
- The workloads' own identity is not compared by federation (agent_identity.py): a `--server` changed would then
  disown every running workload, left running unseen while the federator placed its job again. The claim keeps two
  federations from one namespace; the workloads keep saying whose they are, for the WARNING of tenant_namespaces.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from federator.backends.kube.api import LEASES, ConflictError, ForbiddenError, KubeApi, KubeError, NotFoundError, Obj
from federator.backends.kube.leader import Observed
from federator.backends.kube.workloads.common import MANAGED_BY, MANAGED_BY_LABEL
from federator.podtemplates import CLUSTER_ANNOTATION, FEDERATOR_ANNOTATION
from federator.timestamps import utc_micro

log = logging.getLogger("federator.agent.kube")

CLAIM_SECONDS = 600
"""How long a claim not renewed blocks another federation (its leaseDurationSeconds): see the module."""
RENEW_SECONDS = 30.0
"""How often the holder renews, and a waiting agent looks again."""
HOST_ANNOTATION = "federator.io/agent-host"
"""The host (in a pod: the pod's name) of the agent that last wrote the claim."""
LEASE_PREFIX = "federator-agent"


class ClaimState(StrEnum):
    """What `federator_agent_namespace_claim{state}` says."""

    HELD = "held"  # this agent's federation holds the namespace
    REFUSED = "refused"  # another federation's agent holds it: this one waits (or, running, has ended)
    UNCHECKED = "unchecked"  # no claim could be written (no Lease rule in the RBAC, no such namespace): runs as before


ClaimSaid = Callable[[ClaimState, str], None]
"""Told each change of the claim's state, with the problem an SRE reads ("" when held)."""


class NamespaceTaken(KubeError):
    """Another federation's agent holds the namespace this running agent held: it must stop acting there."""


def lease_name(cluster: str) -> str:
    """The claim's Lease: one per cluster name and namespace (two agents of one federation under two cluster names
    share a namespace safely: their workloads carry their cluster, agent_identity.py)."""
    return f"{LEASE_PREFIX}-{cluster}" if cluster else LEASE_PREFIX


def decide(lease: Mapping[str, Any] | None, *, federation: str, observed: Observed, now_mono: float,
           now_wall: float, seconds: int, meta: Obj) -> Obj | None:
    """The Lease to write to hold the claim, or None while another federation's claim is live (renewed within its
    leaseDurationSeconds, as this agent has watched it on its own clock). `meta`: the Lease's name, namespace,
    labels and annotations."""
    spec: Mapping[str, Any] = (lease or {}).get("spec") or {}
    holder = str(spec.get("holderIdentity") or "")
    record = tuple(spec.get(k) for k in ("holderIdentity", "renewTime", "acquireTime", "leaseTransitions"))
    if record != observed.record:
        observed.record, observed.at = record, now_mono
    mine = holder == federation
    lapsed = not holder or now_mono - observed.at > float(spec.get("leaseDurationSeconds") or seconds)
    if not mine and not lapsed:
        return None
    body: Obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": dict(meta), "spec": {
        "holderIdentity": federation,
        "leaseDurationSeconds": seconds,
        "acquireTime": spec.get("acquireTime") if mine else utc_micro(now_wall),
        "renewTime": utc_micro(now_wall),
        "leaseTransitions": int(spec.get("leaseTransitions") or 0) + (0 if mine or not holder else 1),
    }}
    if lease is not None:
        body["metadata"]["resourceVersion"] = (lease.get("metadata") or {}).get("resourceVersion")
    return body


def refusal(*, namespace: str, name: str, lease: Mapping[str, Any], federation: str, seconds: float) -> str:
    """What an agent refused the namespace says: where, who holds it, and the fix."""
    spec = lease.get("spec") or {}
    notes = (lease.get("metadata") or {}).get("annotations") or {}
    held = float(spec.get("leaseDurationSeconds") or seconds)
    return (f"namespace {namespace} is claimed by another federation's agent (Lease {namespace}/{name}: federator "
            f"{spec.get('holderIdentity')}, cluster {notes.get(CLUSTER_ANNOTATION) or '(not said)'}, host "
            f"{notes.get(HOST_ANNOTATION) or '(not said)'}, renewed {spec.get('renewTime') or '(never)'}); this "
            f"agent reports to {federation or '(not said)'}. Two agents with one cluster name and --namespace take "
            "each other's workloads for their own, so this one does not run there: give it a --namespace of its "
            "own (chart: workloadNamespace). If that federation is gone, its claim lapses "
            f"{held:g}s after its last renewal, or delete the Lease (kubectl -n {namespace} delete lease {name}) "
            "to take it now")


class NamespaceClaim:
    """One agent's claim on its namespace (see the module): `take` at start, `keep` while it runs."""

    def __init__(self, api: KubeApi, *, namespace: str, cluster: str, federation: str,
                 seconds: int = CLAIM_SECONDS, retry: float = RENEW_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        if not 0 < retry < seconds:
            raise ValueError(f"namespace claim: need 0 < retry < lease seconds, got {retry:g} / {seconds}")
        self.api = api
        self.namespace = namespace
        self.name = lease_name(cluster)
        self.federation = federation
        self.seconds = seconds
        self.retry = retry
        self.monotonic, self.wall, self.sleep = monotonic, wall, sleep
        self.meta: Obj = {"name": self.name, "namespace": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                          "annotations": {CLUSTER_ANNOTATION: cluster, FEDERATOR_ANNOTATION: federation,
                                          HOST_ANNOTATION: socket.gethostname()}}
        self.observed = Observed()
        self.state: ClaimState | None = None
        self.problem = ""
        self.said: ClaimSaid = lambda state, problem: None  # the agent's metrics and /readyz (agent/backend.py)
        self._taken_from = ""  # the other federation whose lapsed claim the last write took over

    def round(self) -> ClaimState | None:
        """One look, and a write if the claim is (or may become) this federation's (blocking: run it in a thread).
        None: another writer came first, look again."""
        try:
            lease: Obj | None = self.api.get(LEASES, self.name, self.namespace)
        except NotFoundError:
            lease = None
        except ForbiddenError as exc:
            return self._unchecked(f"the agent may not read Leases in namespace {self.namespace} ({exc}): it runs "
                                   "without claiming it, and another federation's agent given the same cluster "
                                   "name and --namespace would take its workloads for its own. Grant it get, create "
                                   "and update on leases there (as the federator-agent chart 0.13.0 does, or "
                                   "deploy/kubernetes/rbac-agent.yaml's Role federator-agent-namespace-claim)")
        desired = decide(lease, federation=self.federation, observed=self.observed, now_mono=self.monotonic(),
                         now_wall=self.wall(), seconds=self.seconds, meta=self.meta)
        if desired is None:
            assert lease is not None
            self.problem = refusal(namespace=self.namespace, name=self.name, lease=lease,
                                   federation=self.federation, seconds=self.seconds)
            return ClaimState.REFUSED
        holder = str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")
        try:
            if lease is None:
                self.api.create(LEASES, desired, self.namespace)
            else:
                self.api.replace(LEASES, self.name, desired, self.namespace)
        except ConflictError:
            return None
        except NotFoundError:
            return self._unchecked(f"namespace {self.namespace} does not exist: the agent runs without claiming it "
                                   "(create it, as the federator-agent chart does)")
        except ForbiddenError as exc:
            return self._unchecked(f"the agent may not write its claim, Lease {self.namespace}/{self.name} ({exc}): "
                                   "grant it get, create and update on leases in that namespace (as "
                                   "the federator-agent chart 0.13.0 does, or deploy/kubernetes/rbac-agent.yaml's "
                                   "Role federator-agent-namespace-claim)")
        self._taken_from = holder if holder and holder != self.federation else ""
        self.problem = ""
        return ClaimState.HELD

    def _unchecked(self, problem: str) -> ClaimState:
        self.problem = problem
        return ClaimState.UNCHECKED

    async def take(self) -> None:
        """Wait until this federation holds the namespace (or it cannot be claimed: unchecked, said). An API server
        that does not answer ends the wait with its error, as any other request of the agent's start."""
        refused_by = None
        while True:
            try:
                state = await asyncio.to_thread(self.round)
            except KubeError as exc:  # the API server away at start: the agent's start fails, as on any request
                raise KubeError(exc.status, f"claiming namespace {self.namespace} (Lease {self.name}): "
                                            f"{exc.message}", reason=exc.reason) from None
            if state is ClaimState.REFUSED:
                holder = self.observed.record[0] if self.observed.record else None
                if holder != refused_by:  # said once for each holder
                    refused_by = holder
                    log.error("%s. Waiting: looking again every %gs", self.problem, self.retry)
                self._say(state)
            elif state is not None:
                self._say(state)
                return
            await self.sleep(self.retry)

    async def keep(self) -> None:
        """Renew while the agent runs; raise NamespaceTaken when another federation has taken the claim over."""
        failing = False
        while True:
            await self.sleep(self.retry)
            try:
                state = await asyncio.to_thread(self.round)
            except KubeError as exc:
                if not failing:
                    log.warning("namespace claim: renewing Lease %s/%s: %s (the claim lapses for others %ds "
                                "after its last renewal)", self.namespace, self.name, exc, self.seconds)
                failing = True
                continue
            failing = False
            if state is ClaimState.REFUSED:
                held = self.state is ClaimState.HELD
                self._say(state)
                raise NamespaceTaken(0, f"{self.problem}. " + (
                    f"This agent held it until it could not renew the claim for {self.seconds}s" if held else
                    "This agent ran there unclaimed (it could not write the Lease)") + "; it stops acting there")
            if state is not None:
                self._say(state)

    def _say(self, state: ClaimState) -> None:
        if state is self.state:
            return
        before, self.state = self.state, state
        if state is ClaimState.HELD:
            if self._taken_from:
                log.warning("namespace claim: took namespace %s over from federator %s, whose claim was not renewed "
                            "for %gs: its workloads there, if any, are now this federation's to keep or cancel",
                            self.namespace, self._taken_from, float(self.seconds))
            elif before is not None:
                log.info("namespace claim: namespace %s is this federation's again (Lease %s)", self.namespace,
                         self.name)
            else:
                log.info("namespace claim: namespace %s held for federator %s (Lease %s)", self.namespace,
                         self.federation, self.name)
        elif state is ClaimState.UNCHECKED:
            log.warning("namespace claim: %s", self.problem)
        self.said(state, self.problem)


__all__ = ["CLAIM_SECONDS", "HOST_ANNOTATION", "RENEW_SECONDS", "ClaimSaid", "ClaimState", "NamespaceClaim",
           "NamespaceTaken", "decide", "lease_name", "refusal"]
