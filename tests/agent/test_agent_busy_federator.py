"""An agent whose federator is up but too busy to welcome it (soak finding S4): it waits for the Welcome longer
than the federator's gRPC holds an unread call, and when a stream is left unwelcomed the crowd comes back spread
out, not within the same second.

Soak S4: 100 agents took 5 minutes to connect to a federator whose loop was loaded; each gave its stream up 10 s
after connecting (the Welcome came later), reconnected within a second and sent a new Hello to the back of the
queue: 1,407 streams given up. Counted, not timed: a fake clock for the liveness check, a fake sleep for the
reconnect delays.
"""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace

import grpc
import pytest

from federator.agent.backoff import Backoff
from federator.agent.reconnect import Reconnect
from federator.agent.session import UNWELCOMED, WELCOME_TIMEOUT, Session, StreamEnded

SERVER_UNREQUESTED_SECONDS = 30.0  # grpc.server_max_unrequested_time_in_server's default


def _unwelcomed(age: float) -> list[str]:
    """What the liveness check does to a stream not welcomed `age` seconds after it opened: the reasons it ended
    it with (none: it waits on)."""
    ended: list[str] = []
    fake = SimpleNamespace(contact=SimpleNamespace(age=lambda: age), connected=asyncio.Event(), terms=None,
                           end=ended.append)
    Session._check_liveness(fake)  # type: ignore[arg-type]
    return ended


def test_a_stream_waits_for_its_welcome_past_the_time_a_busy_federator_holds_it_unread() -> None:
    assert WELCOME_TIMEOUT > SERVER_UNREQUESTED_SECONDS
    assert _unwelcomed(10.5) == []  # 0.17.0 gave it up here, still in the federator's queue
    assert _unwelcomed(SERVER_UNREQUESTED_SECONDS + 1) == []
    [why] = _unwelcomed(WELCOME_TIMEOUT + 0.5)
    assert why.startswith(UNWELCOMED)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("ending", [
    StreamEnded(f"{UNWELCOMED} {WELCOME_TIMEOUT + 0.1:.1f}s after connecting"),
    grpc.aio.AioRpcError(grpc.StatusCode.CANCELLED, grpc.aio.Metadata(), grpc.aio.Metadata(), "CANCELLED"),
], ids=["given-up", "cancelled-unread"])
def test_streams_left_unwelcomed_are_retried_spread_over_the_backoff_not_within_a_second(ending: Exception) -> None:
    streams = 40
    delays: list[float] = []

    async def stream() -> None:
        if len(delays) >= streams:
            raise _Stop
        raise ending

    async def sleep(delay: float) -> None:
        delays.append(delay)

    session = SimpleNamespace(
        config=SimpleNamespace(max_backoff=5.0, target="127.0.0.1:1", tls=None, labels={}, cluster="east-1"),
        metrics=None, certificates=None, instance="i", sessions=0, fatal=None, stream=stream,
        contact=SimpleNamespace(clock=lambda: 0.0))
    with pytest.raises(_Stop):
        asyncio.run(Reconnect(session, sleep=sleep).run())  # type: ignore[arg-type]
    assert len(delays) == streams
    # Not the restart's fast pace (at most a second in an outage's first minute): the whole back-off, jittered
    assert min(delays) >= Backoff().fast_max
    assert max(delays) <= 5.0
    assert sum(d >= 3.0 for d in delays) >= streams // 4  # spread out, not one second each


def test_a_federator_that_is_down_is_still_retried_fast() -> None:
    """UNAVAILABLE (a restart, a failover) keeps the fast pace: the agent is back within a second."""
    backoff = Backoff(_rng=random.Random(1))
    assert max(backoff.next() for _ in range(10)) <= backoff.fast_max
