"""The Helm charts, with the real helm: lint, render, validate offline, refuse bad values.

Rendered manifests are validated against the Kubernetes schemas of the oldest
and newest versions the charts support (kubernetes-validate, no cluster
needed); the process flags they pass are parsed by the federator's own CLI
parser, so a chart can never pass a flag `federator` does not have.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_support import ALERTS, DASHBOARD, DEPLOY
from helm_support import (
    AGENT,
    AGENT_CI_VALUES,
    FEDERATOR,
    NAMESPACE,
    Helm,
    by_kind,
    chart_meta,
    containers,
    one,
)

from federator.backends.kube.namespace_level import namespace_warnings
from federator.cli import build_parser
from federator.scheduler.policy import parse_policy
from federator.security.podsecurity import PodSecurity, PodSecurityLevel
from federator.security.podsecurity_member import admission_level

from support import EXAMPLES

RBAC_FEDERATOR = DEPLOY / "kubernetes" / "rbac-federator.yaml"
RBAC_AGENT = DEPLOY / "kubernetes" / "rbac-agent.yaml"
RBAC_AGENT_PER_QUEUE = DEPLOY / "kubernetes" / "rbac-agent-namespace-per-queue.yaml"
RBAC_USERS = DEPLOY / "kubernetes" / "rbac-users.yaml"
KUBE_VERSIONS = ("1.27", "1.37")  # Chart.yaml kubeVersion floor, and the newest schemas we have
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "Certificate"}  # other operators: see below
FED_ALL_ON = ["--set", "replicaCount=3", "--set", "serviceMonitor.enabled=true",
              "--set", "podDisruptionBudget.enabled=true",
              "--set", "serviceMonitor.labels.release=prom", "--set", "prometheusRule.enabled=true",
              "--set", "tls.certManager.enabled=true", "--set", "tls.certManager.issuerRef.name=federation-ca",
              "--set", "tls.certManager.issuerRef.kind=ClusterIssuer",
              "--set", "tls.certManager.extraDnsNames[0]=federator.example.net",
              "--set", "service.type=LoadBalancer", "--set", "federator.verbose=true", "-f", "POLICY",
              "--set", "federator.watchNamespace=ml-jobs",
              "--set", "image.tag=0.2.0-rc1", "--set", "grafanaDashboard.namespace=monitoring",
              "--set", "topologySpreadConstraints[0].maxSkew=1",
              "--set", "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
              "--set", "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
              "--set", "topologySpreadConstraints[0].labelSelector.matchLabels.app\\.kubernetes\\.io/name=federator",
              "--set", "revocationList.enabled=true", "--set", "revocationList.entries[0]=cluster east-1",
              "--set", "networkPolicy.enabled=true"]
FED_SINGLE = ["--set", "mode=standalone", "--set", "replicaCount=1", "--set", "persistence.enabled=true",
              "--set", "persistence.size=5Gi",
              "--set", "tls.enabled=false", "--set", "service.type=NodePort", "--set", "service.grpcNodePort=30070",
              "--set", "grafanaDashboard.enabled=false", "--set", "leaderElection.enabled=false"]


@pytest.fixture(scope="module")
def h(helm: Path) -> Helm:
    return Helm(helm)


def _policy_values(tmp: Path) -> Path:
    path = tmp / "policy-values.yaml"
    path.write_text(yaml.safe_dump({"policy": yaml.safe_load((EXAMPLES / "policy.yaml").read_text())}))
    return path


def _sim_fleet_values(tmp: Path) -> Path:
    values = {"backend": "sim", "tls": {"enabled": False}, "sim": {"timeScale": 0.1,
              "fleet": yaml.safe_load((EXAMPLES / "fleet.yaml").read_text())}}
    path = tmp / "sim-values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


CATALOG = {"vendors": {
    "acme": {"resources": ["acme.example/npu"], "productLabel": "acme.example/npu.product",
                 "dra": [{"driver": "npu.acme.example", "productAttribute": "model"}],
                 "models": [{"name": "X1", "memoryMiB": 65536}]},
    "huawei": {"resources": ["huawei.com/Ascend910"],
               "models": [{"name": "Ascend910C", "memoryMiB": 131072, "family": "Ascend910C"}]}}}


def _catalog_values(tmp: Path) -> Path:
    path = tmp / "catalog-values.yaml"
    path.write_text(yaml.safe_dump({"acceleratorCatalog": CATALOG}))
    return path


RENDER_CASES = [
    pytest.param(FEDERATOR, [], id="federator-defaults"),
    pytest.param(FEDERATOR, FED_ALL_ON, id="federator-ha-certmanager-monitoring"),
    pytest.param(FEDERATOR, FED_SINGLE, id="federator-single-sqlite-plaintext"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES], id="agent-kubernetes"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "tls.certManager.enabled=true",
                         "--set", "tls.certManager.issuerRef.name=federation-ca", "--set", "workloadNamespace=gpu-jobs",
                         "--set", "verbose=true"], id="agent-certmanager-own-namespace"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "-f", "SIM"], id="agent-sim-plaintext"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "podMonitor.enabled=true", "--set", "metrics.port=9200",
                         "--set", "probes.liveness.enabled=false"], id="agent-podmonitor-own-port-no-liveness"),
    pytest.param(FEDERATOR, ["-f", "CATALOG"], id="federator-accelerator-catalog"),
    pytest.param(FEDERATOR, ["--set", "federator.podSecurity.level=restricted",
                             "--set-json", 'federator.podSecurity.allowCapabilities=["IPC_LOCK","NET_RAW"]',
                             "--set", "federator.podSecurity.allowHostNetwork=true"], id="federator-pod-security"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "-f", "CATALOG"], id="agent-accelerator-catalog"),
    pytest.param(FEDERATOR, ["--set", "metricsToken.existingSecret=scrape-token",
                             "--set", "serviceMonitor.enabled=true"], id="federator-metrics-token"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "metricsToken.existingSecret=scrape-token",
                         "--set", "podMonitor.enabled=true"], id="agent-metrics-token"),
]


def _render(h: Helm, chart: Path, args: list[Any], tmp_path: Path) -> list[dict[str, Any]]:
    files = {"SIM": _sim_fleet_values, "POLICY": _policy_values, "CATALOG": _catalog_values}
    return h.template(chart, *[files[a](tmp_path) if a in files else a for a in args])


# -- lint ---------------------------------------------------------------------


@pytest.mark.parametrize(("chart", "args"), [
    pytest.param(FEDERATOR, [], id="federator"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES], id="federator-agent"),
])
def test_helm_lint_strict(h: Helm, chart: Path, args: list[Any]) -> None:
    proc = h.run("lint", "--strict", chart, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout


# -- render and validate ------------------------------------------------------


@pytest.mark.parametrize(("chart", "args"), RENDER_CASES)
def test_rendered_manifests_are_valid_kubernetes(h: Helm, chart: Path, args: list[Any], tmp_path: Path) -> None:
    docs = _render(h, chart, args, tmp_path)
    assert by_kind(docs, "Deployment")
    for doc in docs:
        assert doc["metadata"].get("name"), doc
        if doc["kind"] in CUSTOM_KINDS or doc["kind"] == "CustomResourceDefinition":
            continue  # CRDs: test_chart_crds_are_valid_kubernetes
        for version in KUBE_VERSIONS:
            if doc["kind"].startswith("ValidatingAdmissionPolicy") and version < "1.30":
                continue  # the guards are made on 1.30+ alone (their templates' gate): a 1.27 render has none
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} invalid for Kubernetes {version}: {exc.message}")


@pytest.mark.parametrize(("chart", "args"), RENDER_CASES)
def test_containers_run_locked_down(h: Helm, chart: Path, args: list[Any], tmp_path: Path) -> None:
    docs = _render(h, chart, args, tmp_path)
    for deploy in by_kind(docs, "Deployment"):
        pod = deploy["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
            writable = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
            assert "/tmp" in writable


@pytest.mark.parametrize(("chart", "args"), RENDER_CASES)
def test_process_flags_are_real_federator_flags(h: Helm, chart: Path, args: list[Any], tmp_path: Path) -> None:
    """Every container's args parse with `federator`'s own parser: no flag the binary lacks."""
    for c in containers(_render(h, chart, args, tmp_path)):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                parsed = build_parser().parse_args(c["args"])
            except SystemExit:
                pytest.fail(f"federator refuses the chart's args {c['args']}:\n{err.getvalue()}")
        assert parsed.command == ("serve" if chart == FEDERATOR else "agent")


@pytest.mark.parametrize("chart", [FEDERATOR, AGENT], ids=["federator", "federator-agent"])
def test_image_tag_defaults_to_app_version(h: Helm, chart: Path) -> None:
    args = [] if chart == FEDERATOR else ["-f", AGENT_CI_VALUES]
    docs = h.template(chart, *args)
    app_version = chart_meta(chart)["appVersion"]
    assert {c["image"] for c in containers(docs)} == {f"federator/federator:{app_version}"}
    docs = h.template(chart, *args, "--set", "image.digest=sha256:" + "a" * 64)
    assert {c["image"] for c in containers(docs)} == {"federator/federator@sha256:" + "a" * 64}


def test_federator_defaults_are_highly_available(h: Helm) -> None:
    docs = h.template(FEDERATOR)
    deploy = one(docs, "Deployment")
    assert deploy["spec"]["replicas"] == 2
    args = containers(docs)[0]["args"]
    assert "--in-cluster" in args
    assert "--db=/var/lib/federator/federator.db" in args  # the usage records (federator usage), on the data volume
    assert {"--lease-name=fed-federator-leader", "--identity=$(POD_NAME)", "--lease-namespace=$(POD_NAMESPACE)"} \
        <= set(args)
    assert not any(a.startswith("--policy") for a in args)  # no policy given: the built-in defaults
    # Only the leader is Ready (a standby opens no gRPC port): a default budget would block its node's drain.
    assert by_kind(docs, "PodDisruptionBudget") == []
    c = containers(docs)[0]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": 7070, "metrics": 9090}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}  # open with a metrics token too
    # mTLS: not a TCP connect, which a frozen leader passes (outside QA kubedr K6), but /readyz, the leader's alone
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert "tcpSocket" not in c["readinessProbe"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["FEDERATOR_CERT"] == "/etc/federator/tls/tls.crt"
    tls_volume = next(v for v in deploy["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["secretName"] == "federator-tls"
    service = one(docs, "Service", "fed-federator")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"grpc": 7070}
    metrics = one(docs, "Service", "-metrics")
    assert {p["name"]: p["port"] for p in metrics["spec"]["ports"]} == {"metrics": 9090}
    assert "--listen=0.0.0.0:7070" in c["args"] and "--metrics-listen=0.0.0.0:9090" in c["args"]


def test_standalone_plaintext_federator(h: Helm) -> None:
    docs = h.template(FEDERATOR, *FED_SINGLE)
    c = containers(docs)[0]
    assert "--db=/var/lib/federator/federator.db" in c["args"] and "--in-cluster" not in c["args"]
    assert by_kind(docs, "ClusterRole") == [] and by_kind(docs, "Role") == []  # no Kubernetes API use
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}  # as with TLS
    assert {"name": "FEDERATOR_INSECURE", "value": "1"} in c["env"]
    assert by_kind(docs, "PodDisruptionBudget") == []  # one replica: a PDB would block every drain
    claim = one(docs, "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"


def _manifest_rules(path: Path, kind: str, name_suffix: str = "") -> list[dict[str, Any]]:
    [doc] = [d for d in yaml.safe_load_all(path.read_text())
             if d and d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    return list(doc["rules"])


def _without_names(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "resourceNames"} for r in rules]


def test_federator_rbac_is_the_verified_least_privilege(h: Helm) -> None:
    """The chart grants exactly deploy/kubernetes/rbac-federator.yaml, which the Kubernetes tests run under."""
    docs = h.template(FEDERATOR)
    role = one(docs, "ClusterRole", "fed-federator")
    assert role["metadata"]["name"] == f"{NAMESPACE}-fed-federator"
    assert role["rules"] == _manifest_rules(RBAC_FEDERATOR, "ClusterRole")
    lease_rules = one(docs, "Role", "-leader-election")["rules"]
    assert _without_names(lease_rules) == _without_names(_manifest_rules(RBAC_FEDERATOR, "Role"))
    assert [r.get("resourceNames") for r in lease_rules] == [None, ["fed-federator-leader"]]
    assert "--lease-name=fed-federator-leader" in containers(docs)[0]["args"]
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "fed-federator", "namespace": NAMESPACE}]


def test_the_user_cluster_roles_are_the_manifests_and_aggregate_into_edit_and_view(h: Helm) -> None:
    """federator-user and federator-viewer: the chart renders exactly deploy/kubernetes/rbac-users.yaml."""
    docs = h.template(FEDERATOR)
    manifests = {d["metadata"]["name"]: d for d in yaml.safe_load_all(RBAC_USERS.read_text()) if d}
    assert set(manifests) == {"federator-user", "federator-viewer"}
    for name, manifest in manifests.items():
        role = one(docs, "ClusterRole", name)
        assert role["metadata"]["name"] == name and role["rules"] == manifest["rules"]
        aggregate = {k: v for k, v in role["metadata"]["labels"].items() if k.startswith("rbac.authorization")}
        assert aggregate == {k: v for k, v in manifest["metadata"]["labels"].items() if k.startswith("rbac.")}
    user = manifests["federator-user"]["rules"]
    assert {"create", "delete"} <= set(user[0]["verbs"]) and user[0]["resources"] == ["federatedjobs"]
    assert not [r for r in manifests["federator-viewer"]["rules"] if set(r["verbs"]) - {"get", "list", "watch"}]
    off = h.template(FEDERATOR, "--set", "rbac.userRoles=false")
    assert [d["metadata"]["name"] for d in off if d["kind"] == "ClusterRole"] == [f"{NAMESPACE}-fed-federator"]


def test_the_pod_security_values_reach_the_federator(h: Helm) -> None:
    """Baseline by default; an operator whose training uses RDMA allows IPC_LOCK and the host network."""
    args = containers(h.template(FEDERATOR))[0]["args"]
    assert "--pod-security=baseline" in args
    assert not [a for a in args if a.startswith(("--allow-capability", "--allow-host-network"))]
    args = containers(h.template(FEDERATOR, "--set-json", 'federator.podSecurity.allowCapabilities=["IPC_LOCK"]',
                                 "--set", "federator.podSecurity.allowHostNetwork=true"))[0]["args"]
    assert {"--pod-security=baseline", "--allow-capability=IPC_LOCK", "--allow-host-network"} <= set(args)


def test_the_orphan_grace_value_reaches_the_federator(h: Helm) -> None:
    """An operator who restores stores slowly holds orphans longer without knowing the flag's name."""
    assert "--orphan-grace=1800" in containers(h.template(FEDERATOR))[0]["args"]
    args = containers(h.template(FEDERATOR, "--set", "federator.orphanGrace=7200"))[0]["args"]
    assert "--orphan-grace=7200" in args


