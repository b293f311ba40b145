"""mTLS as users run it: real `federator serve`, `agent`, `certs` and client processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from federator.cli.get import list_clusters, list_jobs
from federator.cli.submit_calls import submit_specs
from federator.jobfile import parse_job
from federator.local import LocalFederation
from federator.model import JobPhase

from support import EXAMPLES, eventually

pytestmark = pytest.mark.e2e
FAST = ["--report-interval", "0.3", "--cycle-interval", "0.2", "--lease-seconds", "2"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def small_job(name: str) -> object:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-duration": "0.5s"}},
                      "spec": {"kind": "training", "resources": {"cpu": "1"}}})


def test_plaintext_only_when_asked_for_on_every_side(tmp_path: Path) -> None:
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml", tls=False, serve_args=FAST)
    try:
        fed.start_server()
        fed.start_agent("west-1")
        eventually(lambda: [c["state"] for c in list_clusters(fed.client)] == ["Ready"], what="west-1")
        submit_specs(fed.client, [small_job("plain")])
        eventually(lambda: list_jobs(fed.client)[0].phase is JobPhase.SUCCEEDED, what="the job")
        out = cli("get", "jobs", "--server", fed.grpc_target)  # no --insecure: the client wants TLS
        assert out.returncode == 2 and "--insecure" in out.stderr
        assert cli("get", "jobs", "--server", fed.grpc_target, "--insecure").returncode == 0
        assert "INSECURE plaintext" in (fed.workdir / "federator.log").read_text()
    finally:
        fed.stop()


def test_revoking_a_cluster_with_the_cli_cuts_off_its_running_agent(tmp_path: Path) -> None:
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml", serve_args=FAST)
    try:
        fed.start_server()
        for name in ("west-1", "central-1"):
            fed.start_agent(name)
        eventually(lambda: sum(c["state"] == "Ready" for c in list_clusters(fed.client)) == 2, what="two agents")
        out = cli("certs", "revoke", "--dir", str(fed.certs.root), "--cluster", "west-1")
        assert out.returncode == 0, out.stderr
        eventually(lambda: {c["name"]: c["state"] for c in list_clusters(fed.client)}["west-1"] == "Partitioned",
                   what="west-1 cut off")
        eventually(lambda: "is revoked" in (fed.workdir / "agent-west-1.log").read_text(),
                   what="the agent to be told why it cannot reconnect")
        clusters = {c["name"]: c["state"] for c in list_clusters(fed.client)}
        assert clusters == {"west-1": "Partitioned", "central-1": "Ready"}
    finally:
        fed.stop()


def test_a_bearer_token_client_uses_the_token_listener(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# ci robot\nrobot-token-1\n")
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml",
                          serve_args=[*FAST, "--token-file", str(tokens), "--token-listen", "127.0.0.1:0"])
    try:
        fed.start_server()
        import json

        token_target = json.loads((fed.workdir / "ready.json").read_text())["grpc_token"]
        ca = str(fed.certs.ca_cert)
        ok = cli("get", "jobs", "--server", token_target, "--ca", ca, "--token", "robot-token-1")
        assert ok.returncode == 0, ok.stderr
        bad = cli("get", "jobs", "--server", token_target, "--ca", ca, "--token", "guess")
        assert bad.returncode == 1 and "UNAUTHENTICATED" in bad.stderr
    finally:
        fed.stop()
