"""One namespace per tenant on a member (`federator agent --namespace-per-queue`): names, making them ready, and the
backend running, watching and deleting each placement in its queue's namespace."""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from dataclasses import replace
from typing import Any

import pytest

from federator.backends.kube.api import ConflictError, ForbiddenError, KubeError, NotFoundError
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED, DELETED
from federator.backends.kube.tenant_namespaces import (
    NETWORK_POLICY_NAME,
    QUEUE_LABEL,
    TenantNamespaces,
    queue_label,
    tenant_namespace,
)
from federator.backends.kube.workloads import PLACEMENT_ANNOTATION, build_workload
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources
from federator.security.podsecurity import PodSecurity, PodSecurityLevel
from federator.server.refusals import WHY_CHARS

BASE = "federator-workloads"
PID = "train-abc.g1.a"
SPEC = JobSpec(name="train", kind=JobKind.TRAINING, replicas=2, resources=Resources(cpu_milli=1000),
               queue="research")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class MemberApi:
    """A member's API server in memory: objects by (plural, namespace, name); `refuse` maps a verb and plural to
    the error the server answers; every write is recorded."""

    server = "fake"

    def __init__(self, *, refuse: dict[tuple[str, str], KubeError] | None = None) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.refuse = refuse or {}
        self.writes: list[tuple[str, str, str, str]] = []  # verb, plural, namespace, name

    def _check(self, verb: str, plural: str) -> None:
        if (exc := self.refuse.get((verb, plural))) is not None:
            raise exc

    def add(self, plural: str, obj: dict[str, Any], namespace: str = "") -> None:
        self.objects[(plural, namespace, obj["metadata"]["name"])] = obj

    def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        self._check("get", res.plural)
        try:
            return copy.deepcopy(self.objects[(res.plural, namespace or "", name)])
        except KeyError:
            raise NotFoundError(404, f'{res.plural} "{name}" not found', reason="NotFound") from None

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self._check("create", res.plural)
        key = (res.plural, namespace or "", body["metadata"]["name"])
        if key in self.objects:
            raise ConflictError(409, "already exists", reason="AlreadyExists")
        obj = copy.deepcopy(body)
        obj["metadata"] = {**obj["metadata"], "uid": f"uid-{len(self.writes)}"}
        self.objects[key] = obj
        self.writes.append(("create", res.plural, namespace or "", body["metadata"]["name"]))
        return copy.deepcopy(obj)

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self.writes.append(("patch", res.plural, namespace or "", name))
        return {}

    def delete(self, res: Any, name: str, namespace: str | None = None, *, propagation: str = "Background") -> None:
        self.objects.pop((res.plural, namespace or "", name), None)
        self.writes.append(("delete", res.plural, namespace or "", name))

    def written(self, verb: str) -> list[tuple[str, str, str]]:
        return [(p, ns, n) for v, p, ns, n in self.writes if v == verb]


def placement(pid: str = PID, job: str = "train-abc") -> Placement:
    return Placement(PlacementId(pid), JobId(job), "a", "east", 2, "", 1)


def tenants(api: MemberApi, **kw: Any) -> TenantNamespaces:
    return TenantNamespaces(api, **{"base": BASE, "per_queue": True, **kw})  # type: ignore[arg-type]


def backend(api: MemberApi, **kw: Any) -> tuple[KubeBackend, list[tuple[str, JobPhase, str]]]:
    b = KubeBackend(api, **{"namespace": BASE, "namespace_per_queue": True, **kw})  # type: ignore[arg-type]
    updates: list[tuple[str, JobPhase, str]] = []
    b._on_update = lambda pid, phase, msg, **_: updates.append((pid, phase, msg))
    b._started = True
    return b, updates


# -- names ------------------------------------------------------------------------


@pytest.mark.parametrize(("base", "queue", "expected"), [
    pytest.param(BASE, "research", "federator-workloads-research", id="queue-appended"),
    pytest.param(BASE, "", "federator-workloads-default", id="no-queue-is-default"),
    pytest.param("w", "team-a", "w-team-a", id="short-base"),
])
def test_a_queue_runs_in_its_own_namespace_named_after_it(base: str, queue: str, expected: str) -> None:
    assert tenant_namespace(base, queue) == expected