def test_the_usage_retention_value_reaches_the_federator(h: Helm) -> None:
    """Usage records are pruned by default (90 days, written as an integer, not 7.776e+06), and 0 keeps them."""
    assert "--usage-retention=7776000" in containers(h.template(FEDERATOR))[0]["args"]
    args = containers(h.template(FEDERATOR, "--set", "federator.usageRetention=0"))[0]["args"]
    assert "--usage-retention=0" in args
    assert "/federator/usageRetention" in h.template_error(FEDERATOR, "--set", "federator.usageRetention=-1")


def test_the_audit_log_and_provider_trust_values_reach_the_federator(h: Helm) -> None:
    args = containers(h.template(FEDERATOR))[0]["args"]
    assert "--audit-log=-" in args and not [a for a in args if a.startswith("--trust")]
    docs = h.template(FEDERATOR, "--set", "auditLog.path=/var/lib/federator/audit.jsonl",
                      "--set", "providerTrust.existingSecret=provider-cas")
    c = containers(docs)[0]
    assert "--audit-log=/var/lib/federator/audit.jsonl" in c["args"]
    assert "--trust=/etc/federator/trust/trust.yaml" in c["args"]
    assert {"name": "provider-trust", "mountPath": "/etc/federator/trust", "readOnly": True} in c["volumeMounts"]
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "provider-trust", "secret": {"secretName": "provider-cas"}} in volumes
    off = containers(h.template(FEDERATOR, "--set", "auditLog.enabled=false"))[0]["args"]
    assert not [a for a in off if a.startswith("--audit-log")]


