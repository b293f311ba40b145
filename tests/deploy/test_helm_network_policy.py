"""The federator chart's optional NetworkPolicy: agents to the gRPC port, Prometheus to the metrics port,
nothing else in. Checked as rendered, with the real helm, and against the Kubernetes schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from helm_support import FEDERATOR, Helm, by_kind, one

KUBE_VERSIONS = ("1.27", "1.37")


@pytest.fixture(scope="module")
def h(helm: Path) -> Helm:
    return Helm(helm)


def _allowed(policy: dict[str, Any], port: int, peer: dict[str, Any]) -> bool:
    """Whether an ingress rule of `policy` lets `peer` (a NetworkPolicyPeer, as written) reach `port`.

    A rule without `from` admits every source; otherwise the peer must be one of its peers."""
    for rule in policy["spec"]["ingress"]:
        if port not in {p["port"] for p in rule.get("ports", [])}:
            continue
        if "from" not in rule or peer in rule["from"]:
            return True
    return False


def test_off_by_default(h: Helm) -> None:
    assert by_kind(h.template(FEDERATOR), "NetworkPolicy") == []


def test_agents_reach_grpc_from_anywhere_and_only_cluster_pods_reach_metrics(h: Helm) -> None:
    docs = h.template(FEDERATOR, "--set", "networkPolicy.enabled=true")
    policy = one(docs, "NetworkPolicy")
    deploy = one(docs, "Deployment")
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in policy["spec"]["podSelector"]["matchLabels"].items())
    assert policy["spec"]["policyTypes"] == ["Ingress"]  # egress stays open: the API server, DNS
    grpc_rule, metrics_rule = policy["spec"]["ingress"]
    assert grpc_rule == {"ports": [{"port": 7070, "protocol": "TCP"}]}  # no `from`: agents of any provider
    assert metrics_rule == {"ports": [{"port": 9090, "protocol": "TCP"}], "from": [{"namespaceSelector": {}}]}
    assert not _allowed(policy, 8080, {"namespaceSelector": {}})  # no other port
    ports = {p["containerPort"] for c in deploy["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    assert ports == {7070, 9090}  # every port the pod opens has its rule
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(policy, version, strict=True)


def test_the_ports_follow_the_service_ports_and_the_peers_are_the_operators(h: Helm, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "networkPolicy:\n  enabled: true\n"
        "  grpcFrom: [{ipBlock: {cidr: 203.0.113.0/24}}]\n"
        "  metricsFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}},"
        " podSelector: {matchLabels: {app.kubernetes.io/name: prometheus}}}]\n"
        "service: {grpcPort: 8443, metricsPort: 9500}\n")
    policy = one(h.template(FEDERATOR, "-f", values), "NetworkPolicy")
    prometheus = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                  "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
    agents = {"ipBlock": {"cidr": "203.0.113.0/24"}}
    assert _allowed(policy, 8443, agents) and not _allowed(policy, 8443, prometheus)
    assert _allowed(policy, 9500, prometheus) and not _allowed(policy, 9500, agents)
    assert not _allowed(policy, 9500, {"namespaceSelector": {}})  # metricsFrom replaces the default
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(policy, version, strict=True)


@pytest.mark.parametrize(("args", "field"), [
    pytest.param(["--set", "networkPolicy.grpcFrom[0].cidr=10.0.0.0/8"], "/networkPolicy/grpcFrom/0",
                 id="peer-not-a-peer"),
    pytest.param(["--set", "networkPolicy.enable=true"], "enable", id="typo"),
])
def test_bad_network_policy_values_are_refused(h: Helm, args: list[str], field: str) -> None:
    assert field in h.template_error(FEDERATOR, *args)
