"""A call that finds nothing serving says what that may mean with two replicas, and keeps gRPC's error and the
retry status (HA QA F3: during a failover, or at a standby, which opens no gRPC port, the CLI printed only
"Connection refused")."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from federator.cli import main
from federator.cli.no_leader import NOTE, gap_note


def _closed_port() -> str:
    """A loopback port nothing listens on: a standby's, or a dead leader's."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("call", [["get", "jobs"], ["get", "clusters"], ["cancel", "j"]], ids=" ".join)
def test_a_refused_call_keeps_the_error_and_says_a_failover_or_a_standby_may_be_why(
        call: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    server = _closed_port()
    assert main([*call, "--insecure", "--server", server]) == 4  # UNAVAILABLE: a retry may cure it
    error, note = capsys.readouterr().err.splitlines()
    assert error.startswith("error: failed to connect to all addresses") and "Connection refused" in error
    assert note == NOTE.format(server=server)
    assert "retry in about 15 s" in note and "standby" in note


def test_submit_to_nothing_serving_says_it_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {
        "name": "j"}, "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}}}))
    server = _closed_port()
    assert main(["submit", "-f", str(job), "--insecure", "--server", server, "--timeout", "1"]) == 4
    err = capsys.readouterr().err
    assert f"no answer from {server}" in err and NOTE.format(server=server) in err


def test_a_federators_own_refusal_gets_no_note() -> None:
    assert gap_note("the federator is stopping", "f:7070") == ""
    assert gap_note("too many calls in flight: retry", "f:7070") == ""
    assert gap_note("failed to connect to all addresses; last error: Connection refused", "f:7070")
