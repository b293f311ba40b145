"""Orders reach an agent however many there are, and a stream the federator ends says why (server/outbox.py).

Audit findings: more than 1,000 orders at once for one cluster (a re-sync of
thousands of placements after a reconnect, a report listing thousands of
stray placements) closed its stream with status OK and dropped them, and the
reconnect did the same again, forever; a second stream for a cluster closed the
first with OK and no message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import grpc
import pytest
from server_support import H100, LOST_AFTER, Clock, MemoryStore, make, spec
from test_services_edge import SUPERSEDED, agent_stream, channel, hello, served

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.model import ClusterCapacity, JobPhase
from federator.server.orders import CancelOrder, ErrorNotice
from federator.server.outbox import AGENT_CLOSED, ERROR_LIMIT, EndCode, Outbox, superseded

from builders import cluster, pool
from support import until

MANY = 2_500


def big(*placement_ids: str) -> ClusterCapacity:
    """Room for MANY one-GPU jobs of server_support.spec (4 CPUs, 16 GiB each)."""
    cap = cluster("big", "r", pool(H100, nodes=400), cpu=20_000, memory_gib=100_000).capacity
    return replace(cap, placement_ids=frozenset(placement_ids))


def report_of(cap: ClusterCapacity, sequence: int = 1) -> agent_pb2.AgentMessage:
    pb = convert.capacity_to_pb(replace(cap, sequence=sequence))
    return agent_pb2.AgentMessage(capacity=pb)


def test_a_re_sync_of_thousands_of_placements_sends_every_launch_over_the_stream() -> None:
    async def go() -> None:
        async with served() as s:
            fed = s.fed
            first = fed.connect(cluster="big", region="r", labels={})
            fed.report(first, big())
            jobs = [fed.submit(spec(f"j{i}", gpus=1)) for i in range(MANY)]
            for _ in range(20):
                if all(j.placements for j in jobs):
                    break
                fed.schedule_once()
            placed = {j.placements[0].placement_id for j in jobs if j.placements}
            assert len(placed) == MANY
            assert not first.closing and first.outbox.qsize() == MANY  # a burst of launches is kept, not reset
            fed.disconnect(first)  # the stream broke before the agent read them: the re-sync owes them all
            async with channel(s.target) as ch:
                got, err = await agent_stream(ch, [hello("big", "r"), report_of(big())])
            assert err is None, err
            launched = [m.launch.placement.placement_id for m in got if m.WhichOneof("body") == "launch"]
            assert len(launched) == MANY and set(launched) == placed
            assert all(j.phase is JobPhase.PLACED for j in jobs)

    asyncio.run(go())


def test_a_report_of_thousands_of_stray_placements_has_every_one_cancelled() -> None:
    strays = [f"gone-{i}.g1.big" for i in range(MANY)]

    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                got, err = await agent_stream(ch, [hello("big", "r"), report_of(big(*strays))])
            assert err is None, err
            cancelled = [m.cancel.placement_id for m in got if m.WhichOneof("body") == "cancel"]
            assert sorted(cancelled) == sorted(strays)

    asyncio.run(go())


def test_a_newer_stream_for_a_cluster_ends_the_older_with_aborted_saying_so(caplog: pytest.LogCaptureFixture) -> None:
    """And says so once, at INFO: the reader of a stream the federator itself ended logged an ERROR with a
    traceback ("agent stream of east-1 failed ... AbortError: Locally aborted"), as if reading had broken, on
    every Lost, superseded or revoked cluster (found on the test bed, SIGSTOP of an agent past --lost-after)."""
    caplog.set_level(logging.INFO, logger="federator.server")

    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                older = asyncio.create_task(agent_stream(ch, [hello()], quiet=SUPERSEDED))
                await until(lambda: (rec := s.fed.clusters.get("east-1")) is not None and rec.connected)
                newer, err = await agent_stream(ch, [hello()])
                assert err is None and newer[0].WhichOneof("body") == "welcome"
                got, ended = await older
            assert got[0].WhichOneof("body") == "welcome"
            assert ended is not None and ended.code() is grpc.StatusCode.ABORTED
            assert "superseded by a newer stream for cluster east-1" in (ended.details() or "")
            await asyncio.sleep(0.2)  # the old stream's reader has seen the end

    asyncio.run(go())
    assert any("ending the stream of cluster east-1: ABORTED" in r.getMessage() for r in caplog.records)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_lost_clusters_stream_ends_unavailable_saying_so() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    rec = fed.connect(cluster="west-1", region="r", labels={})
    fed.report(rec, big())
    clock.now += LOST_AFTER
    fed.check_leases()  # Partitioned
    clock.now += LOST_AFTER + 1
    fed.check_leases()  # Lost
    assert rec.outbox.ending is not None and rec.outbox.ending.code is EndCode.UNAVAILABLE
    assert "west-1 is Lost" in rec.outbox.ending.message


def test_a_cancel_already_waiting_is_not_queued_twice() -> None:
    out = Outbox()
    for _ in range(3):
        out.put(CancelOrder("p", "superseded"))
    assert out.qsize() == 1
    assert out.get_nowait() == CancelOrder("p", "superseded")
    out.put(CancelOrder("p", "again"))  # sent already: a new one is queued
    assert out.qsize() == 1


def test_errors_waiting_are_bounded_but_orders_are_not() -> None:
    out = Outbox()
    for i in range(ERROR_LIMIT + 10):
        out.put(ErrorNotice("malformed", f"m{i}"))
        out.put(CancelOrder(f"p{i}", "x"))
    assert out.qsize() == ERROR_LIMIT + (ERROR_LIMIT + 10)


def test_the_reader_waits_while_too_many_orders_are_unread() -> None:
    async def go() -> None:
        out = Outbox(pace=2)
        for i in range(3):
            out.put(CancelOrder(f"p{i}", "x"))
        waiting = asyncio.create_task(out.room())
        await asyncio.sleep(0.01)
        assert not waiting.done()  # the agent's next message waits in the transport
        assert isinstance(await out.get(), CancelOrder)
        await asyncio.wait_for(waiting, 1)

    asyncio.run(go())


def test_an_ended_outbox_takes_nothing_more_and_the_first_reason_stays() -> None:
    out = Outbox()
    out.put(CancelOrder("p", "x"))
    out.close(superseded("east-1"))
    out.close(AGENT_CLOSED)
    out.put(CancelOrder("q", "x"))
    assert [out.get_nowait()] == [None] and out.empty()
    assert out.ending == superseded("east-1")
