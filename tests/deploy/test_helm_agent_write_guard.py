"""The agent chart's writeGuard on a real member (outside provider QA F9): a ValidatingAdmissionPolicy that lets
the agent's ServiceAccount write only objects labelled app.kubernetes.io/managed-by=federator in its workload
namespaces, where RBAC alone (namespacePerQueue: the workload rules in every namespace) let a stolen agent token
delete or patch the provider's Deployments in kube-system.

The chart is installed with real helm into a real kube-apiserver (v1.36 serves ValidatingAdmissionPolicy v1, so
the guard is on by default); each write is made with a TokenRequest token of the chart's ServiceAccount, so the
API server sees exactly the agent's identity. Denied: what RBAC allows but the agent never does. Allowed: the
agent's own work, by the real Kubernetes backend as that ServiceAccount (a tenant namespace, its NetworkPolicy,
a gang's Job and rendezvous Service, a Deployment shrunk in place, Events, the deletes of a cancel).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_support import AGENT, Helm

from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.namespace_claim import ClaimState, NamespaceClaim
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

from support import ROOT, eventually, until

try:
    sys.path.insert(0, str(ROOT / "tests" / "testbed"))
    from testbed import Testbed
except ImportError as exc:  # pragma: no cover
    pytest.skip(f"tests/testbed is not importable ({exc})", allow_module_level=True)

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

MEMBER = "member-a"
AGENT_NS = "federator-agent"
ACCOUNT = "guard-federator-agent"
WORKLOADS = "federator-workloads"
TENANT = f"{WORKLOADS}-research"
LABELLED = {"app.kubernetes.io/managed-by": "federator"}
DELAY = {"metadata": {"annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "600s"}}}


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory, helm: Path) -> Iterator[Testbed]:
    tb = Testbed.start(tmp_path_factory.mktemp("write-guard-bed"), members=(MEMBER,))
    try:
        tb.kubectl(MEMBER, "create", "namespace", AGENT_NS)
        proc = Helm(helm).run("install", "guard", AGENT, "--namespace", AGENT_NS, "--kubeconfig",
                              tb.cluster(MEMBER).kubeconfig, "--set", "federator.address=fed.example:7070",
                              "--set", f"cluster.name={MEMBER}", "--set", "cluster.region=east",
                              "--set", "tls.enabled=false", timeout=180)
        assert proc.returncode == 0, f"helm install failed:\n{proc.stderr}{proc.stdout}"
        # The provider's own objects the agent's RBAC reaches: a control-plane add-on, and one it keeps in the
        # agent's workload namespace without the federator's label.
        tb.apply(MEMBER, [_deployment("coredns", "kube-system", {"k8s-app": "kube-dns"}),
                          _deployment("provider-app", WORKLOADS, {"app": "provider"})])
        yield tb
    finally:
        tb.stop()


@pytest.fixture(scope="module")
def agent_kubeconfig(bed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig with a TokenRequest token of the chart's ServiceAccount: the agent pod's identity."""
    token = bed.kubectl(MEMBER, "create", "token", ACCOUNT, "-n", AGENT_NS, "--duration=1h").stdout.strip()
    config = yaml.safe_load(bed.cluster(MEMBER).kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    path = tmp_path_factory.mktemp("agent-identity") / "agent.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    # A fresh policy takes the API server a moment to load: probe with a server-side dry run (admitted, it writes
    # nothing) until it is denied, before any test makes a write that would harm if admitted.
    probe = _manifest({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "probe", "namespace": "kube-system"},
                       "spec": {"ports": [{"port": 80}]}})
    eventually(lambda: _denied_by_guard(bed, path, "create", "--dry-run=server", "-f", "-", input=probe),
               timeout=60, what="the guard in force")
    return path


def _deployment(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace,
                                                                       "labels": labels},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}}


