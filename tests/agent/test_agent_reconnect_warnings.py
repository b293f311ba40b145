"""An outage is one WARNING, then one a minute, not one per reconnect try (outside WAN QA, W6: a 5 s outage wrote
ten WARNINGs, a link flapping for 2 minutes 58). Every try is still logged, at INFO, with its attempt number, and
the next outage warns at once again. A fake clock advanced by the reconnect's own sleeps; counted, not timed."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import grpc
import pytest

from federator.agent.reconnect import RECONNECT_WARNING_EVERY, Reconnect


class _Stop(Exception):
    pass


def test_an_outage_warns_once_and_then_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    outage = 2.5 * RECONNECT_WARNING_EVERY
    tries = [0]

    async def stream() -> None:
        tries[0] += 1
        if clock[0] >= outage:
            raise _Stop
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                   "failed to connect to all addresses; last error: UNKNOWN: Connection refused")

    async def sleep(delay: float) -> None:
        clock[0] += delay

    session = SimpleNamespace(
        config=SimpleNamespace(max_backoff=5.0, target="127.0.0.1:1", tls=None, labels={}, cluster="east-1"),
        metrics=None, certificates=None, instance="i", sessions=0, fatal=None, stream=stream,
        contact=SimpleNamespace(clock=lambda: clock[0]))
    with caplog.at_level(logging.INFO, logger="federator.agent"), pytest.raises(_Stop):
        asyncio.run(Reconnect(session, sleep=sleep).run())  # type: ignore[arg-type]
    lost = [r for r in caplog.records if "reconnecting in" in r.getMessage()]
    assert len(lost) == tries[0] - 1 > 20  # every try is a line
    warned = [r for r in lost if r.levelno == logging.WARNING]
    assert len(warned) == 3  # at 0, after a minute, after two
    assert "(attempt 1)" in warned[0].getMessage()
    assert all(r.levelno == logging.INFO for r in lost if r not in warned)