def test_agent_rbac_is_the_verified_least_privilege(h: Helm) -> None:
    """namespacePerQueue=false: the rules of rbac-agent.yaml, the workloads in one namespace."""
    docs = h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", "workloadNamespace=gpu-jobs",
                      "--set", "namespacePerQueue=false")
    namespaced = [{**r, "resourceNames": ["gpu-jobs"]} if r.get("resourceNames") == ["federator-workloads"] else r
                  for r in _manifest_rules(RBAC_AGENT, "ClusterRole")]  # the one namespace it reads: its own
    assert one(docs, "ClusterRole")["rules"] == namespaced
    assert one(docs, "ClusterRoleBinding")["roleRef"]["name"] == one(docs, "ClusterRole")["metadata"]["name"]
    assert "--namespace-per-queue" not in containers(docs)[0]["args"]
    role = one(docs, "Role", "-workloads")
    assert role["rules"] == _manifest_rules(RBAC_AGENT, "Role", "-workloads")
    assert role["metadata"]["namespace"] == "gpu-jobs"
    assert one(docs, "RoleBinding", "-workloads")["metadata"]["namespace"] == "gpu-jobs"
    _assert_namespace_claim_rbac(docs, "gpu-jobs")


def _assert_namespace_claim_rbac(docs: list[dict[str, Any]], namespace: str) -> None:
    """The agent's claim on its namespace (backends/kube/namespace_claim.py): the Lease verbs it uses, there only,
    exactly rbac-agent.yaml's Role federator-agent-namespace-claim."""
    role = one(docs, "Role", "-namespace-claim")
    assert role["rules"] == _manifest_rules(RBAC_AGENT, "Role", "-namespace-claim") == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]
    binding = one(docs, "RoleBinding", "-namespace-claim")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == namespace
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == one(docs, "ServiceAccount")["metadata"]["name"]


def test_agent_namespace_per_queue_is_on_by_default_with_the_verified_rbac(h: Helm) -> None:
    """By default each queue's placements run in a namespace of their own: the flag, and cluster-wide rules that
    are exactly rbac-agent.yaml's ClusterRole and rbac-agent-namespace-per-queue.yaml's, nothing namespaced."""
    docs = h.template(AGENT, "-f", AGENT_CI_VALUES)
    assert "--namespace-per-queue" in containers(docs)[0]["args"]
    assert one(docs, "ClusterRole", "-agent")["rules"] == _manifest_rules(RBAC_AGENT, "ClusterRole")
    tenants = one(docs, "ClusterRole", "-tenants")
    assert tenants["rules"] == _manifest_rules(RBAC_AGENT_PER_QUEUE, "ClusterRole")
    binding = one(docs, "ClusterRoleBinding", "-tenants")
    assert binding["roleRef"]["name"] == tenants["metadata"]["name"]
    assert binding["subjects"][0]["name"] == one(docs, "ServiceAccount")["metadata"]["name"]
    # Namespaced: only the claim on workloadNamespace.
    assert [d["metadata"]["name"] for d in by_kind(docs, "Role") + by_kind(docs, "RoleBinding")] == \
        [one(docs, "Role", "-namespace-claim")["metadata"]["name"]] * 2
    _assert_namespace_claim_rbac(docs, "federator-workloads")
    # The plain manifests: the extra file grants the one namespace's rules everywhere, and what making one needs.
    workload_rules = _manifest_rules(RBAC_AGENT, "Role", "-workloads")
    extra = [r for r in tenants["rules"] if r not in workload_rules]
    assert [r for r in tenants["rules"] if r in workload_rules] == workload_rules
    assert extra == [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create"]},
                     {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["create"]},
                     {"apiGroups": ["kueue.x-k8s.io"], "resources": ["localqueues"], "verbs": ["create"]}]


def test_serve_logs_false_passes_no_logs_and_drops_the_pods_log_rule(h: Helm) -> None:
    """`federator logs`: by default the agent may read its pods' output (get pods/log, in the workload namespaces
    only) and serves it; serveLogs=false passes --no-logs and grants no pods/log at all (least privilege)."""
    log_rule = {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}
    for per_queue in ("true", "false"):
        on = h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", f"namespacePerQueue={per_queue}")
        off = h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", f"namespacePerQueue={per_queue}",
                         "--set", "serveLogs=false")
        assert "--no-logs" not in containers(on)[0]["args"] and "--no-logs" in containers(off)[0]["args"]
        assert [d["kind"] for d in on if log_rule in (d.get("rules") or [])] == \
            ["ClusterRole" if per_queue == "true" else "Role"]
        assert [d["kind"] for d in off if log_rule in (d.get("rules") or [])] == []


def test_agent_args_carry_cluster_identity(h: Helm) -> None:
    c = containers(h.template(AGENT, "-f", AGENT_CI_VALUES))[0]
    assert c["args"][:4] == ["agent", "--cluster=west-1", "--region=west",
                             "--server=federator.federator-system.svc:7070"]
    assert "--label=federator.io/price-per-accelerator-hour=2.10" in c["args"]