@pytest.mark.parametrize(("base", "queue"), [
    pytest.param(BASE, "ml.team-a", id="a-dot-is-no-dns-label"),
    pytest.param(BASE, "q" * 60, id="past-63-characters"),
    pytest.param("b" * 63, "research", id="a-63-character-base"),
])
def test_a_name_no_namespace_can_hold_gets_a_stable_readable_hashed_form(base: str, queue: str) -> None:
    name = tenant_namespace(base, queue)
    assert DNS_LABEL.match(name) and len(name) <= 63
    assert name == tenant_namespace(base, queue)  # stable: the same queue lands in the same namespace after a restart
    assert name.startswith(base[:20]) and re.search(r"-[0-9a-f]{8}$", name)  # readable, then the digest
    assert tenant_namespace(base, queue + "x") != name  # and two queues never share one


def test_without_the_flag_every_placement_runs_in_the_one_namespace_and_nothing_is_made() -> None:
    api = MemberApi()
    t = tenants(api, per_queue=False)
    assert t.of("research") == BASE and t.watched == BASE
    assert t.ensure(BASE, "research") == ""
    assert api.writes == []


# -- making a namespace ready -----------------------------------------------------------


@pytest.mark.parametrize(("policy", "enforced"), [
    pytest.param(PodSecurity(), "baseline", id="baseline"),
    pytest.param(PodSecurity(level=PodSecurityLevel.RESTRICTED), "restricted", id="restricted"),
    pytest.param(PodSecurity(allowed_capabilities=frozenset({"IPC_LOCK"})), "privileged",
                 id="allowances-beyond-baseline"),
])
def test_a_missing_namespace_is_made_labelled_and_policed(policy: PodSecurity, enforced: str) -> None:
    api = MemberApi()
    t = tenants(api, pod_security=policy)
    namespace = t.of("research")
    assert t.ensure(namespace, "research") == ""
    labels = api.objects[("namespaces", "", namespace)]["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/managed-by": "federator", QUEUE_LABEL: "research",
                      "pod-security.kubernetes.io/enforce": enforced,
                      "pod-security.kubernetes.io/enforce-version": "latest"}
    netpol = api.objects[("networkpolicies", namespace, NETWORK_POLICY_NAME)]
    assert netpol["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"],
                              "ingress": [{"from": [{"podSelector": {}}]}]}  # from pods of this namespace only
    assert t.ensure(namespace, "research") == ""  # once made ready, nothing more is asked of the API server
    assert len(api.writes) == 2


def test_a_providers_namespace_is_used_as_it_is_and_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    api = MemberApi()
    own = {"metadata": {"name": f"{BASE}-research", "labels": {"tier": "gold", "federator.io/queue": "research"}}}
    api.add("namespaces", own)
    with caplog.at_level(logging.WARNING, "federator.agent.kube"):
        assert tenants(api).ensure(f"{BASE}-research", "research") == ""
    assert api.writes == []  # not relabelled, no NetworkPolicy: the provider polices its own namespace
    assert api.objects[("namespaces", "", f"{BASE}-research")] == own
    assert f"namespace {BASE}-research has no pod-security.kubernetes.io/enforce label" in caplog.text


def test_a_namespace_the_agent_made_gets_its_network_policy_back_after_a_failed_launch() -> None:
    api = MemberApi(refuse={("create", "networkpolicies"): ForbiddenError(403, "no", reason="Forbidden")})
    t = tenants(api)
    why = t.ensure(f"{BASE}-research", "research")
    assert why.startswith(f"the member cluster refused creating NetworkPolicy {NETWORK_POLICY_NAME}: no "
                          f"(HTTP 403 Forbidden; {BASE}-research)")
    assert "rbac-agent-namespace-per-queue.yaml" in why
    api.refuse.clear()
    assert t.ensure(f"{BASE}-research", "research") == ""  # the namespace is there now, and the agent's
    assert ("networkpolicies", f"{BASE}-research", NETWORK_POLICY_NAME) in api.written("create")


