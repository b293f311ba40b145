"""Two federations' agents on one real member, both named "member-a" (a national and a regional network sharing a
provider's cluster): the namespace is claimed by the first agent's federation, and the second does not run there.

Before 0.14.0 the second agent, given the first's `--namespace`, found the first's workloads (same labels, same
cluster name and namespace written on them), reported them to its own federator, and that federator cancelled them
as orphans: one network killed the other's training. backends/kube/namespace_claim.py is the claim."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from federator.backends.kube.api import LEASES, KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.namespace_claim import ClaimState, NamespaceClaim, NamespaceTaken, lease_name
from federator.cli.get import list_jobs
from federator.model import Job, JobPhase

from kube_support import WORKLOADS, KubeFederation, Testbed, own_bed, service_account_kubeconfig
from support import eventually, federator_cli, scraped

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

MEMBER = "member-a"
REGIONAL = "federator-regional"  # the regional network's agent's namespace of its own, once told to use one
DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"
SERVE = ["--report-interval", "0.5", "--cycle-interval", "0.2", "--orphan-grace", "0"]


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """member-a with deploy/kubernetes/rbac-agent.yaml applied (the agent's rules, the claim's Role among them)."""
    with own_bed(tmp_path_factory.mktemp("namespace-claim-bed"), members=(MEMBER,)) as tb:
        tb.kubectl(MEMBER, "create", "namespace", REGIONAL)
        yield tb


@pytest.fixture(scope="module")
def national(bed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeFederation]:
    """The national network: its federator, its agent on member-a in federator-workloads (the chart's default, as its
    service account), and a training job of its running there."""
    workdir = tmp_path_factory.mktemp("national")
    fed = KubeFederation(workdir=workdir, tls=False, serve_args=SERVE)
    try:
        fed.start_server(timeout=60)
        _agent(bed, fed, WORKLOADS)
        _submit(fed, workdir, "national-train")
        eventually(lambda: _job(fed, "national-train").phase is JobPhase.RUNNING, timeout=120,
                   what=lambda: f"national-train Running\n{_logs(fed)}")
        yield fed
    finally:
        fed.stop()


@pytest.fixture
def regional(tmp_path: Path) -> Iterator[KubeFederation]:
    """The regional network: a federator of its own, no agent yet, a job waiting for a cluster."""
    fed = KubeFederation(workdir=tmp_path / "regional", tls=False, serve_args=SERVE)
    try:
        fed.start_server(timeout=60)
        _submit(fed, tmp_path, "regional-train")
        yield fed
    finally:
        fed.stop()


def _agent(bed: Testbed, fed: KubeFederation, namespace: str) -> str:
    """`federator agent` for member-a as its service account; the base URL of its /metrics and probes."""
    kubeconfig = service_account_kubeconfig(bed, MEMBER, "federator-agent", fed.workdir / "agent.kubeconfig")
    ready = fed.workdir / "agent.ready.json"
    ready.unlink(missing_ok=True)
    fed.start_kube_agent(MEMBER, kubeconfig=kubeconfig, region="east", namespace=namespace,
                         extra_args=["--metrics-listen", "127.0.0.1:0", "--ready-file", str(ready)])
    eventually(ready.exists, timeout=60, what=lambda: f"the agent's endpoint\n{_logs(fed)}")
    return str(json.loads(ready.read_text())["metrics"]).removesuffix("/metrics")


def _submit(fed: KubeFederation, workdir: Path, name: str) -> None:
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"},
                 "template": {"metadata": {"annotations": {DELAY: "600s"}}}}}))
    done = federator_cli("submit", "-f", str(path), *fed.client_args())
    assert done.returncode == 0, done.stderr


def _job(fed: KubeFederation, name: str) -> Job:
    (job,) = [j for j in list_jobs(fed.client) if j.spec.name == name]
    return job


def _member_jobs(bed: Testbed, namespace: str) -> set[str]:
    items = bed.kubectl_json(MEMBER, "get", "jobs", "-n", namespace)["items"]
    return {i["metadata"]["annotations"].get("federator.io/job-id", "") for i in items}


def _logs(fed: KubeFederation) -> str:
    return "\n".join(f"--- {p.name}\n{p.log.read_text()[-3000:]}" for p in (fed.server, *fed.agents.values()) if p)


def _readyz(base: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_a_second_federations_agent_in_the_same_namespace_does_not_run_and_cancels_nothing(
        bed: Testbed, national: KubeFederation, regional: KubeFederation) -> None:
    held = _job(national, "national-train")
    assert held.placements and _member_jobs(bed, WORKLOADS) >= {held.job_id}
    endpoint = _agent(bed, regional, WORKLOADS)  # the same cluster name, the same (default) namespace
    agent = regional.agents[MEMBER]
    said = eventually(lambda: "is claimed by another federation's agent" in agent.log.read_text()
                      and agent.log.read_text(), timeout=60, what=lambda: f"the refusal\n{_logs(regional)}")
    # The clear error: the namespace, the other federation, and the fix.
    assert f"namespace {WORKLOADS} is claimed" in said and f"federator {national.grpc_target}" in said
    assert "give it a --namespace of its own" in said and f"this agent reports to {regional.grpc_target}" in said
    status, words = _readyz(endpoint)
    assert status == 503 and "claimed by another federation's agent" in words and national.grpc_target in words
    assert scraped(f"{endpoint}/metrics", "federator_agent_namespace_claim", cluster=MEMBER, state="refused") == 1
    lease = bed.kubectl_json(MEMBER, "get", "lease", lease_name(MEMBER), "-n", WORKLOADS)
    assert lease["spec"]["holderIdentity"] == national.grpc_target
    # It waits: alive, never connected to its federator, so it reported nothing and cancelled nothing.
    assert agent.alive() and "connected to" not in agent.log.read_text()
    assert not _job(regional, "regional-train").placements
    assert _job(national, "national-train").phase is JobPhase.RUNNING
    assert _member_jobs(bed, WORKLOADS) >= {held.job_id}
    national_endpoint = json.loads((national.workdir / "agent.ready.json").read_text())["metrics"]
    assert scraped(national_endpoint, "federator_agent_namespace_claim", cluster=MEMBER, state="held") == 1


def test_given_a_namespace_of_its_own_the_second_agent_runs_beside_the_first(
        bed: Testbed, national: KubeFederation, regional: KubeFederation) -> None:
    # The regional agent's RBAC in its own namespace: rbac-agent.yaml's Roles, copied there as a provider would.
    for role in ("federator-agent-workloads", "federator-agent-namespace-claim"):
        for kind in ("role", "rolebinding"):
            obj = bed.kubectl_json(MEMBER, "get", kind, role, "-n", WORKLOADS)
            obj["metadata"] = {"name": role, "namespace": REGIONAL}
            bed.kubectl(MEMBER, "apply", "-f", "-", input=json.dumps(obj))
    endpoint = _agent(bed, regional, REGIONAL)
    eventually(lambda: _job(regional, "regional-train").phase is JobPhase.RUNNING, timeout=120,
               what=lambda: f"regional-train Running\n{_logs(regional)}")
    assert _member_jobs(bed, REGIONAL) == {_job(regional, "regional-train").job_id}
    assert scraped(f"{endpoint}/metrics", "federator_agent_namespace_claim", cluster=MEMBER, state="held") == 1
    national_job = _job(national, "national-train")
    assert national_job.phase is JobPhase.RUNNING and national_job.job_id in _member_jobs(bed, WORKLOADS)
    assert bed.kubectl_json(MEMBER, "get", "lease", lease_name(MEMBER), "-n", REGIONAL)["spec"][
        "holderIdentity"] == regional.grpc_target


def test_a_stale_claim_is_taken_over_after_its_bound_and_its_holder_stops(bed: Testbed) -> None:
    """A federation removed (its agent gone, its claim no longer renewed) blocks the namespace only for its claim's
    leaseDurationSeconds, watched on the waiting agent's clock. Another agent of the holder's federation (a restart,
    a replica) takes it at once; a holder that finds its claim taken over stops acting there."""
    namespace = "stale-claim"
    bed.kubectl(MEMBER, "create", "namespace", namespace)
    kubeconfig = bed.cluster(MEMBER).kubeconfig
    gone, here = "federator.gone.example:7070", "federator.here.example:7070"

    def backend(federation: str, seen: list[ClaimState]) -> KubeBackend:
        claim = NamespaceClaim(KubeApi.connect(kubeconfig), namespace=namespace, cluster=MEMBER,
                               federation=federation, seconds=4, retry=0.5)
        claim.said = lambda state, problem: seen.append(state)
        return KubeBackend(KubeApi.connect(kubeconfig), namespace=namespace, cluster=MEMBER, sync_timeout=60,
                           federator=federation, claim=claim)

    async def main() -> tuple[list[ClaimState], list[ClaimState], list[ClaimState]]:
        first_seen: list[ClaimState] = []
        first = backend(gone, first_seen)
        await first.start(lambda *_, **__: None)
        await first.stop()  # gone without a word: nothing renews its claim, nothing released it
        restarted_seen: list[ClaimState] = []
        restarted = backend(gone, restarted_seen)  # the same federation: its claim, at once
        await restarted.start(lambda *_, **__: None)
        await restarted.stop()
        taker_seen: list[ClaimState] = []
        taker = backend(here, taker_seen)
        await taker.start(lambda *_, **__: None)  # waits out the 4 s claim, then takes it
        try:
            with pytest.raises(NamespaceTaken, match=f"namespace {namespace} is claimed by another federation"):
                await first.keep_claim()  # the old holder, back: it must stop
        finally:
            await taker.stop()
        return first_seen, restarted_seen, taker_seen

    first_seen, restarted_seen, taker_seen = asyncio.run(main())
    assert first_seen == [ClaimState.HELD, ClaimState.REFUSED] and restarted_seen == [ClaimState.HELD]
    assert taker_seen == [ClaimState.REFUSED, ClaimState.HELD]
    lease = KubeApi.connect(kubeconfig).get(LEASES, lease_name(MEMBER), namespace)
    assert lease["spec"]["holderIdentity"] == here and lease["spec"]["leaseTransitions"] == 1
    assert lease["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "federator"