def test_agent_region_may_be_left_to_the_certificate_in_its_secret(h: Helm) -> None:
    """0.16.0: a certificate issued with `certs issue --region` binds the region, and the agent takes it: the chart
    passes no --region when cluster.region is empty and the certificate is the operator's Secret."""
    c = containers(h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", "cluster.region="))[0]
    assert c["args"][:3] == ["agent", "--cluster=west-1", "--server=federator.federator-system.svc:7070"]
    assert not [a for a in c["args"] if a.startswith("--region")]


def test_agent_sim_backend_mounts_the_fleet_it_was_given(h: Helm, tmp_path: Path) -> None:
    docs = h.template(AGENT, "-f", AGENT_CI_VALUES, "-f", _sim_fleet_values(tmp_path))
    fleet = yaml.safe_load(one(docs, "ConfigMap", "-fleet")["data"]["fleet.yaml"])
    assert fleet == yaml.safe_load((EXAMPLES / "fleet.yaml").read_text())
    assert "--sim=/etc/federator/fleet/fleet.yaml" in containers(docs)[0]["args"]


def test_cert_manager_certificates_carry_federator_identities(h: Helm, tmp_path: Path) -> None:
    fed = one(_render(h, FEDERATOR, FED_ALL_ON, tmp_path), "Certificate")
    assert fed["spec"]["uris"] == ["federator://server/federator"]
    assert "federator.example.net" in fed["spec"]["dnsNames"]
    assert f"fed-federator.{NAMESPACE}.svc" in fed["spec"]["dnsNames"]
    assert fed["spec"]["issuerRef"] == {"name": "federation-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    agent = one(h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", "tls.certManager.enabled=true",
                           "--set", "tls.certManager.issuerRef.name=federation-ca"), "Certificate")
    assert agent["spec"]["uris"] == ["federator://cluster/west-1"]
    assert agent["spec"]["usages"][0] == "client auth"


def test_prometheus_rule_is_alerts_yaml_and_promtool_accepts_it(h: Helm, promtool: Path, tmp_path: Path) -> None:
    docs = _render(h, FEDERATOR, FED_ALL_ON, tmp_path)
    rule = one(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())
    rules_file = tmp_path / "rendered-rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    proc = subprocess.run([str(promtool), "check", "rules", str(rules_file)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("service_type", ["ClusterIP", "LoadBalancer", "NodePort"])
def test_metrics_are_on_their_own_cluster_ip_service_and_monitored_there(
        h: Helm, service_type: str, tmp_path: Path) -> None:
    """The gRPC Service may be a LoadBalancer open to other providers' agents: /metrics must not ride on it."""
    docs = h.template(FEDERATOR, "--set", f"service.type={service_type}", "--set", "serviceMonitor.enabled=true")
    services = {d["metadata"]["name"]: d for d in by_kind(docs, "Service")}
    assert set(services) == {"fed-federator", "fed-federator-metrics"}
    grpc, metrics = services["fed-federator"], services["fed-federator-metrics"]
    assert grpc["spec"]["type"] == service_type
    assert [p["name"] for p in grpc["spec"]["ports"]] == ["grpc"]
    assert metrics["spec"]["type"] == "ClusterIP"
    assert [(p["name"], p["port"], p["targetPort"]) for p in metrics["spec"]["ports"]] == [("metrics", 9090, "metrics")]
    assert metrics["spec"]["publishNotReadyAddresses"] is True  # standbys serve /metrics, and are never Ready
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert _selects(metrics["spec"]["selector"], pod_labels)
    notes = metrics["metadata"]["annotations"]
    assert notes == {"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics"}
    assert "prometheus.io/scrape" not in (grpc["metadata"].get("annotations") or {})
    monitor = one(docs, "ServiceMonitor")
    chosen = [name for name, svc in services.items()
              if _selects(monitor["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])]
    assert chosen == ["fed-federator-metrics"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_dashboard_configmap_is_the_dashboard_for_the_grafana_sidecar(h: Helm, tmp_path: Path) -> None:
    docs = _render(h, FEDERATOR, FED_ALL_ON, tmp_path)
    cm = one(docs, "ConfigMap", "-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    assert json.loads(cm["data"]["federator.json"]) == json.loads(DASHBOARD.read_text())


def test_chart_crds_are_valid_kubernetes(h: Helm) -> None:
    crds = {d["spec"]["names"]["kind"]: d for d in by_kind(h.template(FEDERATOR), "CustomResourceDefinition")}
    if not crds:
        pytest.skip("deploy/helm/federator/crds/ is empty: the Kubernetes issue has not added the CRDs yet")
    assert set(crds) == {"FederatedJob", "MemberCluster", "Queue"}
    for kind, crd in crds.items():
        assert crd["spec"]["group"] == "federator.io"
        assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1"]
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(crd, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"CRD of {kind} invalid for Kubernetes {version}: {exc.message}")


# -- refused values ------------------------------------------------------------


@pytest.mark.parametrize(("chart", "args", "field"), [
    pytest.param(FEDERATOR, ["--set", "replicaCount=two"], "/replicaCount", id="replicas-not-a-number"),
    pytest.param(FEDERATOR, ["--set", "replicaCount=0"], "/replicaCount", id="no-replicas"),
    pytest.param(FEDERATOR, ["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy", id="pull-policy"),
    pytest.param(FEDERATOR, ["--set", "service.grpcPort=70000"], "/service/grpcPort", id="port-out-of-range"),
    pytest.param(FEDERATOR, ["--set", "service.type=Ingress"], "/service/type", id="service-type"),
    pytest.param(FEDERATOR, ["--set", "federator.reportInterval=0"], "/federator/reportInterval",
                 id="report-interval-zero"),
    pytest.param(FEDERATOR, ["--set", "tls.certManager.duration=90days"], "/tls/certManager/duration",
                 id="duration-not-go"),
    pytest.param(FEDERATOR, ["--set", "serviceMonitor.interval=often"], "/serviceMonitor/interval",
                 id="scrape-interval"),
    pytest.param(FEDERATOR, ["--set", "persistence.size=lots"], "/persistence/size", id="size-not-quantity"),
    pytest.param(FEDERATOR, ["--set", "replicas=2"], "replicas", id="unknown-key-typo"),
    pytest.param(FEDERATOR, ["--set", "federator.lostAfterSeconds=5"], "lostAfterSeconds", id="unknown-nested-key"),
    pytest.param(FEDERATOR, ["--set", "leaderElection.enabled=false"], "'/replicaCount': maximum: got 2, want 1",
                 id="ha-without-leader-election"),
    pytest.param(FEDERATOR, ["--set", "leaderElection.enabled=false"], "'/leaderElection/enabled': value must be true",
                 id="ha-without-leader-election-names-both"),
    pytest.param(FEDERATOR, ["--set", "persistence.enabled=true"], "'/persistence/enabled': value must be false",
                 id="sqlite-volume-ha"),
    pytest.param(FEDERATOR, ["--set", "replicaCount=3", "--set", "persistence.enabled=true"],
                 "'/replicaCount': maximum: got 3, want 1", id="sqlite-volume-three-replicas"),
    pytest.param(FEDERATOR, ["--set", "mode=standalone"], "'/replicaCount': maximum: got 2, want 1",
                 id="standalone-ha"),
    pytest.param(FEDERATOR, ["--set", "mode=standalone"], "'/mode': value must be 'kubernetes'",
                 id="standalone-ha-names-both"),
    pytest.param(FEDERATOR, ["--set", "mode=sqlite"], "/mode", id="unknown-mode"),
    pytest.param(FEDERATOR, ["--set", "federator.podSecurity.level=none"], "/federator/podSecurity/level",
                 id="pod-security-level-unknown"),
    pytest.param(FEDERATOR, ["--set-json", 'federator.podSecurity.allowCapabilities=["cap ipc"]'],
                 "/federator/podSecurity/allowCapabilities/0", id="pod-security-capability-not-a-name"),
    pytest.param(FEDERATOR, ["--set", "policy.queue.research.weight=2"], "queue", id="policy-typo"),
    pytest.param(FEDERATOR, ["--set", "federator.watchNamespace=ML_Jobs"], "/federator/watchNamespace",
                 id="watch-namespace-not-dns"),
    pytest.param(FEDERATOR, ["--set", "tls.secretName="], "'/tls/secretName': minLength: got 0, want 1",
                 id="tls-without-secret"),
    pytest.param(FEDERATOR, ["--set", "tls.secretName=fed/tls"], "'/tls/secretName'", id="tls-secret-not-a-name"),
    pytest.param(FEDERATOR, ["--set", "tls.certManager.enabled=true"],
                 "'/tls/certManager/issuerRef/name': minLength: got 0, want 1", id="cert-manager-without-issuer"),
    pytest.param(FEDERATOR, ["--set", "leaderElection.leaseName=Fed_Leader"], "'/leaderElection/leaseName'",
                 id="lease-name-not-dns"),
    pytest.param(FEDERATOR, ["--set", "leaderElection.renewDeadline=20"],
                 "retryPeriod < renewDeadline < leaseDuration", id="renew-deadline-past-lease"),
    pytest.param(FEDERATOR, ["--set", "leaderElection.retryPeriod=10"],
                 "retryPeriod < renewDeadline < leaseDuration", id="retry-period-not-below-renew"),
    pytest.param(FEDERATOR, ["--set", "leaderElection.leaseDuration=0"], "'/leaderElection/leaseDuration'",
                 id="lease-duration-zero"),
    pytest.param(FEDERATOR, ["--set", "federator.leaseSeconds=-10"], "'/federator/leaseSeconds'",
                 id="lease-seconds-negative"),
    pytest.param(FEDERATOR, ["--set", "federator.lostAfter=0"], "'/federator/lostAfter'", id="lost-after-zero"),
    pytest.param(FEDERATOR, ["--set", "federator.cycleInterval=-1"], "'/federator/cycleInterval'",
                 id="cycle-interval-negative"),
    pytest.param(FEDERATOR, ["--set", "federator.settleSeconds=-1"], "'/federator/settleSeconds'",
                 id="settle-seconds-negative"),
    pytest.param(FEDERATOR, ["--set", "service.metricsPort=0"], "'/service/metricsPort'", id="metrics-port-zero"),
    pytest.param(FEDERATOR, ["--set", "service.metricsPort=7070"], "service.metricsPort: 7070 is service.grpcPort",
                 id="metrics-port-is-grpc-port"),
    pytest.param(AGENT, [], "federator.address", id="agent-needs-address"),
    pytest.param(AGENT, ["--set", "federator.address=f:7070"], "cluster.name", id="agent-needs-name"),
    pytest.param(AGENT, ["--set", "federator.address=f:7070", "--set", "cluster.name=w", "--set", "tls.enabled=false"],
                 "cluster.region", id="agent-needs-region"),
    pytest.param(AGENT, ["--set", "federator.address=f:7070", "--set", "cluster.name=w", "--set",
                         "tls.certManager.enabled=true", "--set", "tls.certManager.issuerRef.name=ca"],
                 "cluster.region: set this member cluster's region", id="agent-with-cert-manager-needs-region"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "cluster.name=West_1"], "/cluster/name",
                 id="agent-name-not-dns"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "cluster.region=West_1"], "/cluster/region",
                 id="agent-region-not-dns"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "cluster.labels.bad!key=x"],
                 "'bad!key' does not match pattern", id="agent-label-key"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "federator.address=https://f.example.net"],
                 "/federator/address", id="agent-address-url"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "federator.address=f.example.net:70000"],
                 "'/federator/address'", id="agent-address-port-too-high"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "federator.address=f.example.net:0"],
                 "'/federator/address'", id="agent-address-port-zero"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "metrics.port=0"], "'/metrics/port'", id="agent-port-zero"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "metrics.port=65536"], "'/metrics/port'",
                 id="agent-port-too-high"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "tls.secretName="],
                 "'/tls/secretName': minLength: got 0, want 1", id="agent-tls-without-secret"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "tls.certManager.enabled=true"],
                 "'/tls/certManager/issuerRef/name': minLength: got 0, want 1", id="agent-cert-manager-without-issuer"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "backend=slurm"], "/backend", id="agent-backend"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "backend=sim"], "sim.fleet", id="agent-sim-needs-fleet"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "sim.timeScale=-1"], "/sim/timeScale",
                 id="agent-time-scale"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "gangAdmission.kueueQueue=Team_A"],
                 "/gangAdmission/kueueQueue", id="agent-kueue-queue-not-dns"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "gangAdmission.timeoutSeconds=-5"],
                 "/gangAdmission/timeoutSeconds", id="agent-gang-timeout-negative"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "gangAdmission.kueueAdmissionTimeoutSeconds=-1"],
                 "/gangAdmission/kueueAdmissionTimeoutSeconds", id="agent-kueue-timeout-negative"),
    pytest.param(FEDERATOR, ["--set", "acceleratorCatalog.vendor.acme.resources[0]=acme.io/npu"],
                 "acceleratorCatalog", id="catalog-typo"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "acceleratorCatalog=3"], "acceleratorCatalog",
                 id="agent-catalog-not-yaml"),
])
def test_bad_values_are_refused_naming_the_field(h: Helm, chart: Path, args: list[Any], field: str) -> None:
    assert field in h.template_error(chart, *args)


