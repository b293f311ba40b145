"""The federator's clock: Unix seconds that never step, set from the host's clock when the federator starts.

A lease, a Lost cluster and an order's age are durations; a job's times are shown to people. Both were read off
the host's wall clock, so a step of it moved them all: set back an hour (an operator's `date -s`, NTP fixing a
bad clock), every agent refused every Launch as an hour old, and no job started (outside QA); set forward, every
cluster's lease would run out at once and its jobs be moved. This clock takes the wall clock once, at start, and
from then on advances with the monotonic clock that keeps counting through a suspend (CLOCK_BOOTTIME). A step of
the host's clock moves nothing; `offset` says how far the two have come apart (the metric
federator_clock_offset_seconds, and its alert), and a restart takes the host's clock again. Stored times stay
comparable across the restart: both are Unix seconds.
"""

from __future__ import annotations

import time

_MONOTONIC = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class SteadyClock:
    """Call it for now (Unix seconds, steady); `offset()` is it less the host's clock now."""

    def __init__(self) -> None:
        self._wall = time.time()
        self._start = time.clock_gettime(_MONOTONIC)

    def __call__(self) -> float:
        return self._wall + (time.clock_gettime(_MONOTONIC) - self._start)

    def offset(self) -> float:
        """Seconds this clock is ahead of the host's wall clock (negative: behind): how far the host's clock
        stepped since the federator started (or drifted, slowly, as NTP slews it)."""
        return self() - time.time()


__all__ = ["SteadyClock"]
