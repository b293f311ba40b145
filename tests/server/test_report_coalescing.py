"""Reports over a member's rate limit are coalesced: the newest waits and is applied, never silently dropped.

Audit finding: of a burst of 28 reports, the last (capacity fell to one node)
was dropped by the rate limit and the federator kept an older capacity until
the agent's next report.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from server_support import Clock, MemoryStore, make
from test_services_edge import channel, hello, served

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.security.limits import Limits, TokenBucket
from federator.server.reports import ReportGate
from federator.server.services import AgentService

from support import until


def report(sequence: int, nodes: int) -> agent_pb2.AgentMessage:
    hist = [0] * 9
    hist[8] = nodes
    pool = agent_pb2.AcceleratorPool(accelerator_model="H100", nodes_by_free=hist, total_accelerators=8 * nodes,
                                     allocatable_accelerators=8 * nodes)
    return agent_pb2.AgentMessage(capacity=agent_pb2.CapacityReport(
        sequence=sequence, cpu_milli_allocatable=1000, cpu_milli_free=1000, accelerator_pools=[pool]))


def rejected(fed, reason: str) -> float:  # type: ignore[no-untyped-def]
    return fed.metrics.registry.get_sample_value("federator_messages_rejected_total", {"reason": reason}) or 0.0


def test_the_newest_report_over_the_rate_is_applied_when_the_rate_allows() -> None:
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    rec = fed.connect(cluster="west-1", region="r", labels={})
    now = [0.0]
    rec.reports = ReportGate(TokenBucket(1.0, 2, clock=lambda: now[0]))
    results = [service.handle(rec, report(i, nodes=4)) for i in (1, 2, 3, 4)]
    assert results[:2] == [None, None] and rec.capacity is not None and rec.capacity.sequence == 2
    assert service.handle(rec, report(5, nodes=1)) is not None  # over the rate: waits
    assert rec.capacity.sequence == 2
    assert rejected(fed, "rate_limited") == 2.0  # 3 and 4 were replaced unapplied by a newer report
    assert service.handle(rec, report(4, nodes=4)).value == "stale_report"  # type: ignore[union-attr]
    service.release_held(rec)  # too early: still waits
    assert rec.capacity.sequence == 2 and rec.reports.held is not None
    now[0] += 1.0
    service.release_held(rec)
    assert rec.capacity.sequence == 5 and rec.capacity.total_accelerators == 8
    assert rec.reports.held is None


def test_a_report_applied_when_the_rate_allows_replaces_the_one_waiting() -> None:
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    rec = fed.connect(cluster="west-1", region="r", labels={})
    now = [0.0]
    rec.reports = ReportGate(TokenBucket(1.0, 1, clock=lambda: now[0]))
    service.handle(rec, report(1, nodes=4))
    service.handle(rec, report(2, nodes=3))  # waits
    now[0] += 1.0
    assert service.handle(rec, report(3, nodes=2)) is None  # applied at once; 2 is never applied after it
    service.release_held(rec)
    assert rec.capacity is not None and rec.capacity.sequence == 3


def test_over_a_stream_a_burst_ends_with_the_newest_capacity_and_the_welcome_states_the_rate() -> None:
    async def go() -> None:
        async with served(limits=Limits(reports_per_second=2.0, report_burst=5)) as s:
            async with channel(s.target) as ch:
                method = ch.stream_stream("/federator.v1.AgentService/Connect",
                                          request_serializer=agent_pb2.AgentMessage.SerializeToString,
                                          response_deserializer=agent_pb2.FederatorMessage.FromString)
                done = asyncio.Event()

                async def requests() -> AsyncIterator[agent_pb2.AgentMessage]:
                    yield hello("west-1", "west")
                    for i in range(1, 28):
                        yield report(i, nodes=4)
                    yield report(100, nodes=1)  # the capacity just fell to one node
                    await done.wait()

                call = method(requests())
                welcome = (await call.read()).welcome
                assert welcome.max_reports_per_second == 2.0 and welcome.report_burst == 5
                # no report after 100, the stream still open: the held newest is applied by the rate's timer, not
                # by a later report (a fixed 1.5 s wait here was short on a loaded machine: 28 reports to read)
                await until(lambda: (c := s.fed.clusters["west-1"].capacity) is not None and c.sequence == 100)
                cap = s.fed.clusters["west-1"].capacity
                assert cap is not None and cap.sequence == 100 and cap.total_accelerators == 8
                done.set()
                call.cancel()

    asyncio.run(go())


def test_reports_over_the_rate_are_not_decoded_until_one_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    rec = fed.connect(cluster="west-1", region="r", labels={})
    now = [0.0]
    rec.reports = ReportGate(TokenBucket(1.0, 1, clock=lambda: now[0]))
    decoded = []
    real = convert.capacity_from_pb
    monkeypatch.setattr(convert, "capacity_from_pb", lambda pb: decoded.append(pb.sequence) or real(pb))
    for i in range(1, 51):  # a flood costs a token and a sequence check each, as dropping them did
        service.handle(rec, report(i, nodes=4))
    assert decoded == [1]
    now[0] += 1.0
    service.release_held(rec)
    assert decoded == [1, 50] and rec.capacity is not None and rec.capacity.sequence == 50


def test_big_reports_over_the_byte_budget_wait_like_reports_over_the_rate() -> None:
    """50 clusters each sending 190 KB every 2 s (well within 5 reports a second) held the federator's loop."""
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    rec = fed.connect(cluster="west-1", region="r", labels={})
    now = [0.0]
    size = report(1, nodes=4).capacity.ByteSize()
    rec.reports = ReportGate(TokenBucket(100.0, 100, clock=lambda: now[0]),
                             volume=TokenBucket(size, 1, clock=lambda: now[0]))  # a report's bytes a second
    assert service.handle(rec, report(1, nodes=4)) is None  # within the budget: applied, its size now owed
    assert service.handle(rec, report(2, nodes=1)) is not None  # the count would pass; the bytes do not
    assert rec.capacity is not None and rec.capacity.sequence == 1
    assert 0.9 < rec.reports.due() <= 1.0
    now[0] += 1.0
    service.release_held(rec)
    assert rec.capacity.sequence == 2 and rec.reports.held is None


def test_a_new_stream_gets_the_byte_budget_of_its_limits() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(report_bytes_per_second=1000))
    gate = fed.connect(cluster="a", region="r", labels={}).reports
    assert gate is not None and gate.volume is not None and (gate.volume.rate, gate.volume.burst) == (1000, 2000)
    unbounded = make(MemoryStore(), Clock(), limits=Limits(report_bytes_per_second=0))
    assert unbounded.connect(cluster="a", region="r", labels={}).reports.volume is None  # type: ignore[union-attr]