@pytest.mark.parametrize(("chart", "args"), [
    pytest.param(FEDERATOR, ["--set", "tls.enabled=false", "--set", "tls.secretName="], id="plaintext-needs-no-secret"),
    pytest.param(FEDERATOR, ["--set", "tls.secretName=", "--set", "tls.certManager.enabled=true",
                             "--set", "tls.certManager.issuerRef.name=federation-ca"], id="cert-manager-names-it"),
    pytest.param(FEDERATOR, ["--set", "leaderElection.enabled=false", "--set", "replicaCount=1",
                             "--set", "leaderElection.renewDeadline=20"], id="lease-timing-unused-without-election"),
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES, "--set", "federator.address=f.example.net:65535",
                         "--set", "metrics.port=1"], id="agent-port-bounds"),
])
def test_values_at_the_edges_still_render(h: Helm, chart: Path, args: list[Any]) -> None:
    assert by_kind(h.template(chart, *args), "Deployment")


def test_the_lease_timings_the_chart_refuses_are_the_ones_the_federator_refuses() -> None:
    """The chart's check mirrors the process's: these values would have crash-looped the pod."""
    from federator.backends.kube.options import kube_options_problem

    def problem(retry: str, renew: str, lease: str) -> str | None:
        args = build_parser().parse_args(["serve", "--in-cluster", f"--retry-period={retry}",
                                          f"--renew-deadline={renew}", f"--lease-duration={lease}"])
        return kube_options_problem(args)

    assert problem("2", "10", "15") is None  # the chart's defaults
    assert problem("2", "20", "15") and problem("10", "10", "15")


def test_policy_values_become_the_policy_file_the_federator_reads(h: Helm, tmp_path: Path) -> None:
    docs = _render(h, FEDERATOR, FED_ALL_ON, tmp_path)
    text = one(docs, "ConfigMap", "-policy")["data"]["policy.yaml"]
    assert yaml.safe_load(text) == yaml.safe_load((EXAMPLES / "policy.yaml").read_text())
    config = parse_policy(text, source="chart")  # the federator's own parser accepts it
    assert config is not None
    c = containers(docs)[0]
    assert "--policy=/etc/federator/policy/policy.yaml" in c["args"]
    assert "--watch-namespace=ml-jobs" in c["args"]
    assert {"name": "policy", "mountPath": "/etc/federator/policy", "readOnly": True} in c["volumeMounts"]


