"""woken.py: a wait for an event that never drops a cancel of the waiting task (asyncio.wait_for on 3.11 does)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from federator.woken import woken


async def _wait_for(event: asyncio.Event, timeout: float) -> bool:
    """The wait Federator.run did before woken.py: what the first case shows dropping the cancel."""
    try:
        await asyncio.wait_for(event.wait(), timeout=timeout)
    except TimeoutError:
        return False
    return True


async def _cancelled_as_woken(wait: Callable[[asyncio.Event, float], Awaitable[bool]]) -> bool:
    """A task waiting on an event is cancelled in the very turn the event is set: whether the cancel reached it."""
    event = asyncio.Event()
    task = asyncio.get_running_loop().create_task(wait(event, 60.0))
    while not event._waiters:  # type: ignore[attr-defined]  # the task is in its wait
        await asyncio.sleep(0)
    event.set()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


def test_asyncio_wait_for_on_this_python_may_drop_the_cancel_which_is_why_woken_exists() -> None:
    """Not federator's behaviour: the reason for woken.py, shown (CPython gh-86296; 3.12 keeps the cancel)."""
    import sys
    if sys.version_info >= (3, 12):
        pytest.skip("wait_for keeps the cancel from Python 3.12 on")
    assert not asyncio.run(_cancelled_as_woken(_wait_for))


def test_a_cancel_in_the_turn_the_event_is_set_reaches_the_waiting_task() -> None:
    assert asyncio.run(_cancelled_as_woken(woken))


@pytest.mark.parametrize(("set_it", "said"), [(True, True), (False, False)], ids=["woken", "timed out"])
def test_woken_says_whether_the_event_was_set(set_it: bool, said: bool) -> None:
    async def scenario() -> bool:
        event = asyncio.Event()
        if set_it:
            event.set()
        return await woken(event, 0.01)

    assert asyncio.run(scenario()) is said
