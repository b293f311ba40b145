"""The procedure of docs/security.md "Rolling the federation CA", run for real: a federator and two agents over mTLS
gRPC on loopback move from an old federation CA (ending in 5 days) to a new one without a cluster refused.

Outside QA F10: the rollover was undocumented; during one (old and new CA in --ca) the agent judged the bundle by
its old CA (a false "CA expires" WARNING and FederatorAgentCertificateExpiresSoon on every agent); and a federator
with a trust file (`--certs-dir`, or the chart's providerTrust) took only the first CA of --ca as the federation's,
so an agent of the new CA was refused in the handshake.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from federator.local import LocalFederation
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue, load_cert

from support import eventually, scraped

FLEET = """
clusters:
  - {name: east-1, region: east, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}
  - {name: west-1, region: west, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}
"""
CLUSTERS = ("east-1", "west-1")


def _put(path: Path, data: bytes) -> None:
    """Replace a file whole (as a Secret update or `certs issue` does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(path.name + ".new")
    draft.write_bytes(data)
    os.replace(draft, path)


def _not_after(pem: Path) -> float:
    return load_cert(pem).not_valid_after_utc.timestamp()


@pytest.mark.e2e
def test_the_documented_ca_rollover_keeps_every_cluster_and_says_the_bundle_lasts_as_its_new_ca(
        tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    served = tmp_path / "federator-tls"  # the federator's --ca/--cert/--key (the chart's tls Secret)
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet, serve_args=[
        "--ca", str(served / "ca.crt"), "--cert", str(served / "tls.crt"), "--key", str(served / "tls.key"),
        "--report-interval", "0.3", "--trust-poll-seconds", "0.2"])
    old = fed.certs  # --certs-dir: the federator watches its trust.yaml (absent): the trust-file path
    init_ca(old, days=5)
    new = CertsDir(tmp_path / "new")

    def agent_files(cluster: str) -> Path:
        return tmp_path / "agents" / cluster  # each agent's tls.secretName Secret: ca.crt, tls.crt, tls.key

    def give_agent(cluster: str, certs: CertsDir) -> None:
        identity = Identity(IdentityKind.CLUSTER, cluster)
        if not certs.cert(identity).exists():
            issue(certs, identity)
        _put(agent_files(cluster) / "tls.key", certs.key(identity).read_bytes())
        _put(agent_files(cluster) / "tls.crt", certs.cert(identity).read_bytes())

    def start(cluster: str) -> None:
        if cluster in fed.agents:
            fed.agents[cluster].stop()
        d = agent_files(cluster)
        fed.start_agent(cluster, "--ca", str(d / "ca.crt"), "--cert", str(d / "tls.crt"), "--key",
                        str(d / "tls.key"), metrics=True)

    def connected(cluster: str) -> bool:
        return scraped(fed.metrics_url, "federator_cluster_connected", cluster=cluster) == 1

    def reload() -> None:
        assert fed.server is not None
        fed.server.popen.send_signal(signal.SIGHUP)

    def agent_ca_expiry(cluster: str) -> float | None:
        return scraped(fed.agent_endpoints[cluster] + "/metrics",
                       "federator_agent_certificate_expiration_timestamp_seconds", cluster=cluster, certificate="ca")

    _put(served / "ca.crt", old.ca_cert.read_bytes())
    _put(served / "tls.key", old.server_key.read_bytes())
    _put(served / "tls.crt", old.server_cert.read_bytes())
    for cluster in CLUSTERS:
        _put(agent_files(cluster) / "ca.crt", old.ca_cert.read_bytes())
        give_agent(cluster, old)
    try:
        fed.start_server()
        for cluster in CLUSTERS:
            start(cluster)
        for cluster in CLUSTERS:
            eventually(lambda c=cluster: connected(c), what=f"{cluster} connected under the old CA")
        assert agent_ca_expiry("east-1") == _not_after(old.ca_cert)  # 5 days: the alert's case, rightly

        # 1. A new CA (and the federator's serving certificate under it, by `certs init`).
        init_ca(new, common_name="federator CA 2")
        bundle = old.ca_cert.read_bytes() + new.ca_cert.read_bytes()

        # 2. Both CAs trusted: the federator's --ca first (it takes it on SIGHUP), then every agent's ca.crt.
        _put(served / "ca.crt", bundle)
        reload()
        for cluster in CLUSTERS:
            _put(agent_files(cluster) / "ca.crt", bundle)
        east_log = fed.workdir / "agent-east-1.log"
        said = len(east_log.read_bytes())  # it warned of the old CA alone, rightly
        start("east-1")  # an agent reads its files at each reconnect; a restart is one
        eventually(lambda: connected("east-1"), what="east-1 back with the bundle")
        assert agent_ca_expiry("east-1") == _not_after(new.ca_cert)  # the bundle lasts as long as its new CA
        assert b"--ca:" not in east_log.read_bytes()[said:]  # no "expires ... in 5 days: put ... ca.crt there"

        # 3. Agents re-issued under the new CA: the federator, still serving its old certificate, takes them.
        give_agent("west-1", new)
        start("west-1")
        eventually(lambda: connected("west-1"), what="west-1 connected with a new-CA certificate")
        west = Identity(IdentityKind.CLUSTER, "west-1")
        assert scraped(fed.metrics_url, "federator_cluster_certificate_expiration_timestamp_seconds",
                       cluster="west-1") == _not_after(new.cert(west))

        # 4. The serving certificate under the new CA (key first), taken on SIGHUP; streams stay up.
        sessions = scraped(fed.agent_endpoints["west-1"] + "/metrics", "federator_agent_stream_sessions_total",
                           cluster="west-1")
        _put(served / "tls.key", new.server_key.read_bytes())
        _put(served / "tls.crt", new.server_cert.read_bytes())
        reload()
        served_until = min(_not_after(new.server_cert), _not_after(new.ca_cert))  # made the same second or next
        eventually(lambda: scraped(fed.metrics_url, "federator_serving_certificate_expiration_timestamp_seconds")
                   == served_until, what="the new serving certificate served")
        assert all(connected(c) for c in CLUSTERS)
        assert scraped(fed.agent_endpoints["west-1"] + "/metrics", "federator_agent_stream_sessions_total",
                       cluster="west-1") == sessions
        start("east-1")  # a new handshake: its bundle checks the new serving certificate; its old-CA one is taken
        eventually(lambda: connected("east-1"), what="east-1 reconnected to the new serving certificate")
        give_agent("east-1", new)
        start("east-1")
        eventually(lambda: connected("east-1"), what="east-1 connected with a new-CA certificate")

        # 5. The old CA removed, from the federator and from every agent.
        _put(served / "ca.crt", new.ca_cert.read_bytes())
        reload()
        time.sleep(0.5)  # the reload is taken at once on SIGHUP; a poll would take it within 0.2 s
        for cluster in CLUSTERS:
            _put(agent_files(cluster) / "ca.crt", new.ca_cert.read_bytes())
            start(cluster)
        for cluster in CLUSTERS:
            eventually(lambda c=cluster: connected(c), what=f"{cluster} connected under the new CA only")
            assert agent_ca_expiry(cluster) == _not_after(new.ca_cert)
    finally:
        fed.stop()


def test_a_trust_file_takes_every_ca_of_a_rollover_bundle_as_the_federations(tmp_path: Path) -> None:
    from federator.security.trust import FEDERATION, load_trust

    old, new = CertsDir(tmp_path / "old"), CertsDir(tmp_path / "new")
    init_ca(old)
    init_ca(new, common_name="federator CA 2")
    bundle = tmp_path / "ca.crt"
    bundle.write_bytes(old.ca_cert.read_bytes() + new.ca_cert.read_bytes())
    trust = load_trust(tmp_path / "trust.yaml", federation_ca=bundle, absent=True)
    for certs in (old, new):
        east = load_cert(issue(certs, Identity(IdentityKind.CLUSTER, "east-1")))
        assert trust.check(Identity(IdentityKind.CLUSTER, "east-1"), east) == (FEDERATION, "")
    assert trust.bundle_pem() == bundle.read_bytes()  # the client CAs the TLS layer is given


def test_the_served_certificate_counts_as_ending_with_the_ca_that_signed_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mid-rollover, a serving certificate of the old CA outlives that CA (`certs issue --server` does not cap it):
    FederatorServingCertificateExpiresSoon must fire before the old CA ends, not 825 days later."""
    from federator.security.serving_reload import ServingFiles
    from federator.security.tls import TlsFiles, server_files

    old, new = CertsDir(tmp_path / "old"), CertsDir(tmp_path / "new")
    init_ca(old, days=5)
    init_ca(new, common_name="federator CA 2")
    server = Identity(IdentityKind.SERVER, "federator")
    issue(old, server, server_names=("localhost",), days=825)  # outlives its CA
    bundle = tmp_path / "ca.crt"
    bundle.write_bytes(old.ca_cert.read_bytes() + new.ca_cert.read_bytes())
    files = TlsFiles(bundle, tmp_path / "tls.crt", tmp_path / "tls.key")
    _put(files.key, old.server_key.read_bytes())  # type: ignore[arg-type]
    _put(files.cert, old.server_cert.read_bytes())  # type: ignore[arg-type]
    serving = ServingFiles(files, server_files(old).served(), with_ca=True)
    assert serving.expires_at == _not_after(old.ca_cert) < _not_after(old.server_cert)

    _put(files.key, new.server_key.read_bytes())  # type: ignore[arg-type]  # rollover step 4
    _put(files.cert, new.server_cert.read_bytes())  # type: ignore[arg-type]
    serving.reload()
    assert serving.expires_at == min(_not_after(new.server_cert), _not_after(new.ca_cert))  # 10 years, both
