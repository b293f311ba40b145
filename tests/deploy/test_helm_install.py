"""`helm install` of both charts into real Kubernetes API servers (the test bed of tests/testbed).

The federator chart goes into the host control plane: a real API server
accepts every object (CRDs included), the RBAC grants exactly what the
federator needs (asked with `kubectl auth can-i --as` its ServiceAccount), and
a FederatedJob can then be applied with kubectl. The agent chart goes into a
member cluster, where its pod is scheduled and runs (kwok nodes). The TLS
Secrets are made the way docs/operators.md says: `federator certs`, then
`kubectl create secret`.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_support import AGENT, FEDERATOR, Helm

from federator.cli import build_parser
from federator.security.seal_keys import parse_seal_keys

from support import ROOT, eventually

try:
    sys.path.insert(0, str(ROOT / "tests" / "testbed"))
    from testbed import Testbed
except ImportError as exc:  # pragma: no cover - the test bed is another issue's work
    pytest.skip(f"tests/testbed is not importable yet ({exc}): no helm install test", allow_module_level=True)

pytestmark = pytest.mark.kube

NS = "federator-system"
AGENT_NS = "federator-agent"
WORKLOAD_NS = "federator-workloads"  # the agent chart's default; created with the release
MEMBER = "member-a"
SA = f"system:serviceaccount:{NS}:fed-federator"
AGENT_SA = f"system:serviceaccount:{AGENT_NS}:agent-federator-agent"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    tb = Testbed.start(tmp_path_factory.mktemp("helm-testbed"), members=(MEMBER,))
    try:
        yield tb
    finally:
        tb.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The federation's CA and certificates, made with `federator certs` as an operator would."""
    root = tmp_path_factory.mktemp("certs") / "federator-certs"
    for args in (["init", "--server-name", f"fed-federator.{NS}.svc"], ["issue", "--cluster", MEMBER]):
        subprocess.run([sys.executable, "-m", "federator", "certs", *args, "--dir", str(root)],
                       check=True, capture_output=True, text=True, timeout=60)
    return root


def _helm(helm: Path, bed: Testbed, cluster: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = Helm(helm).run(*args, "--kubeconfig", bed.cluster(cluster).kubeconfig, timeout=180)
    assert proc.returncode == 0, f"helm {' '.join(map(str, args))} failed:\n{proc.stderr}{proc.stdout}"
    return proc


def _can(bed: Testbed, cluster: str, who: str, *args: str) -> bool:
    proc = bed.kubectl(cluster, "auth", "can-i", f"--as={who}", *args, check=False)
    return proc.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def federator_release(helm: Path, bed: Testbed, certs: Path) -> Iterator[str]:
    bed.kubectl("host", "create", "namespace", NS)
    bed.kubectl("host", "-n", NS, "create", "secret", "generic", "federator-tls",
                f"--from-file=ca.crt={certs / 'ca.crt'}", f"--from-file=tls.crt={certs / 'server.crt'}",
                f"--from-file=tls.key={certs / 'server.key'}")
    _helm(helm, bed, "host", "install", "fed", FEDERATOR, "--namespace", NS, "--set", "prometheusRule.enabled=false")
    yield "fed"
    _helm(helm, bed, "host", "uninstall", "fed", "--namespace", NS)


def test_federator_chart_installs_with_its_crds(bed: Testbed, federator_release: str, helm: Path) -> None:
    status = _helm(helm, bed, "host", "status", federator_release, "--namespace", NS).stdout
    assert "STATUS: deployed" in status
    bed.kubectl("host", "wait", "--for=condition=Established", "--timeout=60s",
                "crd/federatedjobs.federator.io", "crd/memberclusters.federator.io", "crd/queues.federator.io")
    deploy = bed.kubectl_json("host", "-n", NS, "get", "deployment", "fed-federator")
    assert deploy["spec"]["replicas"] == 2
    bed.kubectl_json("host", "-n", NS, "get", "configmap", "fed-federator-dashboard")


def test_a_federated_job_can_be_applied_after_install(bed: Testbed, federator_release: str) -> None:
    bed.kubectl("host", "apply", "-f", str(ROOT / "examples" / "k8s" / "training.yaml"))  # namespace default
    job = bed.kubectl_json("host", "-n", "default", "get", "federatedjob", "llm-finetune")
    assert job["spec"]["replicas"] == 2
    assert job["spec"]["acceleratorModels"] == ["H100"]


def _models_job(name: str, **models: list[str]) -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"kind": "training", "resources": {"nvidia.com/gpu": 8}, **models}}


@pytest.mark.parametrize("key", ["acceleratorModels", "gpuModels"])
def test_the_crd_keeps_accelerator_models_under_either_name(bed: Testbed, federator_release: str, key: str) -> None:
    name = f"models-{key.lower()}"
    bed.apply("host", _models_job(name, **{key: ["H100", "A100"]}))
    assert bed.kubectl_json("host", "-n", "default", "get", "federatedjob", name)["spec"][key] == ["H100", "A100"]


