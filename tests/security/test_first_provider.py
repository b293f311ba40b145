"""The first provider of a federation needs no restart: `serve --certs-dir` watches trust.yaml before it exists.

Outside QA, tenants F6: a federator started with `--certs-dir` before any provider existed read trust.yaml only if
it was there at start, so neither the poll nor SIGHUP ever took the file `federator certs provider` wrote later
(which itself said "a running federator reading this trust.yaml takes it within --trust-poll-seconds, or at once
on SIGHUP"); the provider's agent met "Socket closed" for ever and the federator logged nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from federator.agent.backoff import Backoff
from federator.agent.refusal import handshake_hint
from federator.cli.get import list_clusters
from federator.local import LocalFederation
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.trust_reload import ReloadResult, TrustFile

from support import eventually


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_a_trust_file_not_there_at_start_is_no_providers_and_is_read_once_it_appears(tmp_path: Path) -> None:
    certs = CertsDir(tmp_path / "certs")
    init_ca(certs)
    trust = TrustFile(certs.trust, federation_ca=certs.ca_cert, absent_ok=True)
    assert trust.current.providers == {} and trust.problem == ""
    assert trust.poll() is ReloadResult.UNCHANGED
    out = _cli("certs", "provider", "--dir", str(certs.root), "--name", "acme", "--clusters", "acme-*")
    assert out.returncode == 0, out.stderr
    assert trust.poll() is ReloadResult.OK and sorted(trust.current.providers) == ["acme"]
    certs.trust.unlink()  # once read, a file gone is refused like any bad one: the last good trust stays
    assert trust.poll() is ReloadResult.REFUSED and sorted(trust.current.providers) == ["acme"]


FLEET = """
clusters:
  - {name: acme-1, region: east, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}
"""


@pytest.mark.e2e
def test_serve_started_before_any_provider_takes_the_first_on_sighup(tmp_path: Path) -> None:
    """A real `federator serve --certs-dir` (the poll off) started with no trust.yaml: `certs provider` then
    SIGHUP lets the provider's waiting agent in, with no restart."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet,
                          serve_args=["--report-interval", "0.3", "--cycle-interval", "0.2", "--lease-seconds", "2",
                                      "--trust-poll-seconds", "0"])
    certs = fed.certs
    init_ca(certs)
    assert not certs.trust.exists()
    try:
        fed.start_server()
        assert fed.server is not None
        out = _cli("certs", "provider", "--dir", str(certs.root), "--name", "acme", "--clusters", "acme-*")
        assert out.returncode == 0, out.stderr
        issue(certs.provider("acme"), Identity(IdentityKind.CLUSTER, "acme-1"))
        fed.start_agent("acme-1", "--provider", "acme")
        fed.server.popen.send_signal(signal.SIGHUP)
        eventually(lambda: {c["name"]: c["state"] for c in list_clusters(fed.client)} == {"acme-1": "Ready"},
                   what="acme-1 let in")
        assert "added acme" in (fed.workdir / "federator.log").read_text()
    finally:
        fed.stop()


def test_an_agent_whose_handshake_keeps_being_closed_is_told_why_and_backs_off() -> None:
    """The agent's side of F6: "Socket closed" before any welcome, again and again, gets a hint naming the trust
    file and SIGHUP (a restart's first few closes do not), and its retries slow down past the fast window."""
    closed = "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:17171: Socket closed"
    assert handshake_hint(closed, tls=True, provider="acme", attempts=2) == ""
    hint = handshake_hint(closed, tls=True, provider="acme", attempts=5)
    assert "provider 'acme' may not be in the federator's trust.yaml yet" in hint and "SIGHUP" in hint
    assert handshake_hint(closed, tls=False, provider="acme", attempts=9) == ""
    now = [0.0]
    backoff = Backoff(maximum=5.0, clock=lambda: now[0])
    delays = []
    for _ in range(80):
        delays.append(backoff.next())
        now[0] += delays[-1]
    assert max(delays[:30]) <= 1.0 and 4.0 <= delays[-1] <= 5.0  # about once a second for a minute, then every 5 s
