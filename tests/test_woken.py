"""woken.py: a wait for an event that never drops a cancel of the waiting task (asyncio.wait_for on 3.11 does)."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

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


def test_no_module_of_the_federator_waits_with_asyncio_wait_for() -> None:
    """On 3.11 every `asyncio.wait_for` may drop a cancel: the reconcile loop, an agent stream's order and Hello waits,
    the Lease's renewals and an informer's first list each ran on after a cancel (woken.py). A new one would bring
    the bug back where its caller is cancelled: `asyncio.timeout`, or `woken` for an Event, keeps the cancel."""
    src = Path(__file__).resolve().parent.parent / "src/federator"
    found = []
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "wait_for" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "asyncio":
                found.append(f"{path.relative_to(src)}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module == "asyncio" and \
                    any(alias.name == "wait_for" for alias in node.names):
                found.append(f"{path.relative_to(src)}:{node.lineno} (imported)")
    assert found == []
