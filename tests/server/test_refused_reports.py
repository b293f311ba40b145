"""A member whose capacity reports are refused says so (server/refused_reports.py), over a real socket.

Outside QA (vendors re-test, R3): a third-party agent whose every report was refused (an empty pool vendor) stayed
`Ready` with no capacity, counted only in federator_messages_rejected_total (no cluster label), and the alert that
fired said it sent no report. Now `get clusters` says `Ready,ReportsRefused` with the refusal's words and since when,
federator_agent_reports_refused_total{cluster,reason} counts each one, and the next report taken clears it.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from agent_stream import AgentStream
from test_pool_vendor import ENFLAME, ILUVATAR, capacity
from test_services_edge import channel, hello, served

from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.cli.output import cluster_rows
from federator.model import ClusterState
from federator.security.limits import RejectReason
from federator.server import refused_reports
from federator.server.agent_service import AgentService

IDLE = agent_pb2.AcceleratorPool(accelerator_model="Enflame-S60", vendor="enflame", resource_name="enflame.com/gcu",
                                 total_accelerators=8, allocatable_accelerators=8, nodes_by_free=[0] * 8 + [1])


def refused_count(fed, cluster: str, reason: str) -> float:  # type: ignore[no-untyped-def]
    return fed.metrics.registry.get_sample_value("federator_agent_reports_refused_total",
                                                 {"cluster": cluster, "reason": reason}) or 0.0


async def status_of(ch: grpc.aio.Channel) -> jobs_pb2.ClusterStatus:
    (status,) = (await jobs_pb2_grpc.ClusterServiceStub(ch).List(jobs_pb2.ListClustersRequest(), timeout=5)).clusters
    return status


def state_column(status: jobs_pb2.ClusterStatus) -> str:
    _, (row,) = cluster_rows([{"name": status.name, "region": status.region, "state": status.state,
                               "capacity": None, "last_report_at": status.last_report_at, "placements": 0,
                               "reports_refused": status.reports_refused}], wide=False)
    return row[2]


def test_a_member_whose_every_report_is_refused_shows_it_and_is_counted_until_one_is_taken() -> None:
    async def main() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                agent = AgentStream.on(ch, hello())
                next_error = agent.next_error
                for seq in (1, 2, 3):  # the first round's enf-1: a good Enflame pool beside an Iluvatar one sans vendor
                    await agent.send(capacity(seq, ENFLAME, ILUVATAR))
                    assert (await next_error()).reason == "malformed"

                status = await status_of(ch)
                assert (status.state, state_column(status)) == ("Ready", "Ready,ReportsRefused")
                assert status.reports_refused.startswith("malformed: capacity")
                assert "capacity.accelerator_pools[1].vendor: is required" in status.reports_refused
                rec = s.fed.clusters["east-1"]
                assert not status.HasField("capacity") and rec.capacity is None  # never taken one
                assert status.reports_refused_since == rec.reports_refused_since > 0
                assert refused_count(s.fed, "east-1", "malformed") == 3.0

                await agent.send(capacity(5, IDLE))  # taken: what was said of refusals no longer holds
                while (status := await status_of(ch)).reports_refused:
                    await asyncio.sleep(0.05)
                assert status.HasField("capacity") and status.reports_refused_since == 0.0
                assert state_column(status) == "Ready"

                await agent.send(capacity(4, IDLE))  # a sequence gone back: refused, as stale_report
                assert (await next_error()).reason == "stale_report"
                status = await status_of(ch)
                assert state_column(status) == "Ready,ReportsRefused"
                assert status.reports_refused.startswith("stale_report: capacity.sequence: 4 is lower")
                assert status.HasField("capacity")  # the capacity last taken is kept
                since = status.reports_refused_since
                await agent.send(capacity(6, ENFLAME, ILUVATAR))
                assert (await next_error()).reason == "malformed"
                status = await status_of(ch)
                assert status.reports_refused.startswith("malformed: ")
                assert status.reports_refused_since == since  # since the first of the run
                assert refused_count(s.fed, "east-1", "malformed") == 4.0
                assert refused_count(s.fed, "east-1", "stale_report") == 1.0
                agent.close()

    asyncio.run(main())


def test_the_refusal_is_kept_when_the_stream_ends_and_a_new_stream_starts_afresh() -> None:
    async def main() -> None:
        async with served() as s:
            rec = s.fed.connect(cluster="east-1", region="east", labels={})
            AgentService(s.fed).handle(rec, capacity(1, ENFLAME, ILUVATAR))
            assert rec.reports_refused.startswith("malformed: ")
            s.fed.disconnect(rec)
            async with channel(s.target) as ch:
                status = await status_of(ch)
            assert (status.state, state_column(status)) == ("Partitioned", "Partitioned,ReportsRefused")
            again = s.fed.connect(cluster="east-1", region="east", labels={})
            assert (again.reports_refused, again.reports_refused_since) == ("", 0.0)

    asyncio.run(main())


def test_a_forgotten_cluster_leaves_its_refused_report_series() -> None:
    async def main() -> None:
        async with served() as s:
            rec = s.fed.connect(cluster="east-1", region="east", labels={})
            AgentService(s.fed).handle(rec, capacity(1, ENFLAME, ILUVATAR))
            assert refused_count(s.fed, "east-1", "malformed") == 1.0
            s.fed.disconnect(rec)
            rec.state = ClusterState.LOST
            assert s.fed.leases.forget("east-1", why="test")
            assert s.fed.metrics.registry.get_sample_value("federator_agent_reports_refused_total",
                                                           {"cluster": "east-1", "reason": "malformed"}) is None

    asyncio.run(main())


def test_a_refusal_that_repeats_is_logged_once_then_at_a_slow_pace_and_again_when_it_changes_or_clears(
        caplog: pytest.LogCaptureFixture) -> None:
    """An agent whose every report was refused had the federator log the same WARNING at every report interval, for
    as long as it ran. Now a refusal is logged once, again only when it changes (numbers aside) or every
    REPEAT_SECONDS while it lasts (naming how many were refused meanwhile), each other report at DEBUG; the metric
    counts each one."""
    async def main() -> None:
        async with served() as s:
            now = [1_000_000.0]
            s.fed.clock = lambda: now[0]
            service = AgentService(s.fed)
            rec = s.fed.connect(cluster="east-1", region="east", labels={})

            def said() -> list[tuple[int, str]]:
                out = [(r.levelno, r.getMessage()) for r in caplog.records
                       if r.name == "federator.server" and "capacity report" in r.getMessage()]
                caplog.clear()
                return out

            service.handle(rec, capacity(50, IDLE))  # one taken, so a sequence gone back is refused (stale_report)
            caplog.set_level(logging.DEBUG, logger="federator.server")
            for seq in range(51, 61):  # ten report intervals, the same refusal (its sequence number differs)
                now[0] += 2
                assert service.handle(rec, capacity(seq, ENFLAME, ILUVATAR)) is RejectReason.MALFORMED
            lines = said()
            assert [level for level, _ in lines] == [logging.WARNING] + [logging.DEBUG] * 9
            assert "refused (malformed: capacity" in lines[0][1] and "Logged again when the refusal changes" in \
                lines[0][1]
            assert refused_count(s.fed, "east-1", "malformed") == 10.0

            now[0] += 2
            service.handle(rec, capacity(3, IDLE))  # another reason: a sequence gone back
            (level, line), = said()
            assert level == logging.WARNING and "refused for another reason now (stale_report: " in line
            assert "before: malformed: " in line

            now[0] += refused_reports.REPEAT_SECONDS - 10
            service.handle(rec, capacity(2, IDLE))  # the same reason, its numbers aside: not yet again
            assert [level for level, _ in said()] == [logging.DEBUG]
            now[0] += 10
            service.handle(rec, capacity(1, IDLE))  # REPEAT_SECONDS since it was last said at WARNING
            (level, line), = said()
            assert level == logging.WARNING and "still refused, since" in line and "2 refused since" in line

            service.handle(rec, capacity(70, IDLE))  # taken: cleared, said at INFO
            (level, line), = said()
            assert level == logging.INFO and "taken again" in line
            service.handle(rec, capacity(71, ENFLAME, ILUVATAR))  # refused anew: said again at once
            (level, line), = said()
            assert level == logging.WARNING and "its capacity reports are refused (malformed" in line
            assert refused_count(s.fed, "east-1", "malformed") == 11.0
            assert refused_count(s.fed, "east-1", "stale_report") == 3.0

    asyncio.run(main())