def test_a_namespace_the_agent_may_not_create_refuses_the_placement_naming_it_and_the_fix() -> None:
    api = MemberApi(refuse={("create", "namespaces"): ForbiddenError(
        403, 'namespaces is forbidden: User "agent" cannot create resource "namespaces"', reason="Forbidden")})
    why = tenants(api).ensure(f"{BASE}-research", "research")
    assert why.startswith(f"the member cluster refused creating namespace {BASE}-research (queue research): "
                          'namespaces is forbidden: User "agent" cannot create resource "namespaces" (HTTP 403 '
                          f"Forbidden; {BASE}-research)")
    assert why.endswith("(or install the federator-agent chart with namespacePerQueue: true))")


def test_kueue_mode_copies_the_local_queue_onto_the_same_cluster_queue() -> None:
    api = MemberApi()
    api.add("localqueues", {"metadata": {"name": "federated", "namespace": BASE},
                            "spec": {"clusterQueue": "gpus", "stopPolicy": "None"}}, BASE)
    t = tenants(api, kueue_queue="federated")
    assert t.ensure(f"{BASE}-research", "research") == ""
    copied = api.objects[("localqueues", f"{BASE}-research", "federated")]
    assert copied["spec"] == {"clusterQueue": "gpus"}
    assert copied["metadata"]["labels"][QUEUE_LABEL] == "research"


def test_kueue_mode_keeps_a_local_queue_the_provider_made() -> None:
    api = MemberApi()
    api.add("namespaces", {"metadata": {"name": f"{BASE}-research", "labels": {
        "pod-security.kubernetes.io/enforce": "baseline", "federator.io/queue": "research"}}})
    api.add("localqueues", {"metadata": {"name": "federated"}, "spec": {"clusterQueue": "research-only"}},
            f"{BASE}-research")
    assert tenants(api, kueue_queue="federated").ensure(f"{BASE}-research", "research") == ""
    assert api.writes == []


def test_kueue_mode_without_the_local_queue_to_copy_refuses_naming_what_is_missing() -> None:
    api = MemberApi()
    why = tenants(api, kueue_queue="federated").ensure(f"{BASE}-research", "research")
    assert why == (f"--kueue-queue: LocalQueue {BASE}/federated does not exist, so the agent cannot give namespace "
                   f"{BASE}-research (queue research) a LocalQueue federated on the same ClusterQueue: create "
                   f"LocalQueue federated in {BASE}, or one in {BASE}-research ({BASE}-research/federated)")
    api.add("localqueues", {"metadata": {"name": "federated"}, "spec": {"clusterQueue": "gpus"}}, BASE)
    assert tenants(api, kueue_queue="federated").ensure(f"{BASE}-research", "research") == ""  # set up: it works


@pytest.mark.parametrize(("namespace", "labels", "ours"), [
    pytest.param(BASE, {}, True, id="the-agents-namespace"),
    pytest.param(f"{BASE}-research", {QUEUE_LABEL: "research"}, True, id="its-queues-namespace"),
    pytest.param(f"{BASE}-research", {}, False, id="unlabelled-in-a-tenant-namespace"),
    pytest.param(f"{BASE}-research", {QUEUE_LABEL: "ops"}, False, id="another-queues-label"),
    pytest.param("other-fed-research", {QUEUE_LABEL: "research"}, False, id="another-agents-namespace"),
])
def test_the_agent_keeps_only_its_own_workloads(namespace: str, labels: dict[str, str], ours: bool) -> None:
    """Two federations' agents on one member each see the other's workloads by the managed-by label."""
    obj = {"metadata": {"name": "x", "namespace": namespace, "labels": labels}}
    assert tenants(MemberApi()).owns(obj) is ours


# -- the backend ------------------------------------------------------------------------


