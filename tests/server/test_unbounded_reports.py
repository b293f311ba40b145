"""A report larger than any real cluster from a cluster no trust bound covers (goagentqa62 L4), over a real agent
stream: taken (it adds up, and no fixed number tells a real cluster from a lie without knowing its provider), and
said at WARNING once when it crosses the mark, naming the remedy; said again only after it came back under."""

from __future__ import annotations

import asyncio
import logging

import pytest
from agent_stream import agent_stream
from server_support import MemoryStore
from test_job_dependencies_grpc import quiet

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.server.federator import Federator
from federator.server.unbounded_reports import ABSURD_ACCELERATORS

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"


def _report(nodes: int, sequence: int) -> agent_pb2.AgentMessage:
    cap = cluster("x", "r", pool(H100, nodes=nodes)).capacity  # 8 a node
    msg = agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(cap))
    msg.capacity.sequence = sequence
    return msg


def test_an_absurd_report_without_a_trust_bound_is_taken_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> Federator:
        fed = Federator(store=MemoryStore(), cycle_interval=0.05)  # type: ignore[arg-type]
        async with agent_stream(fed) as agent:
            for seq, nodes in enumerate((8, 1_000_000, 1_000_001, 8, 1_000_000), start=1):
                await agent.send(_report(nodes, seq))
                while (cap := fed.clusters["east-1"].capacity) is None or cap.sequence != seq:
                    await asyncio.sleep(0.01)
            await quiet(fed)
            assert fed.clusters["east-1"].capacity.total_accelerator_milli == 8_000_000 * 1000  # taken as said
        return fed

    with caplog.at_level(logging.INFO, logger="federator.server"):
        asyncio.run(scenario())
    said = [r for r in caplog.records if "more than any real cluster" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.WARNING, logging.WARNING]  # the 2nd crossing, not the 3rd report
    assert said[0].getMessage().startswith(
        f"cluster east-1 reports 8000000 accelerators (whole-device equivalents), more than any real cluster "
        f"({ABSURD_ACCELERATORS:,}), and no trust bound covers it: taken as reported")
    assert "maxAccelerators in the trust file" in said[0].getMessage()
    assert [r.getMessage() for r in caplog.records if "again, or bounded" in r.getMessage()] == [
        f"cluster east-1: its report is within {ABSURD_ACCELERATORS:,} accelerators again, or bounded"]
