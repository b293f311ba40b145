"""Placements left in per-queue namespaces when `--namespace-per-queue` is turned off (outside provider QA F7;
backends/kube/stranded.py): the agent finds them by their pods' labels, adopts them (watched, reported,
cancellable), or says at ERROR that it cannot."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from test_kube_tenant_namespaces import BASE, PID, SPEC, MemberApi, placement

from federator.backends.kube import stranded
from federator.backends.kube.agent_identity import AgentIdentity
from federator.backends.kube.api import ForbiddenError
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.tenant_namespaces import QUEUE_LABEL
from federator.backends.kube.workloads import PLACEMENT_ANNOTATION, RenderOptions, build_workload, workload_labels
from federator.model import JobPhase

TENANT = f"{BASE}-research"
OURS = AgentIdentity("member-a", BASE, "federator.example:8443")  # flag_off's agent


class ListingApi(MemberApi):
    """MemberApi that also lists: the pods given, and the workloads it holds (every namespace)."""

    def __init__(self, pods: list[dict[str, Any]], **kw: Any) -> None:
        super().__init__(**kw)
        self.pods = pods

    def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        self._check("list", res.plural)
        if res.plural == "pods":
            return {"items": self.pods}
        return {"items": [o for (p, ns, _), o in self.objects.items() if p == res.plural
                          and namespace in (None, ns)]}


def pod(namespace: str, pid: str = PID, who: AgentIdentity | None = OURS) -> dict[str, Any]:
    """A placement's pod, as the agent `who` made it (None: an agent older than 0.12.0, which marked none)."""
    return {"metadata": {"name": f"{pid}-0", "namespace": namespace, "labels": workload_labels(placement(pid)),
                         "annotations": {**(who.annotations() if who else {}), PLACEMENT_ANNOTATION: pid}}}


def gang_in(namespace: str) -> dict[str, Any]:
    job = build_workload(placement(), SPEC, namespace=namespace)
    job["metadata"]["labels"][QUEUE_LABEL] = "research"
    return job


def flag_off(api: MemberApi) -> tuple[KubeBackend, list[tuple[str, JobPhase, str]]]:
    """The agent restarted without --namespace-per-queue (the chart's namespacePerQueue turned off)."""
    b = KubeBackend(api, namespace=BASE, namespace_per_queue=False, cluster=OURS.cluster,  # type: ignore[arg-type]
                    federator=OURS.federator)
    updates: list[tuple[str, JobPhase, str]] = []
    b._on_update = lambda pid, phase, msg, **_: updates.append((pid, phase, msg))
    b._started = True
    return b, updates


def test_only_pods_in_this_agents_per_queue_namespaces_are_stranded() -> None:
    pods = [pod(TENANT), pod(TENANT, "b.g1.a"), pod(BASE, "c.g1.a"), pod("other-fed-research", "d.g1.a"),
            {"metadata": {"name": "x", "namespace": f"{BASE}-ops"}}]  # not the federator's
    assert stranded.stranded(pods, BASE, OURS).ours == {TENANT: ["b.g1.a", PID]}


def test_turning_the_flag_off_adopts_the_gangs_left_in_tenant_namespaces_and_can_cancel_them(
        caplog: pytest.LogCaptureFixture) -> None:
    api = ListingApi([pod(TENANT)])
    job = gang_in(TENANT)
    api.add("jobs", job, TENANT)
    b, updates = flag_off(api)
    caplog.set_level(logging.WARNING, "federator.agent.kube")
    asyncio.run(stranded.adopt(b))
    assert b.jobs.namespace is None and b.deployments.namespace is None  # every namespace, by the selector
    assert f"placements still run in per-queue namespaces ({TENANT}: {PID})" in caplog.text
    b.jobs._apply_list([job])  # what the informer lists from its start
    assert b.placements() == {PID: JobPhase.PLACED}
    assert b.tenants.of("research") == BASE  # new placements still go to --namespace
    asyncio.run(b.cancel(PID))
    assert ("jobs", TENANT, job["metadata"]["name"]) in api.written("delete")
    assert updates[-1][:2] == (PID, JobPhase.CANCELLED)