def test_a_placement_runs_watches_and_is_deleted_in_its_queues_namespace() -> None:
    async def run() -> tuple[MemberApi, list[tuple[str, JobPhase, str]]]:
        api = MemberApi()
        b, updates = backend(api)
        assert await b.launch(placement(), SPEC) is None
        namespace = f"{BASE}-research"
        created = api.written("create")
        assert [(p, ns) for p, ns, _ in created] == [("namespaces", ""), ("networkpolicies", namespace),
                                                     ("jobs", namespace), ("services", namespace)]
        job = api.objects[created[2]]
        assert job["metadata"]["namespace"] == namespace and job["metadata"]["labels"][QUEUE_LABEL] == "research"
        b.jobs._apply_event(ADDED, job)  # the all-namespace watch sees it, in its namespace
        assert b.placements() == {PID: JobPhase.PLACED} and b._workload(PID) is not None
        await b.cancel(PID)
        assert {ns for p, ns, _ in api.written("delete")} == {namespace}
        return api, updates

    _, updates = asyncio.run(run())
    assert updates[-1][:2] == (PID, JobPhase.CANCELLED)


def test_a_restarted_agent_adopts_and_deletes_a_placement_in_a_tenant_namespace() -> None:
    async def run() -> MemberApi:
        api = MemberApi()
        job = build_workload(placement(), SPEC, namespace=f"{BASE}-ops")
        job["metadata"]["labels"][QUEUE_LABEL] = "ops"
        b, _ = backend(api)
        assert b.jobs.namespace is None  # every namespace, by the managed-by selector
        b.jobs._apply_list([job])
        assert b.placements() == {PID: JobPhase.PLACED}
        await b.cancel(PID)
        return api

    api = asyncio.run(run())
    assert ("jobs", f"{BASE}-ops", build_workload(placement(), SPEC, namespace="x")["metadata"]["name"]) in \
        api.written("delete")


def test_another_agents_workloads_are_not_seen_as_placements() -> None:
    b, updates = backend(MemberApi())
    theirs = build_workload(placement(), SPEC, namespace="other-fed-research")
    theirs["metadata"]["labels"][QUEUE_LABEL] = "research"
    b.jobs._apply_event(ADDED, theirs)
    assert b.placements() == {} and b.jobs.cache == {} and updates == []
    b.jobs._apply_event(DELETED, theirs)
    assert updates == []


def _pod(pid: str, namespace: str, n: int) -> dict[str, Any]:
    return {"metadata": {"name": f"{pid}-{n}", "namespace": namespace, "annotations": {PLACEMENT_ANNOTATION: pid}},
            "spec": {"nodeName": "node-1"}, "status": {"phase": "Running"}}


@pytest.mark.parametrize("per_queue", [True, False])
def test_the_report_lists_only_the_pods_in_the_agents_own_namespaces(per_queue: bool) -> None:
    """Pods are watched in every namespace (each takes capacity), but only those in a namespace of this agent's own
    placements are its placements. Another agent's on the member (another federation's, whose ids end in the same
    cluster name when it calls the member alike) are not reported, so its federator never fences them here
    (outside provider QA: an agent with --namespace fed-qa5 listed the pods of other namespaces)."""
    b, _ = backend(MemberApi(), namespace_per_queue=per_queue)
    namespace = f"{BASE}-research" if per_queue else BASE
    job = b.tenants.label(build_workload(placement(), SPEC, namespace=namespace), "research")
    b.jobs._apply_event(ADDED, job)
    theirs = "train-xyz.g1.a"  # the same cluster suffix: the suffix tells the agents apart no better than nothing
    pods = [_pod(PID, namespace, 0), _pod(PID, namespace, 1),
            _pod(theirs, "staging-workloads", 0),  # another agent's --namespace
            _pod(theirs + "2", f"{BASE}-ops", 0)]  # named like a tenant namespace, none of this agent's is there
    for pod in pods:
        b.pods._apply_event(ADDED, pod)
    assert b._accounted(b.pods.cache.values()) == {PID}
    assert len(b._pods_of(PID)) == 2 and b._pods_of(theirs) == []


def test_a_refused_workload_names_its_tenant_namespace() -> None:
    api = MemberApi(refuse={("create", "jobs"): ForbiddenError(
        403, 'jobs.batch is forbidden: User "agent" cannot create resource "jobs"', reason="Forbidden")})
    b, _ = backend(api)
    why = asyncio.run(b.launch(placement(), SPEC))
    assert why is not None and f"; {BASE}-research/train-abc-g1-a-" in why
    assert b.tenants.namespace_of(PID) == BASE  # forgotten: nothing of it runs there