def test_the_crd_refuses_both_names_of_accelerator_models(bed: Testbed, federator_release: str) -> None:
    both = _models_job("models-both", acceleratorModels=["H100"], gpuModels=["H100"])
    proc = bed.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(both), check=False)
    assert proc.returncode != 0 and "gpuModels is the old name of acceleratorModels; give one of them" in proc.stderr


@pytest.mark.parametrize(("args", "allowed"), [
    pytest.param(["list", "federatedjobs.federator.io", "--all-namespaces"], True, id="list-jobs"),
    pytest.param(["watch", "federatedjobs.federator.io", "-n", "ml-jobs"], True, id="watch-jobs"),
    pytest.param(["patch", "federatedjobs.federator.io", "-n", "ml-jobs"], True, id="patch-finalizer"),
    pytest.param(["patch", "federatedjobs.federator.io", "--subresource=status", "-n", "ml-jobs"], True,
                 id="patch-job-status"),
    pytest.param(["create", "federatedjobs.federator.io", "-n", "ml-jobs"], True, id="create-jobs-from-grpc"),
    # a finished one past its own spec.ttlSecondsAfterFinished only (backends/kube/finished_ttl.py)
    pytest.param(["delete", "federatedjobs.federator.io", "-n", "ml-jobs"], True, id="delete-past-ttl"),
    pytest.param(["create", "memberclusters.federator.io"], True, id="create-memberclusters"),
    pytest.param(["patch", "memberclusters.federator.io", "--subresource=status"], True, id="cluster-status"),
    pytest.param(["watch", "queues.federator.io"], True, id="watch-queues"),
    pytest.param(["delete", "queues.federator.io"], False, id="queues-are-the-operators"),
    pytest.param(["update", "leases.coordination.k8s.io/fed-federator-leader", "-n", NS], True, id="renew-lease"),
    pytest.param(["create", "leases.coordination.k8s.io", "-n", NS], True, id="create-lease"),
    pytest.param(["update", "leases.coordination.k8s.io/kube-scheduler", "-n", NS], False, id="other-lease"),
    pytest.param(["get", "secrets", "-n", NS], False, id="no-secrets"),
    pytest.param(["create", "pods", "-n", NS], False, id="no-pods"),
    pytest.param(["delete", "customresourcedefinitions.apiextensions.k8s.io"], False, id="no-crd-changes"),
])
def test_federator_rbac_grants_what_it_needs_and_no_more(bed: Testbed, federator_release: str,
                                                          args: list[str], allowed: bool) -> None:
    assert _can(bed, "host", SA, *args) is allowed


def test_helm_upgrade_changes_the_release(bed: Testbed, federator_release: str, helm: Path) -> None:
    _helm(helm, bed, "host", "upgrade", federator_release, FEDERATOR, "--namespace", NS, "--reuse-values",
          "--set", "replicaCount=3")
    assert bed.kubectl_json("host", "-n", NS, "get", "deployment", "fed-federator")["spec"]["replicas"] == 3


def test_the_seal_key_is_made_at_install_and_kept_by_helm_upgrade(bed: Testbed, federator_release: str,
                                                                  helm: Path) -> None:
    """The seal key (--seal-key-file) outlives upgrades: the template looks its Secret up and keeps the key it finds,
    so seals agents hold still verify after a helm upgrade (templates/seal-key.yaml)."""
    before = bed.kubectl_json("host", "-n", NS, "get", "secret", "fed-federator-seal-key")["data"]
    assert len(parse_seal_keys(base64.b64decode(before["seal-keys"]).decode()).sealing) == 32
    _helm(helm, bed, "host", "upgrade", federator_release, FEDERATOR, "--namespace", NS, "--reuse-values",
          "--set", "federator.settleSeconds=11")
    assert bed.kubectl_json("host", "-n", NS, "get", "secret", "fed-federator-seal-key")["data"] == before


