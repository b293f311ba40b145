"""A refused capacity report is charged to the cluster's byte budget, and its Error says so (outside fuzz QA F6: a
960 KB report refused as malformed held the corrected report for 55 s with no answer, which read as acceptance).

Decided: charged (decoding and checking it cost the CPU the budget bounds: a hostile agent's big malformed reports
must not be free); its Error names the charge and when the next report is applied. A small refused report, which
leaves the budget free, says nothing of it."""

from __future__ import annotations

import asyncio

from agent_stream import AgentStream
from test_pool_vendor import ENFLAME, ILUVATAR, capacity
from test_services_edge import channel, hello, served

from federator.security.limits import Limits

BUDGET = 16 * 1024


def test_a_big_refused_report_says_it_was_charged_and_when_the_next_is_applied() -> None:
    async def main() -> None:
        async with served(limits=Limits(report_bytes_per_second=BUDGET)) as s, channel(s.target) as ch:
            agent = AgentStream.on(ch, hello())
            small = capacity(1, ENFLAME, ILUVATAR)  # refused: a pool with no vendor
            await agent.send(small)
            first = await agent.next_error()
            assert first.reason == "malformed" and "charged" not in first.message, first.message
            big = capacity(2, ENFLAME, ILUVATAR)
            big.capacity.placement_ids.extend(f"p-{i:06d}" for i in range(20_000))  # ~200 KB: ~12 s of budget
            await agent.send(big)
            error = await agent.next_error()
            assert error.reason == "malformed", error
            assert "capacity.accelerator_pools[1].vendor" in error.message, error.message
            assert f"refused report's {big.capacity.ByteSize()} bytes are charged to the byte budget" in \
                error.message, error.message
            assert "the next report is applied in " in error.message, error.message
            agent.close()

    asyncio.run(main())