def test_another_federations_workload_is_still_not_adopted() -> None:
    api = ListingApi([pod(TENANT)])
    b, _ = flag_off(api)
    asyncio.run(stranded.adopt(b))
    theirs = build_workload(placement("x.g1.a"), SPEC, namespace="other-fed-research")
    theirs["metadata"]["labels"][QUEUE_LABEL] = "research"
    b.jobs._apply_list([theirs])
    assert b.placements() == {}


def test_an_agent_that_may_not_list_workloads_everywhere_says_so_naming_them_and_the_fix(
        caplog: pytest.LogCaptureFixture) -> None:
    api = ListingApi([pod(TENANT)], refuse={("list", "jobs"): ForbiddenError(
        403, 'jobs.batch is forbidden: cannot list resource "jobs" at the cluster scope', reason="Forbidden")})
    b, _ = flag_off(api)
    caplog.set_level(logging.ERROR, "federator.agent.kube")
    asyncio.run(stranded.adopt(b))
    assert b.jobs.namespace == BASE  # nothing it could watch
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    said = record.getMessage()
    assert f"({TENANT}: {PID})" in said and "cannot see or cancel them" in said
    assert "namespacePerQueue: true" in said and "kubectl delete jobs,deployments -n NAMESPACE" in said


def test_with_nothing_left_behind_the_agent_watches_its_one_namespace() -> None:
    b, _ = flag_off(ListingApi([pod(BASE)]))
    asyncio.run(stranded.adopt(b))
    assert b.jobs.namespace == BASE and b.tenants.adopted == frozenset()


def test_a_placement_the_agent_may_no_longer_reach_is_reported_failed_naming_the_permission() -> None:
    """Its pods still listed it in the capacity report (outside provider QA: the job stayed "Running" with nobody
    able to follow or cancel it): now Failed, with the missing right and the way out, once the backend starts."""
    api = ListingApi([pod(TENANT)], refuse={("list", "jobs"): ForbiddenError(
        403, 'jobs.batch is forbidden: cannot list resource "jobs" at the cluster scope', reason="Forbidden")})
    b, _ = flag_off(api)
    lost = asyncio.run(stranded.adopt(b))
    assert list(lost) == [PID]
    said = lost[PID]
    assert said.startswith(f"lost by the agent of member-a: the placement runs in namespace {TENANT}")
    assert "may not list jobs.batch in every namespace" in said and 'cannot list resource "jobs"' in said
    assert f"kubectl delete jobs,deployments -n {TENANT}" in said and "namespacePerQueue: true" in said


def test_a_placement_the_agent_adopts_is_not_reported_lost() -> None:
    api = ListingApi([pod(TENANT)])
    api.add("jobs", gang_in(TENANT), TENANT)
    b, _ = flag_off(api)
    assert asyncio.run(stranded.adopt(b)) == {}


THEIRS = AgentIdentity("member-a", f"{BASE}-team", "other-federator:8443")  # another federation's agent


