"""A federator whose own loop was stalled does not blame its agents: the stall is not charged to their leases.

In a red-team run a flood of reports held the loop for minutes; healthy agents' messages waited unread in the
transport, and other providers' clusters went Partitioned, then Lost, their jobs re-queued."""

from __future__ import annotations

import asyncio
import time

from server_support import LEASE, LOST_AFTER, Clock, MemoryStore, join, make

from federator.model import ClusterState
from federator.server.stalls import THRESHOLD, LoopStalls


def test_a_stall_of_the_loop_itself_does_not_make_a_healthy_agent_partitioned() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    rec = join(fed, "east")
    clock.now += 3 * LEASE  # the loop was held: the agent's reports waited in the transport
    fed.stalls.record(ended_at=clock.now, seconds=3 * LEASE - 1)
    fed.check_leases()
    assert rec.state is ClusterState.READY
    clock.now += LEASE  # silence after the stall is the agent's own
    fed.check_leases()
    assert rec.state is ClusterState.PARTITIONED


def test_a_stall_while_a_cluster_is_partitioned_does_not_make_it_lost() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    rec = join(fed, "east")
    fed.disconnect(rec)
    clock.now += LOST_AFTER + 5
    fed.stalls.record(ended_at=clock.now, seconds=LOST_AFTER)
    fed.check_leases()
    assert rec.state is ClusterState.PARTITIONED  # its reconnect may be the Hello waiting in the transport
    clock.now += LOST_AFTER
    fed.check_leases()
    assert rec.state is ClusterState.LOST


def test_the_monitor_measures_a_blocked_loop_also_while_it_is_still_blocked() -> None:
    async def main() -> None:
        stalls = LoopStalls(time.time)
        watch = asyncio.get_running_loop().create_task(stalls.watch())
        await asyncio.sleep(0.15)
        before = time.time()
        time.sleep(THRESHOLD + 0.5)  # the loop is held: nothing else runs
        assert stalls.since(before) > 0.4  # judged now, before the monitor ran again
        await asyncio.sleep(0.15)
        assert THRESHOLD + 0.3 < stalls.since(before) < THRESHOLD + 1.5
        assert stalls.since(time.time()) == 0.0
        watch.cancel()

    asyncio.run(main())