def test_a_namespace_that_cannot_be_made_ready_creates_no_workload() -> None:
    api = MemberApi(refuse={("create", "namespaces"): ForbiddenError(403, "no", reason="Forbidden")})
    b, _ = backend(api)
    why = asyncio.run(b.launch(placement(), SPEC))
    assert why is not None and why.startswith(f"the member cluster refused creating namespace {BASE}-research")
    assert api.writes == [] and b.placements() == {}


def test_two_queues_run_apart_and_without_the_flag_in_the_one_namespace() -> None:
    async def launch(per_queue: bool) -> set[str]:
        api = MemberApi()
        b, _ = backend(api, namespace_per_queue=per_queue)
        assert await b.launch(placement(), SPEC) is None
        assert await b.launch(placement("serve-x.g1.a", "serve-x"), replace(SPEC, queue="ops")) is None
        return {ns for p, ns, _ in api.written("create") if p == "jobs"}

    assert asyncio.run(launch(True)) == {f"{BASE}-research", f"{BASE}-ops"}
    assert asyncio.run(launch(False)) == {BASE}


@pytest.mark.parametrize(("base", "queue", "own"), [
    pytest.param("federator", "agent", "federator-agent", id="the-agents-own-namespace"),
    pytest.param("kube", "system", "", id="kube-system"),
])
def test_no_queue_runs_beside_the_agents_credentials_or_in_kubernetes_own(base: str, queue: str, own: str) -> None:
    """The cluster-wide RBAC of --namespace-per-queue would not stop it: the agent does."""
    api = MemberApi()
    t = tenants(api, base=base, own_namespace=own)
    why = t.ensure(t.of(queue), queue)
    assert why.startswith(f"queue {queue} would run in namespace {base}-{queue}, ")
    assert why.endswith(": refused; run the agent with another --namespace, or install it in another namespace")
    assert api.writes == []


def test_a_tenant_namespace_deleted_behind_the_agents_back_is_made_again_at_the_next_launch() -> None:
    async def run() -> tuple[str | None, MemberApi]:
        api = MemberApi()
        b, _ = backend(api)
        assert await b.launch(placement(), SPEC) is None
        del api.objects[("namespaces", "", f"{BASE}-research")]  # an operator deleted it
        api.refuse[("create", "jobs")] = NotFoundError(404, f'namespaces "{BASE}-research" not found',
                                                       reason="NotFound")
        why = await b.launch(placement("train-def.g1.a", "train-def"), SPEC)
        api.refuse.clear()
        assert await b.launch(placement("train-def.g1.a", "train-def"), SPEC) is None
        return why, api

    why, api = asyncio.run(run())
    assert why is not None and why.endswith(f"(tenant namespace {BASE}-research was deleted after the agent made it "
                                            "ready; the next launch makes it again)")
    assert ("namespaces", "", f"{BASE}-research") in api.objects


def test_kueue_and_dra_follow_the_placements_namespace() -> None:
    """Kueue's Workloads are watched where the placements run (every namespace); a DRA claim template is made,
    owned and deleted in the placement's namespace."""
    from federator.backends.kube.accelerators import AcceleratorRequest

    b, _ = backend(MemberApi(), kueue_queue="federated")
    assert b.gang.kueue_workloads is not None and b.gang.kueue_workloads.namespace is None
    assert b.gang.local_queues is not None and b.gang.local_queues.namespace == BASE  # the quota read stays there
    single, _ = backend(MemberApi(), kueue_queue="federated", namespace_per_queue=False)
    assert single.gang.kueue_workloads is not None and single.gang.kueue_workloads.namespace == BASE

    async def run() -> MemberApi:
        api = MemberApi()
        b, _ = backend(api)
        b.dra.on = True
        request = AcceleratorRequest(claim={"devices": {"requests": []}}, claim_template_name="t")
        await b.dra.create_template(placement(), request, f"{BASE}-ops")
        await b.dra.own_template(placement(), {"metadata": {"name": "w", "uid": "u"}}, f"{BASE}-ops")
        b.tenants.place(PID, f"{BASE}-ops")
        await b._delete(PID)
        return api

    api = asyncio.run(run())
    assert {(v, ns) for v, p, ns, _ in api.writes if p == "resourceclaimtemplates"} == {
        ("create", f"{BASE}-ops"), ("patch", f"{BASE}-ops"), ("delete", f"{BASE}-ops")}


