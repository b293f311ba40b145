"""Kubernetes mode names, at start and when Queue objects change it, the queues whose gRPC submitters may make
FederatedJobs in any namespace of the host (security/open_queues.py).

Security QA secqa61 M2: under a policy whose queues had access lists and no namespaceSelector, alice (queue qa) made
ns-b/prep in bob's namespace, and bob's `train` (clusters.sameAs: [prep], dependsOn afterstart prep) followed it.
security.md documents the misconfiguration; nothing at start said it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from federator.backends.kube.options import KubeOptions
from federator.security.authz import TenancyPolicy, tenancy_from_document
from federator.security.open_queues import DEFAULT_QUEUE, open_queues

SECQA61 = {"tenancy": {"groups": {"team-a": {"users": ["alice"]}, "team-b": {"users": ["bob"]}}},
           "queues": {"qa": {"weight": 1, "access": {"groups": ["team-a"]}},
                      "qb": {"weight": 1, "access": {"groups": ["team-b"]}}}}


@pytest.mark.parametrize(("doc", "expected"), [
    (SECQA61, ["qa", "qb"]),
    ({**SECQA61, "queues": {**SECQA61["queues"], "qb": {"weight": 1, "access": {"groups": ["team-b"]},
                                                        "namespaceSelector": {"matchLabels": {"tenant": "b"}}}}},
     ["qa"]),
    ({**SECQA61, "defaultQueue": {"namespaceSelector": {"matchLabels": {"tenant": "x"}}}}, []),
    ({**SECQA61, "defaultQueue": {"access": {"anyone": True}}}, ["qa", "qb", DEFAULT_QUEUE]),
    ({"queues": {"research": {"weight": 1}}}, []),  # single-tenant: every submitter is the one tenant
], ids=["secqa61-policy", "one-with-a-selector", "default-selector", "undeclared-open", "single-tenant"])
def test_open_queues_are_those_without_a_namespace_selector_under_a_multi_tenant_policy(
        doc: dict[str, object], expected: list[str]) -> None:
    assert open_queues(tenancy_from_document(doc)) == expected


def test_kubernetes_mode_warns_at_start_naming_the_open_queues(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    import yaml

    from federator.server.app import ServeOptions, _authorizer
    from federator.server.policy_file import PolicyFile

    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(SECQA61))
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        _authorizer(ServeOptions(policy=policy, insecure=True), PolicyFile(policy))  # standalone: not said
        assert "namespaceSelector" not in caplog.text
        _authorizer(ServeOptions(policy=policy, insecure=True, kube=KubeOptions()), PolicyFile(policy))
    (line,) = [r for r in caplog.records if "have no namespaceSelector" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert line.getMessage().startswith("--policy: queue(s) qa, qb have no namespaceSelector"), line.getMessage()
    assert "clusters.sameAs, dependsOn by name" in line.getMessage()


def test_a_single_tenant_policy_has_no_open_queues() -> None:
    assert open_queues(TenancyPolicy()) == []