def _as_agent(bed: Testbed, kubeconfig: Path, *args: str, input: str | None = None) -> Any:
    return bed.kubectl(MEMBER, f"--kubeconfig={kubeconfig}", *args, input=input, check=False)


def _rbac_allows(bed: Testbed, *args: str) -> bool:
    who = f"--as=system:serviceaccount:{AGENT_NS}:{ACCOUNT}"
    return bed.kubectl(MEMBER, "auth", "can-i", who, *args, check=False).stdout.strip() == "yes"


def _denied_by_guard(bed: Testbed, kubeconfig: Path, *args: str, input: str | None = None) -> str:
    proc = _as_agent(bed, kubeconfig, *args, input=input)
    assert proc.returncode != 0, f"kubectl {' '.join(args)} was admitted"
    assert "writeGuard of the federator agent" in proc.stderr, proc.stderr
    return str(proc.stderr)


def _manifest(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj)


def test_the_chart_makes_the_guard_where_the_api_server_serves_it(bed: Testbed) -> None:
    policies = bed.kubectl_json(MEMBER, "get", "validatingadmissionpolicies")["items"]
    [policy] = [p for p in policies if p["metadata"]["name"].endswith("-writes")]
    assert f"system:serviceaccount:{AGENT_NS}:{ACCOUNT}" in policy["spec"]["matchConditions"][0]["expression"]
    bindings = bed.kubectl_json(MEMBER, "get", "validatingadmissionpolicybindings")["items"]
    assert [b["spec"]["policyName"] for b in bindings] == [policy["metadata"]["name"]]


@pytest.mark.parametrize(("rbac", "args", "objects", "words"), [
    pytest.param(["delete", "deployments.apps", "-n", "kube-system"], ["delete", "deployment", "coredns", "-n",
                 "kube-system"], None, "not in namespace kube-system", id="delete-kube-system-deployment"),
    pytest.param(["patch", "deployments.apps", "-n", "kube-system"], ["-n", "kube-system", "patch", "deployment",
                 "coredns", "--type=merge", "-p", '{"spec":{"replicas":0}}'], None, "not in namespace kube-system",
                 id="patch-kube-system-deployment"),
    pytest.param(["create", "jobs.batch", "-n", "kube-system"], ["create", "-f", "-"],
                 {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x", "namespace": "kube-system",
                                                                        "labels": LABELLED},
                  "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                      {"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}},
                 "not in namespace kube-system", id="create-labelled-job-in-kube-system"),
    pytest.param(["delete", "deployments.apps", "-n", WORKLOADS], ["delete", "deployment", "provider-app", "-n",
                 WORKLOADS], None, "deployments provider-app in federator-workloads is not",
                 id="delete-providers-unlabelled-deployment"),
    pytest.param(["patch", "deployments.apps", "-n", WORKLOADS], ["-n", WORKLOADS, "label", "deployment",
                 "provider-app", "app.kubernetes.io/managed-by=federator"], None, "is not",
                 id="label-a-providers-deployment-to-take-it"),
    pytest.param(["create", "services", "-n", WORKLOADS], ["create", "-f", "-"],
                 {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": WORKLOADS},
                  "spec": {"ports": [{"port": 80}]}}, "would not be", id="create-unlabelled-service"),
    pytest.param(["create", "namespaces"], ["create", "-f", "-"],
                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-evil", "labels": LABELLED}},
                 "not in namespace kube-evil", id="create-namespace-outside-the-prefix"),
    pytest.param(["create", "namespaces"], ["create", "-f", "-"],
                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{WORKLOADS}-bare"}},
                 "would not be", id="create-unlabelled-tenant-namespace"),
])
def test_a_write_rbac_allows_but_the_agent_never_makes_is_denied_by_the_api_server(
        bed: Testbed, agent_kubeconfig: Path, rbac: list[str], args: list[str], objects: dict[str, Any] | None,
        words: str) -> None:
    assert _rbac_allows(bed, *rbac), "RBAC alone allows it: the guard is what denies it"
    stderr = _denied_by_guard(bed, agent_kubeconfig, *args, input=_manifest(objects) if objects else None)
    assert words in stderr
    bed.kubectl_json(MEMBER, "get", "deployment", "coredns", "-n", "kube-system")  # still there
    labels = bed.kubectl_json(MEMBER, "get", "deployment", "provider-app", "-n", WORKLOADS)["metadata"]["labels"]
    assert labels == {"app": "provider"}


