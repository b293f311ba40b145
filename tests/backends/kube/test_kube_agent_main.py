"""`federator agent --kubeconfig ...` builds the same AgentConfig as the simulated backend, --fence-after included."""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.agent.agent import Agent
from federator.cli import build_parser, main
from federator.cli.agent import agent_config
from federator.security.podsecurity import PodSecurity, PodSecurityLevel


@pytest.mark.parametrize(("flags", "fence_after"), [
    pytest.param([], 0.0, id="off-by-default"),
    pytest.param(["--fence-after", "90"], 90.0, id="fence-after-90s"),
    pytest.param(["--fence-after", "2.5"], 2.5, id="fractional"),
])
def test_fence_after_reaches_the_kube_agent(flags: list[str], fence_after: float) -> None:
    args = build_parser().parse_args(["agent", "--cluster", "member-a", "--region", "east", "--server",
                                      "fed:7070", "--kubeconfig", "member.kubeconfig", *flags])
    cfg = agent_config(args, {"tier": "gold"})
    assert cfg.fence_after == fence_after
    assert (cfg.cluster, cfg.region, cfg.target, cfg.labels) == ("member-a", "east", "fed:7070", {"tier": "gold"})
    assert cfg.tls is None


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[Agent]:
    """The Agents `federator agent --kubeconfig ...` builds, kept instead of run (no API server is dialled)."""
    from federator.backends.kube.api import KubeApi

    class FakeApi:
        server = "https://member.invalid:6443"

    agents: list[Agent] = []

    async def run(self: Agent) -> None:
        agents.append(self)

    monkeypatch.setattr(KubeApi, "connect", classmethod(lambda cls, *a, **k: FakeApi()))
    monkeypatch.setattr(Agent, "run", run)
    return agents


def test_the_cli_runs_the_kube_agent_with_the_fence(ran: list[Agent]) -> None:
    """Through `federator agent` itself: the Agent that runs on a member cluster carries --fence-after."""
    rc = main(["agent", "--cluster", "member-a", "--region", "east", "--kubeconfig", "member.kubeconfig",
               "--insecure", "--fence-after", "45"])
    assert rc == 0
    (agent,) = ran
    assert agent.config.fence_after == 45.0
    assert type(agent.backend).__name__ == "KubeBackend"


def test_the_kube_agent_holds_and_reports_its_own_pod_security_level(ran: list[Agent]) -> None:
    """`--pod-security` and its allowances reach the backend's check and the cluster labels the federator's
    PodSecurity filter reads; the default is baseline, as the federator's."""
    base = ["agent", "--cluster", "member-a", "--region", "east", "--kubeconfig", "member.kubeconfig", "--insecure"]
    assert main(base) == 0
    assert main([*base, "--pod-security", "restricted", "--allow-capability", "cap_ipc_lock"]) == 0
    default, restricted = ran
    assert default.backend.pod_security == PodSecurity()  # type: ignore[attr-defined]
    assert default.config.labels["federator.io/pod-security"] == "baseline"
    assert restricted.backend.pod_security == PodSecurity(  # type: ignore[attr-defined]
        level=PodSecurityLevel.RESTRICTED, allowed_capabilities=frozenset({"IPC_LOCK"}))
    assert {k: v for k, v in restricted.config.labels.items() if k.startswith("federator.io/pod-security")} == {
        "federator.io/pod-security": "restricted", "federator.io/pod-security-capabilities": "IPC_LOCK"}


def test_namespace_per_queue_is_off_unless_asked(ran: list[Agent]) -> None:
    """Off by default, so an agent with the namespaced RBAC of rbac-agent.yaml keeps working as it did."""
    base = ["agent", "--cluster", "member-a", "--region", "east", "--kubeconfig", "member.kubeconfig", "--insecure"]
    assert main(base) == 0
    assert main([*base, "--namespace", "gpu-jobs", "--namespace-per-queue"]) == 0
    default, per_queue = ran
    assert default.backend.tenants.of("research") == "federator-workloads"  # type: ignore[attr-defined]
    assert per_queue.backend.tenants.of("research") == "gpu-jobs-research"  # type: ignore[attr-defined]
    assert per_queue.backend.jobs.namespace is None  # type: ignore[attr-defined]


def test_the_kube_agent_takes_its_region_from_its_certificate(ran: list[Agent], tmp_path: Path) -> None:
    """0.16.0: no --region, a certificate bound to north (`certs issue --region north`): the Hello says north."""
    from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue

    certs = CertsDir(tmp_path / "certs")
    init_ca(certs)
    issue(certs, Identity(IdentityKind.CLUSTER, "member-a"), region="north")
    assert main(["agent", "--cluster", "member-a", "--kubeconfig", "member.kubeconfig", "--certs-dir",
                 str(certs.root)]) == 0
    assert main(["agent", "--cluster", "member-a", "--region", "north", "--kubeconfig", "member.kubeconfig",
                 "--certs-dir", str(certs.root)]) == 0
    assert [agent.config.region for agent in ran] == ["north", "north"]


def test_the_cluster_domain_reaches_the_backend_and_a_bad_one_is_named(
        ran: list[Agent], capsys: pytest.CaptureFixture[str]) -> None:
    """--cluster-domain names an elastic gang's rendezvous host (workloads/elastic.py): Kubernetes' default unless
    given; one that is no DNS domain is refused naming the flag, before anything is dialled."""
    base = ["agent", "--cluster", "member-a", "--region", "east", "--kubeconfig", "member.kubeconfig", "--insecure"]
    assert main(base) == 0
    assert main([*base, "--cluster-domain", "corp.example"]) == 0
    assert [a.backend.cluster_domain for a in ran] == ["cluster.local", "corp.example"]  # type: ignore[attr-defined]
    assert main([*base, "--cluster-domain", "Cluster Local"]) == 2
    assert "--cluster-domain: 'Cluster Local' is not a DNS domain" in capsys.readouterr().err
