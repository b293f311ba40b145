"""No full garbage collections while a cycle runs.

A cycle over a big backlog keeps what it learns (pool scores, fragment states, verdicts per shape
and cluster) in caches that grow to millions of small tuples. CPython's collector walks every
tracked object on a full (generation 2) collection, and starts one each time the objects promoted
since the last grew by a quarter: 11 full collections in the 100,000-job throughput cycle, about
a fifth of its CPU time, for nothing (in a 30,000-job cycle its 8 full collections freed 0 objects:
the cycle's garbage has no reference cycles and is freed by reference counts). So a cycle raises
the third threshold for its duration, and restores it when the last running cycle ends. The young
generations are collected as before, so a reference cycle made elsewhere in the process meanwhile
(the server's event loop) is still found. Turning the collector off altogether for the cycle was
tried: it saved a few percent more, within this machine's noise, and would hold every other
thread's garbage cycles for as long as the cycle runs.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Full collections wait for this many collections of generation 1, instead of CPython's 10.
THRESHOLD_2 = 1_000_000

_lock = threading.Lock()
_running = 0
_saved: tuple[int, int, int] = (0, 0, 0)


@contextmanager
def few_full_collections() -> Iterator[None]:
    """Hold off full collections until the outermost of any concurrent holds ends."""
    global _running, _saved
    with _lock:
        if _running == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(_saved[0], _saved[1], max(_saved[2], THRESHOLD_2))
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                gc.set_threshold(*_saved)