@pytest.mark.parametrize("labels", [{}, {"federator.io/queue": "ops"}, {"app.kubernetes.io/managed-by": "federator"}])
def test_a_namespace_not_marked_for_the_queue_is_refused(labels: dict[str, str]) -> None:
    """A queue's name picks its namespace: queue `monitoring` must not run beside the Secrets of a provider's own
    `<base>-monitoring`, nor one queue in another queue's namespace. Only one made by the agent or labelled by the
    provider for that queue is used; nothing is written to the one refused."""
    api = MemberApi()
    api.add("namespaces", {"metadata": {"name": f"{BASE}-monitoring", "labels": labels}})
    why = tenants(api).ensure(f"{BASE}-monitoring", "monitoring")
    assert why.startswith("namespace not marked for queue monitoring: kubectl label namespace "
                          f"{BASE}-monitoring federator.io/queue=monitoring if it is that queue's")
    assert f"kubectl label namespace {BASE}-monitoring federator.io/queue=monitoring" in why
    assert why.index(";") <= WHY_CHARS  # the fix is within what a job's pending reason keeps of a refusal
    api.add("namespaces", {"metadata": {"name": f"{BASE}-long"}})
    dotted = tenants(api).ensure(f"{BASE}-long", "ml.team-a" * 8)
    assert "kubectl annotate namespace" in dotted  # a name no label value holds: the annotation marks it
    assert api.writes == []


def test_a_queue_named_like_another_queues_hashed_namespace_is_refused_there() -> None:
    """Queue `ml.team-a` is no DNS label, so its namespace is `<base>-ml-team-a-<8 hex>`; a queue named exactly
    that (an open queue anyone may submit to) led to the same namespace, and ran beside `ml.team-a`'s Secrets.
    Refused both while the agent remembers the namespace made ready and after a restart, when it reads it."""
    api = MemberApi()
    victim = tenant_namespace(BASE, "ml.team-a")
    attacker = victim.removeprefix(f"{BASE}-")
    assert tenant_namespace(BASE, attacker) == victim  # the collision itself: names alone cannot keep them apart
    t = tenants(api)
    assert t.ensure(victim, "ml.team-a") == ""
    assert api.objects[("namespaces", "", victim)]["metadata"]["annotations"] == {"federator.io/queue": "ml.team-a"}
    assert t.ensure(victim, attacker).startswith(f"namespace not marked for queue {attacker}: kubectl label "
                                                 f"namespace {victim} federator.io/queue={attacker}")
    assert tenants(api).ensure(victim, attacker).startswith("namespace not marked")  # a restarted agent
    assert tenants(api).ensure(victim, "ml.team-a") == ""


def test_a_long_queue_is_told_apart_from_the_queue_its_shortened_label_spells() -> None:
    """A label value holds 63 characters, so a long queue's label is shortened; another queue may be named
    exactly that. The namespace's annotation holds the whole name, and that is what is compared."""
    api = MemberApi()
    long_queue = "research-team-a-very-long-queue-name-for-the-national-laboratory-of-x"
    t = tenants(api)
    namespace = tenant_namespace(BASE, long_queue)
    assert t.ensure(namespace, long_queue) == ""
    short = queue_label(long_queue)
    assert short != long_queue and t.ensure(namespace, short) != ""
    provider = {"metadata": {"name": f"{BASE}-p", "annotations": {"federator.io/queue": "ml.team-b"}}}
    api.add("namespaces", provider)
    assert tenants(api).ensure(f"{BASE}-p", "ml.team-b") == ""  # a provider marks a non-label name by annotation
