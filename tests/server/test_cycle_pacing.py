"""Wakes that come close together ride one cycle (server/scheduling.py WAKE_GAP_SECONDS; outside QA, scale F2:
every Submit woke a cycle of its own, about 57 a second under a flood with agents connected, half the
federator's CPU).

The gap is set far larger than the test's waits, so what is checked is order, not speed: Submits after a cycle
began wait for the gap, however fast or slow the machine is."""

from __future__ import annotations

import asyncio

from server_support import Clock, MemoryStore, join, make, spec

from federator.model import JobPhase

A_WHILE = 60.0  # only a guard against a hang: no assertion depends on it


def _cycles_after_a_burst(gap: float) -> tuple[int, list[JobPhase]]:
    """Cycles run by the loop from its first turn until 1 s after ten Submits, each of which wakes it; and the
    jobs' phases then."""
    fed = make(MemoryStore(), Clock(), cycle_interval=A_WHILE)
    fed.cycles.wake_gap = gap
    join(fed, "a")

    async def main() -> tuple[int, list[JobPhase]]:
        runner = asyncio.get_running_loop().create_task(fed.run())
        try:
            async with asyncio.timeout(A_WHILE):
                while fed.cycles.cycles < 1:  # the first turn runs at start
                    await asyncio.sleep(0.01)
            first = fed.cycles.cycles
            jobs = []
            for i in range(10):
                jobs.append(fed.submit(spec(f"j{i}", gpus=1)))
                await asyncio.sleep(0.01)
            await asyncio.sleep(1.0)
            return fed.cycles.cycles - first, [job.phase for job in jobs]
        finally:
            runner.cancel()

    return asyncio.run(main())


def test_submits_soon_after_a_cycle_began_wait_for_the_gap_and_ride_one_cycle() -> None:
    ran, phases = _cycles_after_a_burst(gap=A_WHILE)
    assert ran == 0 and set(phases) == {JobPhase.PENDING}  # held: the gap from the first turn is not over


def test_without_a_gap_each_wake_may_run_a_cycle_of_its_own() -> None:
    ran, phases = _cycles_after_a_burst(gap=0.0)
    assert ran >= 1 and JobPhase.PENDING not in phases  # placed at once: what the gap trades for fewer cycles
