"""Waiting for an asyncio.Event, at most a while, without losing a cancel of the waiting task.

Why a module of its own: `asyncio.wait_for(event.wait(), timeout)` on Python 3.11 (the oldest federator runs on)
returns normally when the waiting task is cancelled in the very turn the event is set: the inner wait is done, so
the cancel is dropped (CPython gh-86296; 3.12 rebuilt wait_for on asyncio.timeout). A loop that waits so runs on for
ever after its owner cancelled it once: `Federator.run` (a wake or its cycle interval) kept scheduling after the
federator's stop had cancelled it and closed its store, and the process's event loop never finished (`asyncio.run`
cancelling its tasks waits on it): a test hung until pytest-timeout now and then on a loaded machine, a stop after
an agent's update or a cycle's wake could hang the same way. `asyncio.timeout` counts the cancels it did not make
itself, so an outside cancel always propagates.
"""

from __future__ import annotations

import asyncio


async def woken(event: asyncio.Event, timeout: float) -> bool:
    """Until `event` is set (True) or `timeout` seconds pass (False). A cancel of the caller always propagates."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


__all__ = ["woken"]
