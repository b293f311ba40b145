"""Federator.run ends when it is cancelled, even in the turn something wakes it (woken.py).

Before, the loop waited with asyncio.wait_for, which on Python 3.11 drops a cancel that lands as the wake does: the
loop ran on after `federator serve`'s stop (or a test's teardown) cancelled it, and `asyncio.run`, cancelling the
tasks left, waited on it for ever (test_sealed_words_grpc's restore test hung now and then on a loaded machine)."""

from __future__ import annotations

import asyncio

from server_support import MemoryStore

from federator.server.federator import Federator


def test_a_loop_cancelled_in_the_turn_it_is_woken_ends() -> None:
    async def scenario() -> bool:
        fed = Federator(store=MemoryStore(), cycle_interval=60.0)  # type: ignore[arg-type]
        runner = asyncio.get_running_loop().create_task(fed.run())
        try:
            while not fed._wake._waiters:  # type: ignore[attr-defined]  # its first turn done, waiting for a wake
                await asyncio.sleep(0.01)
            fed.wake()  # an agent's update, a submit: what the stream or the API does just before a stop
            runner.cancel()
            done, _ = await asyncio.wait({runner}, timeout=60.0)  # only a guard against a hang
            return runner in done and runner.cancelled()
        finally:
            runner.cancel()
            fed.cycles.close()

    assert asyncio.run(scenario())