def test_the_seal_key_outlives_helm_uninstall_and_a_reinstall_takes_it_back(bed: Testbed, helm: Path) -> None:
    """helm.sh/resource-policy: keep: uninstalling the release (to reinstall it, or before restoring a backup) leaves
    the key that sealed the agents' work; a release installed again under the same name adopts the Secret and its
    template's lookup keeps the key (docs/operators.md, "The federator chart")."""
    ns = "federator-seal"
    bed.kubectl("host", "create", "namespace", ns)
    flags = ("--namespace", ns, "--set", "rbac.userRoles=false", "--set", "tls.enabled=false",
             "--set", "grafanaDashboard.enabled=false", "--set", "prometheusRule.enabled=false")
    _helm(helm, bed, "host", "install", "fed", FEDERATOR, *flags)
    try:
        key = bed.kubectl_json("host", "-n", ns, "get", "secret", "fed-federator-seal-key")["data"]
        _helm(helm, bed, "host", "uninstall", "fed", "--namespace", ns)
        assert bed.kubectl_json("host", "-n", ns, "get", "secret", "fed-federator-seal-key")["data"] == key
        _helm(helm, bed, "host", "install", "fed", FEDERATOR, *flags)
        assert bed.kubectl_json("host", "-n", ns, "get", "secret", "fed-federator-seal-key")["data"] == key
    finally:
        Helm(helm).run("uninstall", "fed", "--namespace", ns, "--kubeconfig", bed.cluster("host").kubeconfig)
        bed.kubectl("host", "delete", "namespace", ns, "--wait=false")


def test_a_second_federator_installs_beside_the_first_and_upgrades_with_reuse_values(
        bed: Testbed, federator_release: str, helm: Path, tmp_path: Path) -> None:
    """Another release named fed, in another namespace, of the chart before federator.settleSeconds.

    It installs beside the first only because their ClusterRoles and bindings carry the namespace.
    Upgraded to this chart with --reuse-values, helm keeps the old release's values (settleSeconds
    stays missing: the new values.yaml is not read) and the pod's flags are still ones federator
    accepts: the template supplies the default."""
    ns = "federator-second"
    old_chart = tmp_path / "federator"
    shutil.copytree(FEDERATOR, old_chart, symlinks=False)
    shutil.copyfile(Path(__file__).parent / "previous_values" / "federator@1121082.yaml", old_chart / "values.yaml")
    bed.kubectl("host", "create", "namespace", ns)
    _helm(helm, bed, "host", "install", "fed", old_chart, "--namespace", ns, "--set", "rbac.userRoles=false",
          "--set", "tls.enabled=false", "--set", "grafanaDashboard.enabled=false")
    try:
        _helm(helm, bed, "host", "upgrade", "fed", FEDERATOR, "--namespace", ns, "--reuse-values")
        values = yaml.safe_load(_helm(helm, bed, "host", "get", "values", "fed", "--all", "--namespace", ns).stdout)
        assert "settleSeconds" not in values["federator"]  # --reuse-values: the new values.yaml unused
        deploy = bed.kubectl_json("host", "-n", ns, "get", "deployment", "fed-federator")
        args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
        assert build_parser().parse_args(args).settle_seconds == 10.0
        assert build_parser().parse_args(args).seal_key_file == Path("/etc/federator/seal-key/seal-keys")
        bed.kubectl_json("host", "-n", ns, "get", "secret", "fed-federator-seal-key")  # made by the upgrade
        roles = {r["metadata"]["name"] for r in bed.kubectl_json("host", "get", "clusterroles")["items"]}
        assert {f"{NS}-fed-federator", f"{ns}-fed-federator"} <= roles
    finally:
        _helm(helm, bed, "host", "uninstall", "fed", "--namespace", ns)


def test_helm_install_refuses_bad_values_naming_the_field(bed: Testbed, helm: Path) -> None:
    proc = Helm(helm).run("install", "bad", FEDERATOR, "--namespace", NS, "--set", "replicaCount=many",
                          "--kubeconfig", bed.host.kubeconfig)
    assert proc.returncode != 0 and "/replicaCount" in proc.stderr


@pytest.fixture(scope="module")
def agent_release(helm: Path, bed: Testbed, certs: Path) -> Iterator[str]:
    bed.kubectl(MEMBER, "create", "namespace", AGENT_NS)
    bed.kubectl(MEMBER, "-n", AGENT_NS, "create", "secret", "generic", "federator-agent-tls",
                f"--from-file=ca.crt={certs / 'ca.crt'}",
                f"--from-file=tls.crt={certs / 'clusters' / f'{MEMBER}.crt'}",
                f"--from-file=tls.key={certs / 'clusters' / f'{MEMBER}.key'}")
    _helm(helm, bed, MEMBER, "install", "agent", AGENT, "--namespace", AGENT_NS,
          "--set", f"federator.address=fed-federator.{NS}.svc:7070", "--set", f"cluster.name={MEMBER}",
          "--set", "cluster.region=east", "--set", "cluster.labels.provider=testbed")
    yield "agent"
    _helm(helm, bed, MEMBER, "uninstall", "agent", "--namespace", AGENT_NS)


