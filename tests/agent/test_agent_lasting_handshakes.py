"""A failed TLS handshake that retrying soon will not fix backs off as a refusal does, up to every 5 minutes, and is
said once; renewed files are still taken at the next attempt (outside QA F5: an agent whose certificate had expired
retried about once a second for ever, a WARNING each time). And the fix it names is the `certs issue` for the CA
that signed its certificate, not the provider label's (F5: `--provider tokyo-dc`, a CA that did not exist).

Each run dials a real mTLS gRPC server over loopback with the files such a member would have; the agent's
reconnect waits are a fake clock (`Agent.reconnect_sleep`), so the delays are read, not waited.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from agent_support import FLEET
from grpc_health.v1 import health, health_pb2_grpc

from federator.agent.agent import REFUSED_BACKOFF, REFUSED_HANDSHAKES, Agent, AgentConfig
from federator.agent.certificates import CertificateCheck
from federator.backends.sim.runtime import SimBackend
from federator.security import pki
from federator.security.pki import CertsDir, Identity, IdentityKind, create_ca, init_ca, issue
from federator.security.tls import ServedTls, TlsFiles, cluster_files

EAST = Identity(IdentityKind.CLUSTER, "east-1")
SERVER = Identity(IdentityKind.SERVER, "federator")


@pytest.fixture
def federation(tmp_path: Path) -> CertsDir:
    certs = CertsDir(tmp_path / "federation")
    init_ca(certs, server_names=("localhost",))
    issue(certs, EAST)
    return certs


def _expired(certs: CertsDir, monkeypatch: pytest.MonkeyPatch) -> TlsFiles:
    with monkeypatch.context() as m:
        m.setattr(pki, "_now", lambda: dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
        issue(certs, EAST, days=1)
    return cluster_files(certs, "east-1")


def _run(files: TlsFiles, certs: CertsDir, attempts: int,
         on_attempt: Callable[[int], None] = lambda n: None) -> tuple[list[float], Agent]:
    """The agent's delays before each of `attempts` reconnects to an mTLS server trusting `certs`' CA;
    `on_attempt(n)` runs before the n-th reconnect (a renewal, say)."""
    delays: list[float] = []

    async def body() -> Agent:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        served = ServedTls(certs.server_key.read_bytes(), certs.server_cert.read_bytes(), certs.ca_cert.read_bytes())
        port = server.add_secure_port("localhost:0", served.credentials())
        await server.start()
        backend = SimBackend(FLEET["c-1"])
        agent = Agent(AgentConfig(cluster="east-1", region="r", target=f"localhost:{port}", tls=files,
                                  labels={"federator.io/provider": "tokyo-dc"}), backend)
        done = asyncio.Event()

        async def sleep(seconds: float) -> None:
            delays.append(seconds)
            if len(delays) >= attempts:
                done.set()
                await asyncio.Event().wait()  # no further attempt
            on_attempt(len(delays))
            await asyncio.sleep(0.001)

        agent.reconnect_sleep = sleep
        task = asyncio.create_task(agent.run())
        try:
            await asyncio.wait_for(done.wait(), 60)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await backend.stop()
            await server.stop(None)
        return agent

    return delays, asyncio.run(body())


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "federator.agent" and r.levelno == level]


def _handshakes(agent: Agent, reason: str) -> float:
    return agent.metrics.registry.get_sample_value(
        "federator_agent_tls_handshake_failures_total", {"cluster": "east-1", "reason": reason}) or 0.0


def test_an_expired_certificate_backs_off_to_minutes_says_it_once_and_takes_the_renewal_at_the_next_attempt(
        federation: CertsDir, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    files = _expired(federation, monkeypatch)
    renew_at = 10

    def renew(n: int) -> None:
        if n == renew_at:
            issue(federation, EAST)  # the Secret renewed in place

    with caplog.at_level(logging.DEBUG, logger="federator.agent"):
        delays, agent = _run(files, federation, renew_at + 1, renew)
    refused = delays[:renew_at]
    assert refused[0] >= 0.8 * REFUSED_BACKOFF["initial"]
    assert all(b > a for a, b in zip(refused[:5], refused[1:6], strict=True))
    assert max(refused) <= REFUSED_BACKOFF["maximum"] and refused[-1] >= 0.8 * REFUSED_BACKOFF["maximum"]
    assert delays[renew_at] < 1.0  # renewed: the handshake passed (the call did not), the usual back-off again
    assert _handshakes(agent, "certificate_expired") == renew_at

    (error,) = _lines(caplog, logging.ERROR)
    assert "the certificate of cluster east-1 expired at" in error
    assert "`federator certs issue --cluster east-1`" in error and "--provider" not in error  # the federation's CA
    (said,) = [m for m in _lines(caplog, logging.WARNING) if m.startswith("cannot talk to the federator")]
    assert "this agent's TLS files are outside their dates" in said and "up to every 300s" in said
    still = [m for m in _lines(caplog, logging.DEBUG) if m.startswith("still refused")]
    assert len(still) == renew_at - 1 and f"(attempt {renew_at})" in still[-1]
    (after,) = [m for m in _lines(caplog, logging.WARNING) if m.startswith("stream to")]  # not one per retry
    assert "UNIMPLEMENTED" in after  # the renewed files' handshake
    assert any(m.startswith("TLS files renewed: --cert ") for m in _lines(caplog, logging.INFO))


def test_a_certificate_the_federator_does_not_trust_backs_off_after_about_a_minute_of_refused_handshakes(
        federation: CertsDir, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stranger = CertsDir(tmp_path / "stranger")
    create_ca(stranger, common_name="stranger CA")
    issue(stranger, EAST)
    files = TlsFiles(federation.ca_cert, stranger.cert(EAST), stranger.key(EAST))
    with caplog.at_level(logging.DEBUG, logger="federator.agent"):
        delays, agent = _run(files, federation, REFUSED_HANDSHAKES + 4)
    assert max(delays[:REFUSED_HANDSHAKES - 1]) <= 1.0  # a federator restarting closes sockets too: retried soon
    slow = delays[REFUSED_HANDSHAKES - 1:]
    assert slow[0] >= 0.8 * REFUSED_BACKOFF["initial"] and all(b > a for a, b in zip(slow, slow[1:], strict=False))
    (said,) = [m for m in _lines(caplog, logging.WARNING) if m.startswith("cannot talk to the federator")]
    assert "refusing this agent's certificate in the TLS handshake" in said
    assert _handshakes(agent, "certificate_refused") == REFUSED_HANDSHAKES + 4


def _dated(certs: CertsDir, monkeypatch: pytest.MonkeyPatch, *, name: str, days: int, ago: float = 0) -> None:
    with monkeypatch.context() as m:
        m.setattr(pki, "_now", lambda: dt.datetime.now(dt.UTC) - dt.timedelta(days=ago))
        init_ca(certs, common_name=name, days=days)


def test_a_bundle_of_two_cas_is_judged_by_the_one_that_expires_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Outside QA F10: during a rollover (old CA ending in 5 days + the new one) the agent warned "put the
    federation's current ca.crt there" and exported the old CA's end, firing FederatorAgentCertificateExpiresSoon
    on every agent of a correctly staged rollover."""
    old, new = CertsDir(tmp_path / "old"), CertsDir(tmp_path / "new")
    _dated(old, monkeypatch, name="federator CA", days=5)
    _dated(new, monkeypatch, name="federator CA 2", days=3650)
    issue(new, EAST)
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(old.ca_cert.read_bytes() + new.ca_cert.read_bytes())
    dates: dict[str, float] = {}
    check = CertificateCheck(TlsFiles(bundle, new.cert(EAST), new.key(EAST)), cluster="east-1",
                             on_dates=dates.__setitem__)
    with caplog.at_level(logging.INFO, logger="federator.agent"):
        assert check.at_start() == ""
    assert [m for m in _lines(caplog, logging.WARNING) if m.startswith("--ca")] == []
    assert dates["ca"] == pki.load_cert(new.ca_cert).not_valid_after_utc.timestamp()

    gone = CertsDir(tmp_path / "gone")  # every CA of the bundle past its end: said, naming the bundle
    _dated(gone, monkeypatch, name="federator CA 0", days=1, ago=3)
    bundle.write_bytes(gone.ca_cert.read_bytes() + gone.ca_cert.read_bytes())
    with caplog.at_level(logging.INFO, logger="federator.agent"):
        assert "the last to expire of its 2 CAs expired at" in check.check()