def test_a_policy_file_given_with_set_file_is_mounted_as_it_is(h: Helm) -> None:
    """operators.md says `policy` is "the content of a policy file"; its natural reading, `--set-file
    policy=FILE`, gives the value as a string, which the schema refused (`at '/policy': got string, want object`,
    outside QA). A string is written to the ConfigMap as it is (its comments kept); a mapping as YAML, as before."""
    path = EXAMPLES / "policy.yaml"
    docs = h.template(FEDERATOR, "--set-file", f"policy={path}")
    text = one(docs, "ConfigMap", "-policy")["data"]["policy.yaml"]
    assert text.rstrip("\n") == path.read_text().rstrip("\n")
    assert parse_policy(text, source="chart") is not None  # the federator's own parser accepts it
    pod = one(docs, "Deployment")["spec"]["template"]
    assert "--policy=/etc/federator/policy/policy.yaml" in containers(docs)[0]["args"]
    # a policy change does not roll the pod: the federator re-reads the mounted file (server/policy_file.py)
    assert "checksum/policy" not in pod["metadata"].get("annotations", {})
    assert "/policy" in h.template_error(FEDERATOR, "--set", "policy=3")  # neither a mapping nor a file's text


CATALOG_FLAG = "--accelerator-catalog=/etc/federator/accelerator-catalog/accelerators.yaml"


@pytest.mark.parametrize(("chart", "base"), [(FEDERATOR, []), (AGENT, ["-f", AGENT_CI_VALUES])],
                         ids=["federator", "federator-agent"])
@pytest.mark.parametrize("as_text", [False, True], ids=["yaml-value", "string-value"])
def test_accelerator_catalog_values_become_the_catalog_file_the_process_reads(
        h: Helm, chart: Path, base: list[Any], as_text: bool, tmp_path: Path) -> None:
    from federator.catalog import builtin_catalog, parse_catalog_text

    plain = h.template(chart, *base)
    assert not any(a.startswith("--accelerator-catalog") for a in containers(plain)[0]["args"])
    assert not [d for d in by_kind(plain, "ConfigMap") if d["metadata"]["name"].endswith("-accelerator-catalog")]
    values = tmp_path / "values.yaml"
    catalog_value: Any = yaml.safe_dump(CATALOG) if as_text else CATALOG
    values.write_text(yaml.safe_dump({"acceleratorCatalog": catalog_value}))
    docs = h.template(chart, *base, "-f", values)
    text = one(docs, "ConfigMap", "-accelerator-catalog")["data"]["accelerators.yaml"]
    cat = builtin_catalog().merged(parse_catalog_text(text, source="chart"))  # the loader the process uses
    acme = cat.vendor("acme")
    assert acme is not None and acme.product_labels == ("acme.example/npu.product",)
    assert [d.driver for d in acme.dra] == ["npu.acme.example"]
    assert cat.describe_model("Ascend910C").memory_mib == 131072 and cat.describe_model("Ascend910B3").family
    deploy = one(docs, "Deployment")
    pod = deploy["spec"]["template"]
    c = containers(docs)[0]
    assert CATALOG_FLAG in c["args"]
    assert {"name": "accelerator-catalog", "mountPath": "/etc/federator/accelerator-catalog",
            "readOnly": True} in c["volumeMounts"]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "accelerator-catalog"]
    assert volume["configMap"]["name"].endswith("-accelerator-catalog")
    assert "checksum/accelerator-catalog" in pod["metadata"]["annotations"]  # a new catalog rolls the pod


def test_single_replica_without_leader_election(h: Helm) -> None:
    docs = h.template(FEDERATOR, "--set", "replicaCount=1", "--set", "leaderElection.enabled=false")
    args = containers(docs)[0]["args"]
    assert "--no-leader-elect" in args and not any(a.startswith("--lease-name") for a in args)
    assert by_kind(docs, "Role") == [] and by_kind(docs, "PodDisruptionBudget") == []


def test_agent_on_kubernetes_runs_in_cluster_with_its_workload_namespace(h: Helm) -> None:
    args = containers(h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", "workloadNamespace=gpu-jobs"))[0]["args"]
    assert "--in-cluster" in args and "--namespace=gpu-jobs" in args
    assert not any(a.startswith("--sim") for a in args)


def test_agent_workloads_default_to_their_own_namespace_kept_on_uninstall(h: Helm) -> None:
    """Other organisations' workloads never land in the release namespace, beside the agent's credentials."""
    docs = h.template(AGENT, "-f", AGENT_CI_VALUES)
    assert "--namespace=federator-workloads" in containers(docs)[0]["args"]
    assert one(docs, "Deployment")["metadata"]["namespace"] == NAMESPACE
    namespaced = h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", "namespacePerQueue=false")
    assert one(namespaced, "Role", "-workloads")["metadata"]["namespace"] == "federator-workloads"
    assert one(namespaced, "RoleBinding", "-workloads")["metadata"]["namespace"] == "federator-workloads"
    namespace = one(docs, "Namespace")
    assert namespace["metadata"]["name"] == "federator-workloads"
    assert namespace["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"  # its workloads may still run
    assert by_kind(h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", "createWorkloadNamespace=false"),
                   "Namespace") == []
    own = h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", "workloadNamespace=gpu-jobs")
    assert one(own, "Namespace")["metadata"]["name"] == "gpu-jobs"


@pytest.mark.parametrize(("release_namespace", "args"), [
    pytest.param("ml-agents", ["--set", "workloadNamespace=ml-agents"], id="named-explicitly"),
    pytest.param("federator-workloads", [], id="agent-installed-in-the-default"),
])
def test_agent_refuses_workloads_in_its_release_namespace(h: Helm, release_namespace: str, args: list[str]) -> None:
    proc = h.run("template", "agent", AGENT, "--namespace", release_namespace, "-f", AGENT_CI_VALUES, *args)
    assert proc.returncode != 0
    assert f"workloadNamespace: {release_namespace} is the release namespace" in proc.stderr


def test_agent_fence_after_value_becomes_the_agents_fence_flag(h: Helm) -> None:
    def fence(*args: str) -> float:
        parsed = build_parser().parse_args(containers(h.template(AGENT, "-f", AGENT_CI_VALUES, *args))[0]["args"])
        return float(parsed.fence_after)

    assert fence() == 0.0  # off, as the agent's own default
    assert fence("--set", "fenceAfter=45") == 45.0
    assert "'/fenceAfter'" in h.template_error(AGENT, "-f", AGENT_CI_VALUES, "--set", "fenceAfter=-1")


def test_agent_gang_admission_values_become_its_flags(h: Helm) -> None:
    args = containers(h.template(AGENT, "-f", AGENT_CI_VALUES))[0]["args"]
    assert "--gang-timeout=120" in args and not any(a.startswith("--kueue-") for a in args)
    args = containers(h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", "gangAdmission.kueueQueue=team-a",
                                 "--set", "gangAdmission.timeoutSeconds=30"))[0]["args"]
    assert "--kueue-queue=team-a" in args and "--gang-timeout=30" in args
    assert "--kueue-admission-timeout=600" in args
    args = containers(h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", "gangAdmission.kueueQueue=team-a",
                                 "--set", "gangAdmission.kueueAdmissionTimeoutSeconds=0"))[0]["args"]
    assert "--kueue-admission-timeout=0" in args


