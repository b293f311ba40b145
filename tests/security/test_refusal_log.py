"""A refused agent retries for ever: the federator says why once per identity and reason per window, not per try
(QA: a revoked agent wrote 76 WARNING lines in 70 s)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import pytest

from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.security.auth import AuthDenied, Authenticator, Peer
from federator.security.limits import RejectReason
from federator.server.federator import Federator
from federator.server.refusal_log import MAX_KEYS, RefusalLog
from federator.server.services import AgentService
from federator.store import SqliteJobStore

log = logging.getLogger("test.refusals")
REVOKED = "refused an agent stream claiming cluster 'acme-east': provider 'acme' revoked the certificate"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _levels(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == log.name]


def test_a_revoked_agent_retrying_for_70s_is_one_warning_and_the_rest_debug(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    refusals = RefusalLog(log, clock=clock)
    with caplog.at_level(logging.DEBUG, logger=log.name):
        for _ in range(76):  # the QA's series: once a second, then every ~4.5 s
            refusals.refused("acme-east", "revoked", REVOKED)
            clock.now += 0.92
    lines = _levels(caplog)
    assert [m for lvl, m in lines if lvl == logging.WARNING] == [REVOKED]
    assert sum(lvl == logging.DEBUG for lvl, _ in lines) == 75

    caplog.clear()
    clock.now += 300
    with caplog.at_level(logging.DEBUG, logger=log.name):
        refusals.refused("acme-east", "revoked", REVOKED)
    assert _levels(caplog) == [(logging.WARNING, f"{REVOKED} (75 more like it since the last such line, logged at "
                                                 "DEBUG)")]


def test_another_reason_or_another_identity_is_a_warning_of_its_own(caplog: pytest.LogCaptureFixture) -> None:
    refusals = RefusalLog(log, clock=Clock())
    with caplog.at_level(logging.DEBUG, logger=log.name):
        refusals.refused("acme-east", "revoked", "a")
        refusals.refused("acme-east", "untrusted", "b")
        refusals.refused("acme-west", "revoked", "c")
        refusals.refused("acme-east", "revoked", "a")
    assert [lvl for lvl, _ in _levels(caplog)] == [logging.WARNING] * 3 + [logging.DEBUG]


def test_claims_a_client_makes_up_do_not_grow_the_memory_without_bound() -> None:
    refusals = RefusalLog(log, clock=Clock())
    for i in range(3 * MAX_KEYS):
        refusals.refused(f"made-up-{i}", "revoked", "x")
    assert len(refusals._seen) <= MAX_KEYS


class _Revoked(Authenticator):
    """Every agent's certificate is revoked."""

    def agent(self, auth_context: object, claimed: str) -> Peer | AuthDenied:  # type: ignore[override]
        return AuthDenied(RejectReason.REVOKED, f"the certificate of cluster {claimed} (serial 1f) is revoked")


def test_a_revoked_agent_connecting_ten_times_is_one_federator_warning_and_ten_counted_refusals(
        caplog: pytest.LogCaptureFixture) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))

    async def go() -> list[grpc.StatusCode]:
        server = grpc.aio.server()
        agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed, _Revoked(insecure=True)), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        codes = []
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                for _ in range(10):
                    call = agent_pb2_grpc.AgentServiceStub(ch).Connect(iter([agent_pb2.AgentMessage(
                        hello=agent_pb2.Hello(cluster="acme-east", region="r"))]))
                    with pytest.raises(grpc.aio.AioRpcError) as denied:
                        async for _ in call:
                            pass
                    codes.append(denied.value.code())
        finally:
            await server.stop(None)
        return codes

    with caplog.at_level(logging.DEBUG, logger="federator.server"):
        codes = asyncio.run(go())
    assert codes == [grpc.StatusCode.PERMISSION_DENIED] * 10
    said = [(r.levelno, r.getMessage()) for r in caplog.records if "refused an agent stream" in r.getMessage()]
    assert [lvl for lvl, _ in said] == [logging.WARNING] + [logging.DEBUG] * 9
    assert said[0][1] == ("refused an agent stream claiming cluster 'acme-east': the certificate of cluster "
                          "acme-east (serial 1f) is revoked")
    assert fed.metrics.messages_rejected.labels("revoked")._value.get() == 10