@pytest.mark.parametrize("signer", ["federation", "made", "imported", "unreadable"])
def test_the_fix_names_the_command_for_the_ca_that_signed_the_certificate(
        federation: CertsDir, tmp_path: Path, signer: str) -> None:
    """The provider label (`tokyo-dc` here) is a label: only the certificate's issuer says whether a provider's CA
    signed it, and which."""
    if signer == "federation":
        files = cluster_files(federation, "east-1")
        want = "`federator certs issue --cluster east-1`"
    elif signer in ("made", "imported"):
        theirs = federation.provider("acme")
        create_ca(theirs, common_name="acme provider CA" if signer == "made" else "ACME Root R1")
        issue(theirs, EAST)
        files = TlsFiles(federation.ca_cert, theirs.cert(EAST), theirs.key(EAST))
        want = ("`federator certs issue --cluster east-1 --provider acme`" if signer == "made" else
                "`federator certs issue --cluster east-1 --provider tokyo-dc`, tokyo-dc being the provider whose "
                "CA signed it (issuer CN=ACME Root R1)")
    else:
        files = TlsFiles(tmp_path / "missing.crt", federation.cert(EAST), federation.key(EAST))
        want = ("`federator certs issue --cluster east-1` if the federation's CA signed it, or `federator certs "
                "issue --cluster east-1 --provider NAME` with the CA of its provider NAME")
    assert CertificateCheck(files, cluster="east-1", provider="tokyo-dc").issue_command() == want
