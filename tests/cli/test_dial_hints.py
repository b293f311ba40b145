"""A client that dials a federator the wrong way is told what it most likely did: TLS to a plaintext
federator, plaintext to an mTLS one, or gRPC to the /metrics port (real processes)."""

from __future__ import annotations

from pathlib import Path

from federator.local import LocalFederation
from federator.security.pki import CertsDir, init_ca
from federator.security.tls import dial_hint

from support import EXAMPLES, federator_cli


def test_the_cli_says_what_a_failed_dial_most_likely_means(tmp_path: Path) -> None:
    certs = CertsDir(tmp_path / "certs")
    init_ca(certs)
    plain = LocalFederation(workdir=tmp_path / "plain", fleet=EXAMPLES / "fleet.yaml", tls=False)
    try:
        plain.start_server()
        target, metrics = plain.grpc_target, plain.metrics_url.removeprefix("http://").removesuffix("/metrics")
        out = federator_cli("get", "jobs", "--certs-dir", str(certs.root), "--server", target)
        assert out.returncode == 1
        assert f"; hint: {target} answers in plaintext: that federator runs with --insecure" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1  # one line: the error and what it most likely means
        out = federator_cli("usage", "--certs-dir", str(certs.root), "--server", target)
        assert f"hint: {target} answers in plaintext" in out.stderr
        out = federator_cli("get", "jobs", "--insecure", "--server", metrics)
        assert out.returncode == 1
        assert f"hint: {metrics} answers, but not with gRPC: is it the federator's --listen address" in out.stderr
        right = federator_cli("get", "jobs", "--insecure", "--server", target)  # the right way: no hint
        assert right.returncode == 0 and "hint:" not in right.stderr
    finally:
        plain.stop()


def test_plaintext_to_an_mtls_federator_is_told_to_drop_insecure(tmp_path: Path) -> None:
    fed = LocalFederation(workdir=tmp_path / "tls", fleet=EXAMPLES / "fleet.yaml", tls=True)
    try:
        fed.start_server()
        out = federator_cli("get", "jobs", "--insecure", "--server", fed.grpc_target)
        assert out.returncode == 1
        assert (f"hint: {fed.grpc_target} closed a plaintext connection: does that federator want mTLS "
                "(drop --insecure)?") in out.stderr
    finally:
        fed.stop()


def test_an_unrelated_failure_gets_no_hint() -> None:
    refused = "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Connection refused"
    assert dial_hint(refused, "127.0.0.1:1", tls=True) == ""
    assert dial_hint(refused, "127.0.0.1:1", tls=False) == ""
    assert dial_hint("Socket closed", "f:7070", tls=False) == ""  # a stream that broke, not a dial
