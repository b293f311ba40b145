"""`federator agent` flags the federator would refuse, or that make no sense, are refused at the start,
naming the flag: before, the agent ran and retried a refused Hello once a second for ever, or took a
negative time scale."""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.security.pki import CertsDir, init_ca

from support import EXAMPLES, federator_cli


@pytest.mark.parametrize(("flags", "said"), [
    (["--label", "a b=c"], "--label: 'a b' is not a valid label key"),
    (["--label", "k=" + "v" * 300], "--label[k]: value longer than 253 characters"),
    (["--provider", "Acme Corp"], "--provider: must be a label value (letters, digits, '-', '_' or '.', at most 63, "
                                  "beginning and ending with a letter or digit), got 'Acme Corp'"),
    (["--time-scale", "-1"], "--time-scale: must be a positive number, got -1"),
    (["--time-scale", "nan"], "--time-scale: must be a positive number, got nan"),
    (["--fence-after", "-5"], "--fence-after: must be 0 (off) or more seconds, got -5"),
    (["--metrics-listen", "127.0.0.1:0", "--ready-file", "/nonexistent-folder/ready.json"],
     "--ready-file: /nonexistent-folder/ready.json: the folder /nonexistent-folder does not exist"),
    (["--allow-capability", "ipc lock"], "--allow-capability: 'IPC LOCK' is not a capability name such as IPC_LOCK "
                                         "(upper case, no CAP_ prefix)"),
    (["--label", "federator.io/pod-security=privileged"],
     "--label: federator.io/pod-security is set by --pod-security, --allow-capability and --allow-host-network, "
     "not by a label"),
    (["--label", "topology.kubernetes.io/region=west"],
     "--label[topology.kubernetes.io/region]: 'west' is not the cluster's region 'east' (hello.region); a region "
     "label must name the region the agent gives, or be left out"),
    (["--maintenance", "two\nlines"], "--maintenance: must be one line of printable text"),
    (["--maintenance", "x" * 257], "--maintenance: at most 256 characters, got 257"),
], ids=["label-key", "label-value", "provider", "time-scale-negative", "time-scale-nan", "fence-after",
        "ready-file", "allow-capability", "pod-security-label", "region-label", "maintenance-lines",
        "maintenance-long"])
def test_a_flag_the_federator_would_refuse_is_refused_at_the_start(flags: list[str], said: str) -> None:
    out = federator_cli("agent", "--cluster", "east-1", "--sim", str(EXAMPLES / "fleet.yaml"), "--insecure",
                        "--server", "127.0.0.1:1", *flags)
    assert out.returncode == 2
    assert out.stderr.strip() == f"federator agent: {said}"


def test_a_kubernetes_agent_with_a_bad_cluster_name_is_refused_before_it_dials() -> None:
    out = federator_cli("agent", "--cluster", "West_1", "--region", "west", "--kubeconfig", "/nonexistent",
                        "--insecure")
    assert out.returncode == 2
    assert out.stderr.strip() == ("federator agent: --cluster: must be a lower-case DNS name of at most 63 "
                                  "characters, got 'West_1'")


@pytest.mark.parametrize(("flags", "said"), [
    (["--namespace", "Team_A"], "--namespace: 'Team_A' is not a namespace name (a lower-case DNS label of at most "
                                "63 characters)"),
    (["--gang-timeout", "nan"], "--gang-timeout: must be 0 (off) or more seconds"),
    (["--discovery-interval", "inf"], "--discovery-interval must be a positive number of seconds"),
], ids=["namespace", "gang-timeout-nan", "discovery-interval-inf"])
def test_a_kubernetes_agent_flag_it_cannot_use_is_refused_before_it_reads_the_kubeconfig(flags: list[str],
                                                                                          said: str) -> None:
    out = federator_cli("agent", "--cluster", "west-1", "--region", "west", "--kubeconfig", "/nonexistent",
                        "--insecure", *flags)
    assert out.returncode == 2
    assert out.stderr.strip() == f"federator agent: {said}"


def test_a_pod_security_level_the_agent_does_not_know_is_refused_naming_the_flag() -> None:
    out = federator_cli("agent", "--cluster", "east-1", "--sim", str(EXAMPLES / "fleet.yaml"), "--insecure",
                        "--server", "127.0.0.1:1", "--pod-security", "strict")
    assert out.returncode == 2
    assert "argument --pod-security: invalid choice: 'strict'" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_agent_without_its_certificate_is_told_how_to_issue_one(tmp_path: Path) -> None:
    """Outside QA F10: `--cert: cannot read .../clusters/foo.crt: No such file or directory`, with no next step,
    where `certs init` names its own."""
    certs = CertsDir(tmp_path / "certs")
    init_ca(certs)
    out = federator_cli("agent", "--cluster", "east-1", "--sim", str(EXAMPLES / "fleet.yaml"), "--certs-dir",
                        str(certs.root), "--server", "127.0.0.1:1")
    assert out.returncode == 2
    assert out.stderr.strip().startswith("federator agent: --cert: cannot read ")
    assert out.stderr.strip().endswith(f"No such file or directory; issue one with `federator certs issue --dir "
                                       f"{certs.root} --cluster east-1`")


@pytest.fixture
def bound(tmp_path: Path) -> CertsDir:
    """A federation whose east-1 certificate binds region north (`certs issue --region north`); west-1's none."""
    from federator.security.pki import Identity, IdentityKind, issue

    certs = CertsDir(tmp_path / "certs")
    init_ca(certs)
    issue(certs, Identity(IdentityKind.CLUSTER, "east-1"), region="north")
    issue(certs, Identity(IdentityKind.CLUSTER, "west-1"))
    return certs


@pytest.mark.parametrize("backend", [["--sim", str(EXAMPLES / "fleet.yaml")], ["--kubeconfig", "/nonexistent"]],
                         ids=["sim", "kubernetes"])
def test_a_region_the_agents_certificate_contradicts_stops_it_at_start_naming_both(
        bound: CertsDir, backend: list[str]) -> None:
    """0.16.0: the federator refused such an agent at every reconnect, for ever; it now stops at once, one line."""
    out = federator_cli("agent", "--cluster", "east-1", "--region", "east", *backend, "--certs-dir",
                        str(bound.root), "--server", "127.0.0.1:1")
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"federator agent: --region: 'east' is not the region 'north' the agent's certificate "
        f"{bound.root}/clusters/east-1.crt binds, and the federator would refuse every Hello; leave --region out (the "
        "certificate's is taken), or if the cluster really is in 'east', issue it a certificate with --region east")


def test_a_kubernetes_agent_needs_a_region_only_when_its_certificate_binds_none(bound: CertsDir) -> None:
    out = federator_cli("agent", "--cluster", "west-1", "--kubeconfig", "/nonexistent", "--certs-dir",
                        str(bound.root), "--server", "127.0.0.1:1")
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "federator agent: --region is required with the Kubernetes backend, unless the agent's certificate binds "
        "its region (`federator certs issue --cluster NAME --region R`)")
