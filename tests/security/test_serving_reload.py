"""The federator's own certificate renewed under it is served from the next handshake (security/serving_reload.py).

It was read once at start: cert-manager renewed it in the mounted Secret, the federator went on presenting the
old one, and when that expired every agent's handshake failed at once.
"""

from __future__ import annotations

import signal
import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509

from federator.cli.get import list_clusters
from federator.local import LocalFederation
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.serving_reload import ServingFiles
from federator.security.tls import server_files
from federator.security.trust_reload import ReloadResult

from support import eventually, scraped

SERVER = Identity(IdentityKind.SERVER, "federator")
HOSTS = ("localhost", "127.0.0.1")


@pytest.fixture
def certs(tmp_path: Path) -> CertsDir:
    c = CertsDir(tmp_path / "certs")
    init_ca(c)
    return c


def _serial(pem: bytes) -> int:
    return x509.load_pem_x509_certificates(pem)[0].serial_number


def _renew(certs: CertsDir, *, days: int = 825) -> int:
    issue(certs, SERVER, server_names=HOSTS, days=days)
    return _serial(certs.server_cert.read_bytes())


def test_a_renewed_pair_is_taken_and_one_that_is_not_a_pair_is_refused_keeping_the_last(certs: CertsDir) -> None:
    served = server_files(certs).served()
    files = ServingFiles(server_files(certs), served, with_ca=True)
    assert files.poll() is ReloadResult.UNCHANGED
    first = _serial(served.certificate)

    renewed = _renew(certs)
    assert files.poll() is ReloadResult.OK
    assert _serial(served.certificate) == renewed != first and served.key == certs.server_key.read_bytes()

    good_key = certs.server_key.read_bytes()
    old_cert = served.certificate
    issue(certs, Identity(IdentityKind.USER, "someone"))  # another key
    certs.server_key.write_bytes(certs.key(Identity(IdentityKind.USER, "someone")).read_bytes())
    assert files.poll() is ReloadResult.REFUSED
    assert "is not the key of the certificate" in files.problem
    assert (served.certificate, served.key) == (old_cert, good_key)  # never a pair that cannot handshake

    certs.server_key.write_bytes(good_key)  # the copy finished
    assert files.poll() is ReloadResult.OK and files.problem == ""


def test_an_expired_certificate_is_refused(certs: CertsDir) -> None:
    served = server_files(certs).served()
    later = [time.time()]
    files = ServingFiles(server_files(certs), served, with_ca=True, clock=lambda: later[0])
    first = served.certificate
    _renew(certs, days=1)
    later[0] += 2 * 86_400  # the renewed file is already past its end when read
    assert files.poll() is ReloadResult.REFUSED and "expired" in files.problem
    assert served.certificate == first


def test_without_a_trust_file_a_rotated_ca_is_the_new_client_cas(certs: CertsDir) -> None:
    served = server_files(certs).served()
    files = ServingFiles(server_files(certs), served, with_ca=True)
    init_ca(certs, force=True)  # a new federation CA, and the server's pair under it
    assert files.poll() is ReloadResult.OK
    assert served.pem == certs.ca_cert.read_bytes()

    kept = server_files(certs).served(b"trust bundle")
    ServingFiles(server_files(certs), kept, with_ca=False).reload()
    assert kept.pem == b"trust bundle"  # with a trust file, its reload owns the client CAs


def _presented(address: str, certs: CertsDir) -> int:
    """The serial of the certificate the server presents to a new connection (an admin's mTLS handshake)."""
    host, port = address.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    admin = Identity(IdentityKind.USER, "admin")
    ctx.load_cert_chain(str(certs.cert(admin)), str(certs.key(admin)))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _metric(fed: LocalFederation, name: str, **labels: str) -> float | None:
    return scraped(fed.metrics_url, name, **labels)


FLEET = """
clusters:
  - {name: east-1, region: east, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}
"""


@pytest.mark.e2e
def test_a_running_federator_serves_its_renewed_certificate_and_keeps_its_agents(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet,
                          serve_args=["--report-interval", "0.3", "--lease-seconds", "2",
                                      "--trust-poll-seconds", "0.2"])
    certs = fed.certs
    init_ca(certs)
    try:
        fed.start_server()
        assert fed.server is not None
        fed.start_agent("east-1")
        eventually(lambda: [c["state"] for c in list_clusters(fed.client)] == ["Ready"], what="east-1 Ready")
        address = fed.grpc_target
        first = _presented(address, certs)
        expiry = _metric(fed, "federator_serving_certificate_expiration_timestamp_seconds")
        assert expiry is not None and expiry > time.time() + 800 * 86_400

        renewed = _renew(certs, days=30)
        eventually(lambda: _presented(address, certs) == renewed, what="the renewed certificate served")
        assert renewed != first
        assert _metric(fed, "federator_serving_certificate_reload_total", result="ok") == 1
        expiry = _metric(fed, "federator_serving_certificate_expiration_timestamp_seconds")
        assert expiry is not None and expiry < time.time() + 31 * 86_400
        assert [c["state"] for c in list_clusters(fed.client)] == ["Ready"]  # a new client's handshake works

        good_key = certs.server_key.read_bytes()
        certs.server_key.write_bytes(certs.ca_key.read_bytes())  # not the certificate's key
        eventually(lambda: _metric(fed, "federator_serving_certificate_reload_failing") == 1, what="refused")
        assert _presented(address, certs) == renewed and fed.server.alive()
        certs.server_key.write_bytes(good_key)
        fed.server.popen.send_signal(signal.SIGHUP)  # at once, and as the poll would
        eventually(lambda: _metric(fed, "federator_serving_certificate_reload_failing") == 0, what="taken again")
        assert [c["state"] for c in list_clusters(fed.client)] == ["Ready"]
    finally:
        fed.stop()