def test_the_agents_own_work_passes_the_guard(bed: Testbed, agent_kubeconfig: Path) -> None:
    """The real backend as the chart's ServiceAccount, namespacePerQueue and Events on, its claim on
    workloadNamespace (a Lease: the chart's Role grants it, the guard admits it), as the chart runs it."""
    gang = Placement(PlacementId("gang-1.g1.member-a"), JobId("gang-1"), MEMBER, "east", 2, "", 1)
    serving = Placement(PlacementId("serve-1.g1.member-a"), JobId("serve-1"), MEMBER, "east", 2, "", 1)
    updates: list[tuple[str, JobPhase, str]] = []

    def on_update(pid: str, phase: JobPhase, message: str, **_: object) -> None:
        updates.append((pid, phase, message))

    def objects(kind: str) -> list[str]:
        items = bed.kubectl_json(MEMBER, "get", kind, "-n", TENANT)["items"]
        return sorted(i["metadata"]["name"] for i in items)

    async def main() -> None:
        api = KubeApi.connect(agent_kubeconfig)
        claim = NamespaceClaim(api, namespace=WORKLOADS, cluster=MEMBER, federation="fed.example:7070")
        backend = KubeBackend(api, namespace=WORKLOADS, cluster=MEMBER, sync_timeout=60, namespace_per_queue=True,
                              events=True, own_namespace=AGENT_NS, federator="fed.example:7070", claim=claim)
        await backend.start(on_update)
        try:
            assert claim.state is ClaimState.HELD, claim.problem
            assert claim.round() is ClaimState.HELD, claim.problem  # a renewal: an UPDATE the guard admits
            spec = JobSpec(name="gang", kind=JobKind.TRAINING, replicas=2, queue="research",
                           resources=Resources(cpu_milli=1000), pod_template_json=json.dumps(DELAY))
            assert await backend.launch(gang, spec) is None
            serve = JobSpec(name="serve", kind=JobKind.INFERENCE, replicas=2, queue="research",
                            resources=Resources(cpu_milli=1000))
            assert await backend.launch(serving, serve) is None
            await until(lambda: len(objects("jobs")) == 1 and len(objects("services")) == 1
                        and len(objects("deployments")) == 1, timeout=60)
            assert await backend.resize(serving.placement_id, 1, 1) is None  # a merge patch: an UPDATE
            await until(lambda: bed.kubectl_json(MEMBER, "get", "deployments", "-n", TENANT)["items"][0]["spec"]
                        ["replicas"] == 1, timeout=30)
            await backend.cancel(gang.placement_id)
            await backend.cancel(serving.placement_id)
            await until(lambda: not objects("jobs") and not objects("deployments"), timeout=60)
        finally:
            await backend.stop()

    asyncio.run(main())
    namespace = bed.kubectl_json(MEMBER, "get", "namespace", TENANT)
    assert namespace["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "federator"
    assert bed.kubectl_json(MEMBER, "get", "networkpolicies", "-n", TENANT)["items"]
    events = bed.kubectl_json(MEMBER, "get", "events", "-n", TENANT, "--field-selector",
                              "reportingComponent=federator-agent")["items"]
    assert {e["metadata"]["annotations"]["federator.io/placement-id"] for e in events} >= {
        gang.placement_id, serving.placement_id}
    assert not [u for u in updates if "forbidden" in u[2].lower() or "writeGuard" in u[2]], updates
