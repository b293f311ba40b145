"""An agent the federator refuses (PERMISSION_DENIED: revoked, untrusted; UNAUTHENTICATED; INVALID_ARGUMENT on its
Hello) backs off to minutes and says why once per reason (QA: a revoked agent retried every second or few, for ever,
with a WARNING each time; outside QA F14: one whose Hello.region the trust file does not allow still did). So does
an mTLS agent dialing a plaintext federator, with the CLI's hint (F17)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from agent_support import FLEET

from federator.agent.agent import REFUSED_BACKOFF, Agent, AgentConfig
from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.backends.sim.runtime import SimBackend
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import TlsFiles, cluster_files, server_files

ATTEMPTS = 12
PAUSED = "resumed after a pause of "  # agent/session.py's pause watch


class Refusing(agent_pb2_grpc.AgentServiceServicer):
    """Refuses every stream, with `reasons[i]` for the i-th (the last one after that)."""

    def __init__(self, reasons: list[str], code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED) -> None:
        self.reasons = reasons
        self.code = code
        self.tries = 0

    async def Connect(self, request_iterator: AsyncIterator[agent_pb2.AgentMessage],  # noqa: N802
                      context: grpc.aio.ServicerContext) -> AsyncIterator[agent_pb2.FederatorMessage]:
        await anext(request_iterator)
        reason = self.reasons[min(self.tries, len(self.reasons) - 1)]
        self.tries += 1
        await context.abort(self.code, reason)
        yield agent_pb2.FederatorMessage()  # unreachable: makes this a stream handler


def _run(fed: Refusing, tls: TlsFiles | None = None, served: TlsFiles | None = None) -> list[float]:
    """The agent's delays before each of ATTEMPTS reconnects (slept for a moment only: a fake clock). `tls`: the
    agent's files; `served`: the federator's (else it is plaintext)."""
    delays: list[float] = []

    async def go() -> None:
        server = grpc.aio.server()
        agent_pb2_grpc.add_AgentServiceServicer_to_server(fed, server)
        port = server.add_secure_port("127.0.0.1:0", served.server_credentials()) if served is not None else \
            server.add_insecure_port("127.0.0.1:0")
        await server.start()
        backend = SimBackend(FLEET["c-1"])
        agent = Agent(AgentConfig(cluster="c-1", region="r", target=f"127.0.0.1:{port}", tls=tls), backend)
        done = asyncio.Event()

        async def sleep(seconds: float) -> None:
            delays.append(seconds)
            if len(delays) >= ATTEMPTS:
                done.set()
            await asyncio.sleep(0.001)

        agent.reconnect_sleep = sleep
        task = asyncio.create_task(agent.run())
        try:
            await asyncio.wait_for(done.wait(), 30)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await backend.stop()
            await server.stop(None)

    asyncio.run(go())
    return delays[:ATTEMPTS]


def _agent_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """What the agent said at `level` of its refusals: every line but the pause watch's (agent/session.py), which
    tells a loop held over PAUSE_SECONDS, whatever held it. On a loaded machine the twelve TLS handshakes held it
    2.1 s, and "resumed after a pause" was a second WARNING beside the one hint (1 run of tests/agent in 3)."""
    return [r.getMessage() for r in caplog.records if r.name == "federator.agent" and r.levelno == level
            and not r.getMessage().startswith(PAUSED)]


def test_a_revoked_agent_backs_off_to_minutes_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="federator.agent"):
        delays = _run(Refusing(["cluster c-1: its certificate (serial 1f) is revoked"]))
    assert delays[0] >= 0.8 * REFUSED_BACKOFF["initial"]
    assert all(b > a for a, b in zip(delays[:5], delays[1:6], strict=True))  # exponential ...
    assert max(delays) <= REFUSED_BACKOFF["maximum"]
    assert min(delays[-3:]) >= 0.8 * REFUSED_BACKOFF["maximum"]  # ... to 5 minutes
    (warned,) = _agent_lines(caplog, logging.WARNING)
    assert "refuses this agent (PERMISSION_DENIED: cluster c-1: its certificate (serial 1f) is revoked)" in warned
    assert len([m for m in _agent_lines(caplog, logging.DEBUG) if m.startswith("still refused")]) == ATTEMPTS - 1


def test_a_new_reason_is_said_again(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="federator.agent"):
        _run(Refusing(["revoked", "revoked", "revoked", "provider 'acme' is no longer in the trust file"]))
    warned = _agent_lines(caplog, logging.WARNING)
    assert len(warned) == 2
    assert "(PERMISSION_DENIED: revoked)" in warned[0]
    assert "no longer in the trust file" in warned[1]


def _backs_off_to_minutes(delays: list[float]) -> None:
    assert delays[0] >= 0.8 * REFUSED_BACKOFF["initial"]
    assert all(b > a for a, b in zip(delays[:5], delays[1:6], strict=True))
    assert min(delays[-3:]) >= 0.8 * REFUSED_BACKOFF["maximum"]


@pytest.mark.parametrize(("code", "reason"), [
    (grpc.StatusCode.INVALID_ARGUMENT, "hello.region: 'west' is not a region of provider 'acme'; the trust file "
                                       "binds its clusters to regions east, north"),
    (grpc.StatusCode.INVALID_ARGUMENT, "hello.labels[federator.io/provider]: 'globex' is not the provider whose CA "
                                       "certified cluster c-1"),
    (grpc.StatusCode.UNAUTHENTICATED, "the client certificate carries no federator:// identity"),
], ids=["region", "label", "unauthenticated"])
def test_a_refused_hello_backs_off_to_minutes_and_is_said_once(
        caplog: pytest.LogCaptureFixture, code: grpc.StatusCode, reason: str) -> None:
    """Outside QA F14: a Hello refused INVALID_ARGUMENT was retried about once a second for ever, a WARNING (and
    a refused Hello on the federator) each time."""
    with caplog.at_level(logging.DEBUG, logger="federator.agent"):
        delays = _run(Refusing([reason], code))
    _backs_off_to_minutes(delays)
    (warned,) = _agent_lines(caplog, logging.WARNING)
    assert f"refuses this agent ({code.name}: {reason})" in warned


def test_an_agent_whose_own_stream_ended_before_its_hello_retries_as_usual() -> None:
    """Not a refusal of the Hello: the federator saw this agent's side end first (its own deadline while the
    federator was slow); the next try may well work."""
    delays = _run(Refusing(["hello: the stream ended before its first message, which must be a Hello"],
                           grpc.StatusCode.INVALID_ARGUMENT))
    assert max(delays) < REFUSED_BACKOFF["initial"]


def test_an_mtls_agent_dialing_a_plaintext_federator_hints_once_and_backs_off(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Outside QA F17: `WRONG_VERSION_NUMBER` every 0.1-1 s, while the CLI in the same place says the federator
    answers in plaintext."""
    certs = CertsDir(tmp_path / "certs")
    init_ca(certs)
    issue(certs, Identity(IdentityKind.CLUSTER, "c-1"))
    fed = Refusing(["never reached: no stream opens"])
    with caplog.at_level(logging.DEBUG, logger="federator.agent"):
        delays = _run(fed, tls=cluster_files(certs, "c-1"))
    assert fed.tries == 0
    _backs_off_to_minutes(delays)
    (warned,) = _agent_lines(caplog, logging.WARNING)
    assert "WRONG_VERSION_NUMBER" in warned
    assert "answers in plaintext: that federator runs with --insecure; pass --insecure, or dial its mTLS address" \
        in warned


def test_an_agent_dialing_a_name_the_federators_certificate_lacks_hints_once_and_backs_off(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    certs = CertsDir(tmp_path / "certs")
    init_ca(certs, server_names=("localhost",))  # the agent dials 127.0.0.1
    issue(certs, Identity(IdentityKind.CLUSTER, "c-1"))
    with caplog.at_level(logging.DEBUG, logger="federator.agent"):
        delays = _run(Refusing(["never reached"]), tls=cluster_files(certs, "c-1"), served=server_files(certs))
    _backs_off_to_minutes(delays)
    (warned,) = _agent_lines(caplog, logging.WARNING)
    assert ("hint: the federator's certificate does not name 127.0.0.1; dial a name it has, or re-issue it with "
            "`federator certs issue --dir CERTS --server --server-name 127.0.0.1`") in warned
