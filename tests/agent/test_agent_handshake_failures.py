"""The agent counts its failed TLS handshakes with the federator by why (federator_agent_tls_handshake_failures_total):
the federator cannot, since gRPC refuses a client certificate in its C core, before any Python code runs.

Each case dials a real mTLS (or plaintext) gRPC server over loopback with the files a misconfigured or expired
member would have, as `federator serve` would serve them (security/tls.py ServedTls).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from agent_support import FLEET
from grpc_health.v1 import health, health_pb2_grpc

from federator.agent.agent import Agent, AgentConfig
from federator.agent.refusal import HandshakeFailure
from federator.backends.sim.runtime import SimBackend
from federator.security import pki
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import ServedTls, TlsFiles, cluster_files

EAST = Identity(IdentityKind.CLUSTER, "east-1")
SERVER = Identity(IdentityKind.SERVER, "federator")


def _ca(root: Path, name: str) -> CertsDir:
    certs = CertsDir(root / name)
    init_ca(certs, common_name=f"{name} CA")
    issue(certs, SERVER, server_names=("localhost",))
    issue(certs, EAST)
    return certs


@pytest.fixture
def federation(tmp_path: Path) -> CertsDir:
    return _ca(tmp_path, "federation")


def _expired(certs: CertsDir, monkeypatch: pytest.MonkeyPatch) -> TlsFiles:
    with monkeypatch.context() as m:
        m.setattr(pki, "_now", lambda: dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
        issue(certs, EAST, days=1)
    return cluster_files(certs, "east-1")


async def _server(certs: CertsDir, *, tls: bool) -> AsyncIterator[int]:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    if tls:
        served = ServedTls(certs.server_key.read_bytes(), certs.server_cert.read_bytes(), certs.ca_cert.read_bytes())
        port = server.add_secure_port("localhost:0", served.credentials())
    else:
        port = server.add_insecure_port("localhost:0")
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


def _failures(agent: Agent) -> dict[str, float]:
    return {why.value: agent.metrics.registry.get_sample_value(
        "federator_agent_tls_handshake_failures_total", {"cluster": "east-1", "reason": why.value}) or 0.0
        for why in HandshakeFailure}


def _run(files: TlsFiles, certs: CertsDir, *, host: str = "localhost", tls_server: bool = True) -> Agent:
    async def body() -> Agent:
        servers = _server(certs, tls=tls_server)
        port = await anext(servers)
        backend = SimBackend(FLEET["c-1"])
        agent = Agent(AgentConfig(cluster="east-1", region="r", target=f"{host}:{port}", max_backoff=0.05,
                                  tls=files), backend)
        task = asyncio.create_task(agent.run())
        try:
            for _ in range(200):  # until a few failures are counted (each retry fails the same way)
                await asyncio.sleep(0.05)
                if sum(_failures(agent).values()) >= 2:
                    break
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await backend.stop()
            await servers.aclose()
        return agent

    return asyncio.run(body())


def _only(agent: Agent, reason: HandshakeFailure) -> None:
    counted = _failures(agent)
    assert counted[reason.value] >= 2, counted
    assert {k: v for k, v in counted.items() if k != reason.value} == dict.fromkeys(
        (w.value for w in HandshakeFailure if w is not reason), 0.0)


def test_an_expired_agent_certificate_is_counted_as_expired(federation: CertsDir,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _only(_run(_expired(federation, monkeypatch), federation), HandshakeFailure.CERTIFICATE_EXPIRED)


def test_a_certificate_of_a_ca_the_federator_does_not_trust_is_counted_as_refused(federation: CertsDir,
                                                                                  tmp_path: Path) -> None:
    stranger = _ca(tmp_path, "stranger")  # a provider the federator's trust does not have
    files = TlsFiles(federation.ca_cert, stranger.cert(EAST), stranger.key(EAST))
    _only(_run(files, federation), HandshakeFailure.CERTIFICATE_REFUSED)


def test_a_federator_certificate_the_agent_does_not_trust_is_counted(federation: CertsDir, tmp_path: Path) -> None:
    stranger = _ca(tmp_path, "stranger")
    files = TlsFiles(stranger.ca_cert, federation.cert(EAST), federation.key(EAST))  # the wrong --ca
    _only(_run(files, federation), HandshakeFailure.SERVER_UNTRUSTED)


def test_a_federator_certificate_for_another_name_is_counted(federation: CertsDir) -> None:
    _only(_run(cluster_files(federation, "east-1"), federation, host="127.0.0.1"),  # it names localhost only
          HandshakeFailure.SERVER_NAME_MISMATCH)


def test_a_plaintext_federator_is_counted_as_not_tls(federation: CertsDir) -> None:
    _only(_run(cluster_files(federation, "east-1"), federation, tls_server=False), HandshakeFailure.NOT_TLS)


def test_a_good_handshake_counts_nothing_and_the_reasons_start_at_zero(federation: CertsDir) -> None:
    async def body() -> Agent:
        servers = _server(federation, tls=True)
        port = await anext(servers)
        backend = SimBackend(FLEET["c-1"])
        agent = Agent(AgentConfig(cluster="east-1", region="r", target=f"localhost:{port}", max_backoff=0.05,
                                  tls=cluster_files(federation, "east-1")), backend)
        task = asyncio.create_task(agent.run())
        await asyncio.sleep(1.0)  # the handshake succeeds; the call fails (no agent service), and is retried
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await backend.stop()
        await servers.aclose()
        return agent

    assert _failures(asyncio.run(body())) == dict.fromkeys((w.value for w in HandshakeFailure), 0.0)