def _resolve(value: int | str, replicas: int, *, round_up: bool) -> int:
    """A Deployment's maxSurge (rounded up) or maxUnavailable (rounded down), as the deployment controller counts."""
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    return -(-replicas * percent // 100) if round_up else replicas * percent // 100


@pytest.mark.parametrize("replicas", [1, 2, 3, 5])
def test_a_rolling_update_with_leader_election_cannot_stall_on_the_one_ready_pod(h: Helm, replicas: int) -> None:
    """Only the leader is ever Ready (a standby opens no gRPC port), so a rollout that keeps
    replicas - maxUnavailable pods available waits for ever: the new pods wait for the Lease the old
    leader holds, and the old leader is never stopped. The strategy must let the old leader go
    (minAvailable 0) and may start a new pod beside it (it waits for the Lease)."""
    deploy = one(h.template(FEDERATOR, "--set", f"replicaCount={replicas}"), "Deployment")
    strategy = deploy["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    rolling = strategy["rollingUpdate"]
    min_available = replicas - _resolve(rolling["maxUnavailable"], replicas, round_up=False)
    assert min_available <= 0, f"the rollout keeps {min_available} Ready pod(s), but only the leader is ever Ready"
    assert _resolve(rolling["maxSurge"], replicas, round_up=True) >= 1  # the new pod starts before the old one ends


@pytest.mark.parametrize("args", [
    pytest.param(["--set", "replicaCount=1", "--set", "leaderElection.enabled=false"], id="kubernetes-no-election"),
    pytest.param(["--set", "replicaCount=1", "--set", "persistence.enabled=true"], id="kubernetes-usage-volume"),
    pytest.param(FED_SINGLE, id="standalone-sqlite"),
    pytest.param(["--set", "replicaCount=1", "--set", "mode=standalone", "--set", "persistence.ephemeralOk=true"],
                 id="standalone-emptydir"),
])
def test_without_leader_election_or_with_a_sqlite_volume_the_old_pod_stops_first(h: Helm, args: list[str]) -> None:
    """No Lease to wait for, or one SQLite file on a volume: a surge would run two schedulers on one store."""
    deploy = one(h.template(FEDERATOR, *args), "Deployment")
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}


def test_persistence_with_one_replica_keeps_the_usage_records_in_kubernetes_mode(h: Helm) -> None:
    docs = h.template(FEDERATOR, "--set", "replicaCount=1", "--set", "persistence.enabled=true")
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "fed-federator-data"}} in volumes
    assert one(docs, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "--in-cluster" in containers(docs)[0]["args"]


def test_pod_disruption_budget_when_asked(h: Helm, tmp_path: Path) -> None:
    docs = _render(h, FEDERATOR, FED_ALL_ON, tmp_path)
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"  # an unready standby never blocks a drain
    assert pdb["spec"]["selector"]["matchLabels"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]


def test_agent_pod_security_values_become_its_flags(h: Helm) -> None:
    """Baseline by default, as the agent's own default; a member whose RDMA training needs IPC_LOCK allows it."""
    def parsed(*args: str) -> Any:
        return build_parser().parse_args(containers(h.template(AGENT, "-f", AGENT_CI_VALUES, *args))[0]["args"])

    default = parsed()
    assert (default.pod_security, default.allow_capability, default.allow_host_network) == ("baseline", [], False)
    rdma = parsed("--set", "podSecurity.level=restricted", "--set-json", 'podSecurity.allowCapabilities=["IPC_LOCK"]',
                  "--set", "podSecurity.allowHostNetwork=true")
    assert (rdma.pod_security, rdma.allow_capability, rdma.allow_host_network) == ("restricted", ["IPC_LOCK"], True)


@pytest.mark.parametrize(("args", "policy"), [
    pytest.param([], PodSecurity(), id="baseline"),
    pytest.param(["--set", "podSecurity.level=restricted"], PodSecurity(level=PodSecurityLevel.RESTRICTED),
                 id="restricted"),
    pytest.param(["--set", "podSecurity.level=privileged"], PodSecurity(level=PodSecurityLevel.PRIVILEGED),
                 id="privileged"),
    pytest.param(["--set", "podSecurity.level=restricted", "--set-json", 'podSecurity.allowCapabilities=["CHOWN"]'],
                 PodSecurity(level=PodSecurityLevel.RESTRICTED, allowed_capabilities=frozenset({"CHOWN"})),
                 id="restricted-with-a-baseline-capability"),
    pytest.param(["--set", "podSecurity.level=restricted", "--set-json",
                  'podSecurity.allowCapabilities=["NET_BIND_SERVICE"]'],
                 PodSecurity(level=PodSecurityLevel.RESTRICTED, allowed_capabilities=frozenset({"NET_BIND_SERVICE"})),
                 id="restricted-with-its-own-capability"),
    pytest.param(["--set-json", 'podSecurity.allowCapabilities=["IPC_LOCK"]'],
                 PodSecurity(allowed_capabilities=frozenset({"IPC_LOCK"})), id="ipc-lock"),
    pytest.param(["--set", "podSecurity.allowHostNetwork=true"], PodSecurity(allow_host_network=True),
                 id="host-network"),
])
def test_the_workload_namespace_enforces_what_the_agent_admits(h: Helm, args: list[str],
                                                               policy: PodSecurity) -> None:
    """The member's API server enforces the agent's level on every pod of the namespace the chart creates; an
    allowance Pod Security Admission's level would refuse makes it privileged (the agent's check holds the rest).
    The chart's rule is the agent's (admission_level), and the agent then warns of nothing at start."""
    namespace = one(h.template(AGENT, "-f", AGENT_CI_VALUES, *args), "Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == admission_level(policy)
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    assert namespace_warnings(namespace, policy) == []


def test_the_plain_manifests_label_the_namespace_for_the_agents_default_level() -> None:
    docs = [d for d in yaml.safe_load_all(RBAC_AGENT.read_text()) if d and d["kind"] == "Namespace"]
    (workloads,) = [d for d in docs if d["metadata"]["name"] == "federator-workloads"]
    assert namespace_warnings(workloads, PodSecurity()) == []


@pytest.mark.parametrize(("args", "field"), [
    pytest.param(["--set", "podSecurity.level=strict"], "/podSecurity/level", id="level"),
    pytest.param(["--set-json", 'podSecurity.allowCapabilities=["ipc_lock"]'], "/podSecurity/allowCapabilities/0",
                 id="capability"),
    pytest.param(["--set", "podSecurity.allowHostNetwork=yes"], "/podSecurity/allowHostNetwork", id="host-network"),
    pytest.param(["--set", "podSecurity.levle=baseline"], "levle", id="typo"),
])
def test_agent_pod_security_values_are_refused_naming_the_value(h: Helm, args: list[str], field: str) -> None:
    assert field in h.template_error(AGENT, "-f", AGENT_CI_VALUES, *args)


CHART_FLAGS = Path(__file__).with_name("chart_flags.yaml")


def test_the_charts_pass_only_flags_recorded_for_their_app_version(h: Helm, tmp_path: Path) -> None:
    """Chart 0.2.7 added --usage-retention and kept appVersion 0.2.0, so `helm upgrade` ran the image an operator
    had built as :0.2.0 for chart 0.2.6 with a flag it did not know: every pod exited `unrecognized arguments`, and
    with the old leader stopped first no federator ran (outside operator QA). chart_flags.yaml records the flags
    the charts pass, per appVersion. A chart that passes another flag fails this test: bump the package version and
    both charts' appVersion, and record the new set under the new version; never add to a version already built."""
    version = chart_meta(FEDERATOR)["appVersion"]
    assert chart_meta(AGENT)["appVersion"] == version
    passed: dict[str, set[str]] = {"serve": set(), "agent": set()}
    for case in RENDER_CASES:
        chart, args = case.values
        for c in containers(_render(h, chart, list(args), tmp_path)):  # type: ignore[arg-type]
            command = next(a for a in c["args"] if not a.startswith("-"))  # after global flags (--verbose)
            passed[command] |= {a.split("=", 1)[0] for a in c["args"] if a.startswith("--")}
    recorded = yaml.safe_load(CHART_FLAGS.read_text())
    assert version in recorded, f"{CHART_FLAGS.name} has no entry for appVersion {version}: record the charts' flags"
    for command, flags in passed.items():
        unknown = sorted(flags - set(recorded[version][command]))
        assert not unknown, (f"the charts pass `federator {command}` {', '.join(unknown)}, which no image of "
                             f"appVersion {version} is recorded to know: bump the version (pyproject.toml and both "
                             f"charts' appVersion) and record the flags under it in {CHART_FLAGS.name}")


VAP = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"


def test_the_finalizer_guard_names_the_releases_service_account_and_only_where_the_api_has_it(h: Helm) -> None:
    """Made only on an API server that serves ValidatingAdmissionPolicy v1 (1.30+): the chart still installs on
    1.27-1.29; exempt are the release's own ServiceAccount and the groups the operator names."""
    def guard(*args: str) -> list[dict[str, Any]]:
        return [d for d in h.template(FEDERATOR, *args) if d["kind"].startswith("ValidatingAdmissionPolicy")]

    # an older API server (helm install asks it; helm template is told with --kube-version) has no such API
    assert guard("--kube-version", "1.29.0") == []
    # helm template, offline (Argo CD, a rendered-manifests repo): by the Kubernetes version, not the API versions
    # helm cannot ask a server for (outside QA G8: --kube-version 1.36.3 left the guard out)
    assert len(guard("--kube-version", "1.36.3")) == len(guard()) == 2
    policy, binding = guard("--api-versions", VAP, "--set", "serviceAccount.name=sched",
                            "--set", "finalizerGuard.exemptGroups={ops,system:masters}")
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    conditions = {c["name"]: c["expression"] for c in policy["spec"]["matchConditions"]}
    assert conditions == {
        "not-the-federator": f'request.userInfo.username != "system:serviceaccount:{NAMESPACE}:sched"',
        "not-exempt": '!request.userInfo.groups.exists(g, g in ["ops","system:masters"])'}
    assert guard("--api-versions", VAP, "--set", "finalizerGuard.enabled=false") == []
    assert guard("--api-versions", VAP, "--set", "mode=standalone", "--set", "replicaCount=1",
                 "--set", "leaderElection.enabled=false", "--set", "persistence.enabled=true") == []


def test_the_agents_write_guard_follows_the_namespace_settings_and_only_where_the_api_has_it(h: Helm) -> None:
    """The agent chart's writeGuard (outside provider QA F9): made only on an API server that serves
    ValidatingAdmissionPolicy v1; it names the chart's ServiceAccount, and admits writes in workloadNamespace, with
    namespacePerQueue in <workloadNamespace>-<queue> too (tests/deploy/test_helm_agent_write_guard.py runs it)."""
    def guard(*args: str) -> list[dict[str, Any]]:
        return [d for d in h.template(AGENT, "-f", AGENT_CI_VALUES, *args)
                if d["kind"].startswith("ValidatingAdmissionPolicy")]

    assert guard("--kube-version", "1.29.0") == []  # no such API (an older API server)
    assert len(guard("--kube-version", "1.36.3")) == 2  # helm template, offline: by the version (outside QA G8)
    policy, binding = guard("--api-versions", VAP, "--set", "serviceAccount.name=agent-sa",
                            "--set", "workloadNamespace=tenants")
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    who = f"system:serviceaccount:{NAMESPACE}:agent-sa"
    assert policy["spec"]["matchConditions"] == [
        {"name": "the-agent", "expression": f'request.userInfo.username == "{who}"'}]
    where = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}["allowed"]
    assert where == 'variables.where == "tenants" || variables.where.startsWith("tenants-")'
    [policy, _] = guard("--api-versions", VAP, "--set", "namespacePerQueue=false")
    assert {v["name"]: v["expression"] for v in policy["spec"]["variables"]}["allowed"] == \
        'variables.where == "federator-workloads"'
    assert guard("--api-versions", VAP, "--set", "writeGuard.enabled=false") == []


def test_the_plain_write_guard_manifest_is_the_charts_policy(h: Helm) -> None:
    """deploy/kubernetes/agent-write-guard.yaml, for members set up with kubectl: the chart's policy for the
    ServiceAccount federator-system/federator-agent of rbac-agent.yaml, and namespacePerQueue's namespaces."""
    policy, binding = [d for d in h.template(AGENT, "-f", AGENT_CI_VALUES, "--api-versions", VAP,
                                             "--set", "serviceAccount.name=federator-agent")
                       if d["kind"].startswith("ValidatingAdmissionPolicy")]
    plain_policy, plain_binding = yaml.safe_load_all((DEPLOY / "kubernetes" / "agent-write-guard.yaml").read_text())
    assert NAMESPACE == "federator-system"  # the release namespace the chart renders in: rbac-agent.yaml's
    assert plain_policy["spec"] == policy["spec"]
    assert plain_binding["spec"] == {**binding["spec"], "policyName": plain_policy["metadata"]["name"]}


def _anti_affinity(h: Helm, *args: str) -> Any:
    spec = one(h.template(FEDERATOR, *args), "Deployment")["spec"]["template"]["spec"]
    return (spec.get("affinity") or {}).get("podAntiAffinity")


def test_two_replicas_prefer_nodes_of_their_own(h: Helm) -> None:
    """HA QA F4: the chart's two replicas could share a node, and a node lost then took the leader and its standby.
    Preferred, not required: a one-node cluster still runs both."""
    (term,) = _anti_affinity(h)["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"] == {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {
        "app.kubernetes.io/name": "federator", "app.kubernetes.io/instance": "fed"}}}
    assert _anti_affinity(h, "--set", "replicaCount=1", "--set", "leaderElection.enabled=false") is None
    assert _anti_affinity(h, "--set", "replicaAntiAffinity=none") is None


def test_an_operators_affinity_is_kept_and_its_anti_affinity_wins(h: Helm) -> None:
    zone = {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "topology.kubernetes.io/zone",
                                                                "labelSelector": {"matchLabels": {"a": "b"}}}]}
    spec = one(h.template(FEDERATOR, "--set-json", f"affinity={{\"podAntiAffinity\": {json.dumps(zone)}}}"),
               "Deployment")["spec"]["template"]["spec"]
    assert spec["affinity"] == {"podAntiAffinity": zone}
    nodes = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}]}}
    spec = one(h.template(FEDERATOR, "--set-json", f"affinity={{\"nodeAffinity\": {json.dumps(nodes)}}}"),
               "Deployment")["spec"]["template"]["spec"]
    assert spec["affinity"]["nodeAffinity"] == nodes and "podAntiAffinity" in spec["affinity"]
    assert "replicaAntiAffinity" in h.template_error(FEDERATOR, "--set", "replicaAntiAffinity=hard")
