"""A capacity report is decoded and checked off the event loop, and applied on it in the order the agent sent it.

Decoding a 192 KB report held the loop ~70 ms (docs/benchmarks.md, "A provider's flood of clusters"): now it runs
in a worker thread (server/report_lane.py). Real gRPC over loopback; an `examine` that waits for the test stands
for a big report, so nothing here depends on how fast the machine is: what is checked is that the loop serves
another agent while a report is being examined, that the stream's next message waits for it, and that a bad
report is still refused naming its field.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import grpc
import pytest
from agent_stream import AgentStream
from test_services_edge import channel, run, served

from federator.api.v1 import agent_pb2
from federator.model import ClusterCapacity
from federator.server import report_lane
from federator.server.agent_service import AgentService
from federator.server.federator import ClusterRecord

A_WHILE = 20.0  # only a guard against a hang


def stream(ch: grpc.aio.Channel, cluster: str) -> AgentStream:
    """An agent stream of `cluster` on `ch`, its Hello sent first (agent_stream.py)."""
    return AgentStream.on(ch, agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster=cluster, region="east")))


def report(sequence: int, **pool: int) -> agent_pb2.AgentMessage:
    pools = [agent_pb2.AcceleratorPool(vendor="nvidia", accelerator_model="H100", nodes_by_free=[0] * 8 + [1],
                                       **pool)] if pool else []
    return agent_pb2.AgentMessage(capacity=agent_pb2.CapacityReport(
        cpu_milli_allocatable=1000, cpu_milli_free=1000, sequence=sequence, accelerator_pools=pools))


@pytest.fixture
def held_examine(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[str]]]:
    """`examine` holds each report until `release` is set, and says on which thread it ran."""
    release, threads = threading.Event(), []
    real = report_lane.examine

    def examine(r: agent_pb2.CapacityReport) -> report_lane.Examined:
        threads.append(threading.current_thread().name)
        if threading.current_thread() is not threading.main_thread():  # on the loop it would hold the loop
            release.wait(A_WHILE)
        return real(r)

    monkeypatch.setattr(report_lane, "examine", examine)
    yield release, threads
    release.set()


def recording(fed: object, applied: list[str]) -> None:
    """Note each report the federator applies (by sequence) and each agent message it handles."""
    real: Callable[..., None] = fed.report  # type: ignore[attr-defined]

    def report(rec: ClusterRecord, cap: ClusterCapacity, **kw: str) -> None:
        applied.append(f"applied {cap.sequence}")
        real(rec, cap, **kw)

    fed.report = report  # type: ignore[attr-defined]


def test_the_loop_serves_another_agent_while_a_report_is_examined(
        held_examine: tuple[threading.Event, list[str]]) -> None:
    release, threads = held_examine

    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                east = west = stream(ch, "east-1")
                try:
                    assert (await east.read()).WhichOneof("body") == "welcome"
                    await east.send(report(1))
                    while not threads and s.fed.clusters["east-1"].capacity is None:
                        await asyncio.sleep(0.01)
                    # east-1's report is being examined, and held there; before, it was applied on the loop
                    assert threads and threads[0] != threading.main_thread().name
                    west = stream(ch, "west-1")
                    assert (await west.read()).WhichOneof("body") == "welcome"
                    assert s.fed.clusters["east-1"].capacity is None  # not applied while examined
                    release.set()
                    while s.fed.clusters["east-1"].capacity is None:
                        await asyncio.sleep(0.01)
                    assert s.fed.clusters["east-1"].capacity.sequence == 1
                finally:
                    east.close()
                    west.close()

    run(go)


def test_the_agents_next_message_waits_for_its_report_in_flight(
        held_examine: tuple[threading.Event, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    release, _ = held_examine

    async def go() -> None:
        async with served() as s:
            applied: list[str] = []
            recording(s.fed, applied)
            handled = threading.Event()  # the AgentService took report 2
            real_handle = AgentService.handle

            def handle(self: AgentService, rec: ClusterRecord, msg: object) -> object:
                kind = msg.WhichOneof("body") if isinstance(msg, agent_pb2.AgentMessage) else "?"
                if kind == "capacity":
                    applied.append(f"handled {msg.capacity.sequence}")  # type: ignore[union-attr]
                    if msg.capacity.sequence == 2:  # type: ignore[union-attr]
                        handled.set()
                return real_handle(self, rec, msg)  # type: ignore[arg-type]

            monkeypatch.setattr(AgentService, "handle", handle)
            async with channel(s.target) as ch:
                east = stream(ch, "east-1")
                try:
                    assert (await east.read()).WhichOneof("body") == "welcome"
                    await east.send(report(1))
                    await east.send(report(2))
                    # report 1 is held in examine; before, report 2 was handled meanwhile. The wait is bounded
                    # (handled never comes now); either way report 1 is released after it.
                    await asyncio.to_thread(handled.wait, 3.0)
                    release.set()
                    while s.fed.clusters["east-1"].capacity is None or \
                            s.fed.clusters["east-1"].capacity.sequence != 2:
                        await asyncio.sleep(0.01)
                finally:
                    east.close()
            assert applied == ["handled 1", "applied 1", "handled 2", "applied 2"]

    run(go)


def test_a_report_examined_off_the_loop_is_still_refused_naming_its_field() -> None:
    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                east = stream(ch, "east-1")
                try:
                    assert (await east.read()).WhichOneof("body") == "welcome"
                    await east.send(report(1, total_accelerators=8, allocatable_accelerators=16))
                    error = (await east.read()).error
                    assert error.reason == "implausible_report"
                    assert error.message == ("capacity.accelerator_pools[0].allocatable_accelerators: 16 is more "
                                             "than total_accelerators 8")
                    assert s.fed.clusters["east-1"].capacity is None
                    await east.send(report(2, total_accelerators=8, allocatable_accelerators=8))
                    while s.fed.clusters["east-1"].capacity is None:
                        await asyncio.sleep(0.01)
                    assert s.fed.clusters["east-1"].capacity.sequence == 2
                    assert s.fed.metrics.registry.get_sample_value(
                        "federator_messages_rejected_total", {"reason": "implausible_report"}) == 1.0
                finally:
                    east.close()

    run(go)