def test_another_agents_pods_in_a_namespace_named_like_ours_are_not_stranded_nor_reported(
        caplog: pytest.LogCaptureFixture) -> None:
    """Another agent on the member, whose --namespace is `<ours>-team`, and whose federation names the member as
    ours does: its pods sit in a namespace `<ours>-*`. An agent that may not watch workloads everywhere reported
    them to its own federator as lost (Failed); now only pods carrying its own identity count."""
    team = f"{BASE}-team"
    pods = [pod(team, "x.g1.member-a", THEIRS), pod(TENANT), pod(f"{BASE}-old", "y.g1.member-a", None)]
    found = stranded.stranded(pods, BASE, OURS)
    assert (found.ours, found.others, found.unmarked) == (
        {TENANT: [PID]}, {team: ["x.g1.member-a"]}, {f"{BASE}-old": ["y.g1.member-a"]})
    api = ListingApi(pods, refuse={("list", "jobs"): ForbiddenError(
        403, 'jobs.batch is forbidden: cannot list resource "jobs" at the cluster scope', reason="Forbidden")})
    b, _ = flag_off(api)
    caplog.set_level(logging.INFO, "federator.agent.kube")
    assert list(asyncio.run(stranded.adopt(b))) == [PID]  # its own alone
    said = {r.levelno: r.getMessage() for r in caplog.records}
    assert f"{team}: x.g1.member-a" in said[logging.INFO] and "left alone" in said[logging.INFO]
    assert f"{BASE}-old: y.g1.member-a" in said[logging.WARNING] and "not reported" in said[logging.WARNING]
    assert f"{TENANT}: {PID}" in said[logging.ERROR] and "x.g1.member-a" not in said[logging.ERROR]


def test_another_agents_workload_in_this_agents_namespace_is_not_its_own_and_is_said_once(
        caplog: pytest.LogCaptureFixture) -> None:
    """Two agents with one --namespace (a copied values file): each leaves the other's workloads and pods alone,
    and says at WARNING, once, that another agent runs there, naming both."""
    b, _ = flag_off(ListingApi([]))
    other = AgentIdentity("member-b", BASE, "other-federator:8443")
    theirs = build_workload(placement("x.g1.member-b"), SPEC, namespace=BASE,
                            options=RenderOptions(annotations=other.annotations()))
    mine = build_workload(placement(), SPEC, namespace=BASE, options=RenderOptions(annotations=OURS.annotations()))
    old = build_workload(placement("z.g1.member-a"), SPEC, namespace=BASE)  # made before 0.12.0: the namespace says
    caplog.set_level(logging.WARNING, "federator.agent.kube")
    b.jobs._apply_list([theirs, mine, old])
    b.jobs._apply_list([theirs, mine, old])
    assert set(b.placements()) == {PID, "z.g1.member-a"}
    [record] = [r for r in caplog.records if "another federator agent" in r.getMessage()]
    said = record.getMessage()
    assert f"namespace {BASE}" in said and "cluster member-b" in said and "federator other-federator:8443" in said
    assert "cluster member-a" in said and "a --namespace of its own" in said
    their_pod = pod(BASE, "x.g1.member-b", other)
    assert b._placement_of_pod(their_pod) == "" and b._placement_of_pod(pod(BASE)) == PID
    elsewhere = pod(f"{BASE}-team", "t.g1.member-a", THEIRS)  # in the other agent's own namespace: no clash
    b.pods._apply_list([their_pod, pod(BASE), elsewhere])
    assert b.shared_namespace_agents == {other}  # federator_agent_shared_namespace_agents: 1
    b.pods._apply_list([pod(BASE), elsewhere])
    assert b.shared_namespace_agents == frozenset()


def test_a_workload_of_this_cluster_and_namespace_made_for_another_federator_is_kept_and_said(
        caplog: pytest.LogCaptureFixture) -> None:
    """The federator's address is not compared (a changed --server must not disown what runs), but said."""
    b, _ = flag_off(ListingApi([]))
    moved = AgentIdentity(OURS.cluster, BASE, "old-name.example:8443")
    job = build_workload(placement(), SPEC, namespace=BASE, options=RenderOptions(annotations=moved.annotations()))
    caplog.set_level(logging.WARNING, "federator.agent.kube")
    b.jobs._apply_list([job])
    b.jobs._apply_list([job])
    assert set(b.placements()) == {PID}
    [said] = [r.getMessage() for r in caplog.records if "another federator" in r.getMessage()]
    assert "theirs: old-name.example:8443" in said and f"this one: {OURS.federator}" in said