def test_agent_chart_installs_and_its_pod_runs(bed: Testbed, agent_release: str) -> None:
    def running() -> list[dict[str, Any]]:
        pods = bed.kubectl_json(MEMBER, "-n", AGENT_NS, "get", "pods",
                                "-l", "app.kubernetes.io/name=federator-agent")["items"]
        return [p for p in pods if p["status"].get("phase") == "Running"]

    [pod] = eventually(running, timeout=90, what="the agent pod scheduled and Running on a kwok node")
    args = pod["spec"]["containers"][0]["args"]
    assert f"--cluster={MEMBER}" in args and "--in-cluster" in args
    assert f"--namespace={WORKLOAD_NS}" in args
    namespace = bed.kubectl_json(MEMBER, "get", "namespace", WORKLOAD_NS)  # created by the chart
    assert namespace["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize(("args", "allowed"), [
    pytest.param(["list", "nodes"], True, id="list-nodes"),
    pytest.param(["watch", "pods", "--all-namespaces"], True, id="watch-pods-everywhere"),
    pytest.param(["create", "jobs.batch", "-n", WORKLOAD_NS], True, id="create-jobs"),
    pytest.param(["delete", "deployments.apps", "-n", WORKLOAD_NS], True, id="delete-deployments"),
    # namespacePerQueue (the chart's default): the tenant namespaces are made at run time, so the workload
    # rules hold in every namespace (the agent itself refuses its own and Kubernetes' own: tenant_namespaces.py)
    pytest.param(["create", "jobs.batch", "-n", f"{WORKLOAD_NS}-research"], True, id="create-jobs-per-queue"),
    pytest.param(["create", "namespaces"], True, id="create-tenant-namespaces"),
    pytest.param(["create", "networkpolicies.networking.k8s.io", "-n", f"{WORKLOAD_NS}-research"], True,
                 id="create-network-policies"),
    pytest.param(["delete", "namespaces"], False, id="never-delete-namespaces"),
    pytest.param(["update", "namespaces"], False, id="never-relabel-namespaces"),
    pytest.param(["create", "rolebindings.rbac.authorization.k8s.io", "-n", WORKLOAD_NS], False,
                 id="no-rolebindings"),
    pytest.param(["update", "nodes"], False, id="no-node-writes"),
    pytest.param(["get", "secrets", "-n", AGENT_NS], False, id="no-secrets"),
    pytest.param(["get", "secrets", "-n", f"{WORKLOAD_NS}-research"], False, id="no-tenant-secrets"),
])
def test_agent_rbac_grants_what_it_needs_and_no_more(bed: Testbed, agent_release: str,
                                                      args: list[str], allowed: bool) -> None:
    assert _can(bed, MEMBER, AGENT_SA, *args) is allowed


def test_only_the_federator_removes_a_federated_jobs_finalizer(bed: Testbed, federator_release: str) -> None:
    """The chart's ValidatingAdmissionPolicy: a user allowed to patch FederatedJobs (here alice, cluster-admin
    but not in system:masters) cannot strip federator.io/placements, which left the member's workload an orphan
    when no federator ran; the federator's ServiceAccount can, and so can system:masters (a federator gone)."""
    job = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
           "metadata": {"name": "guarded", "namespace": "default", "finalizers": ["federator.io/placements"]},
           "spec": {"kind": "training", "resources": {"nvidia.com/gpu": 8}}}
    bed.apply("host", job)
    bed.kubectl("host", "create", "clusterrolebinding", "alice-admin", "--clusterrole=cluster-admin", "--user=alice")
    strip = ["-n", "default", "patch", "federatedjob", "guarded", "--type=json",
             "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]']
    try:
        def refused() -> str:
            proc = bed.kubectl("host", "--as=alice", *strip, check=False)
            assert proc.returncode == 0 or "metadata.finalizers" in proc.stderr, proc.stderr
            if proc.returncode == 0:  # the policy was not in force yet: put it back and try again
                bed.apply("host", job)
                return ""
            return proc.stderr

        said = eventually(refused, what="the finalizer guard to refuse alice")
        assert "federator.io/placements is removed by the federator alone" in said and "Forbidden" in said
        assert "federator.io/placements" in bed.kubectl_json("host", "-n", "default", "get", "federatedjob",
                                                             "guarded")["metadata"]["finalizers"]
        # alice may still change what is hers to change, and delete the job (the federator then removes it)
        bed.kubectl("host", "--as=alice", "-n", "default", "label", "federatedjob", "guarded", "team=ml")
        bed.kubectl("host", f"--as={SA}", *strip)
        assert not bed.kubectl_json("host", "-n", "default", "get", "federatedjob",
                                    "guarded")["metadata"].get("finalizers")
        bed.apply("host", job)
        bed.kubectl("host", *strip)  # the admin kubeconfig: system:masters
    finally:
        bed.kubectl("host", "delete", "clusterrolebinding", "alice-admin", check=False)
        bed.kubectl("host", *strip, check=False)  # as system:masters, so the deletion below does not hang
        bed.kubectl("host", "-n", "default", "delete", "federatedjob", "guarded", "--wait=false", check=False)
