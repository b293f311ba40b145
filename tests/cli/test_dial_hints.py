"""A client that dials a federator the wrong way is told what it most likely did: TLS to a plaintext
federator, plaintext to an mTLS one, or gRPC to the /metrics port (real processes)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from federator.cli import main
from federator.local import LocalFederation
from federator.security.pki import CertsDir, init_ca
from federator.security.tls import dial_hint, server_files

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


def test_a_server_address_grpc_cannot_parse_names_the_flag() -> None:
    """`--server ::::` passed the flag's check (it is a gRPC target of a kind) and ended in gRPC's words, "errors
    resolving ::::: [field:hostname lookup error:...] Misformatted domain name", naming no flag; and exited as
    UNAVAILABLE, which a script retries. No retry resolves it: the hint names --server and the form wanted. A name
    that does not resolve yet (a Service to come) gets no hint: a retry may cure it."""
    out = federator_cli("get", "jobs", "--insecure", "--server", "::::")
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "; hint: --server ::::: not an address gRPC can dial; give HOST:PORT" in out.stderr
    not_yet = "errors resolving f.invalid:7070: [field:hostname lookup error:... Domain name not found]"
    assert dial_hint(not_yet, "f.invalid:7070", tls=False) == ""


@contextmanager
def _mtls_server(certs: CertsDir) -> Iterator[str]:
    """A gRPC server on loopback with the federation's serving certificate, asking for client certificates (as
    `serve --listen` does); no services: the handshake is all these tests reach."""
    server = grpc.server(ThreadPoolExecutor(1))
    port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials())
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def test_a_name_the_federators_certificate_lacks_is_named_with_the_fix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Outside QA F17: "Custom verification check failed ... Hostname Verification Check failed", with no word
    of which name or what to do."""
    certs = CertsDir(tmp_path / "certs")
    init_ca(certs, server_names=("localhost",))  # not 127.0.0.1, which the client dials
    with _mtls_server(certs) as target:
        assert main(["get", "jobs", "--certs-dir", str(certs.root), "--server", target]) == 1
    err = capsys.readouterr().err
    assert ("hint: the federator's certificate does not name 127.0.0.1; dial a name it has, or re-issue it with "
            "`federator certs issue --dir CERTS --server --server-name 127.0.0.1`") in err


def test_a_token_client_at_the_mtls_address_is_told_of_token_listen(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Outside QA F10: a bearer-token client at the mTLS port got "Socket closed" and no hint, although the CLI
    knows it sent a token and no certificate."""
    certs = CertsDir(tmp_path / "certs")
    init_ca(certs)
    with _mtls_server(certs) as target:
        assert main(["get", "jobs", "--ca", str(certs.ca_cert), "--token", "t0ken", "--server", target]) == 1
    err = capsys.readouterr().err
    assert (f"hint: {target} closed a connection that brought a token and no client certificate: is it the "
            "federator's mTLS address? Tokens are served on the federator's --token-listen address") in err
