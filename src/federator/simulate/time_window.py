"""`federator sim --from/--until`: replay one stretch of a long workload (outside planners' QA P13).

A national month replays in tens of minutes; a planner asking about one week or one peak day should not pay
for the rest. The window keeps the jobs that *arrive* in [from, until) (simulated seconds, the workload's own
clock) and lets each run to its end, so a job is never cut short: what the window replays is the same jobs
the full run would offer in that stretch, onto an empty fleet (work that arrived before it is not running).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from federator.simulate.traces import SimJob


def window_problem(start: float | None, until: float | None) -> str | None:
    """Why the flags cannot name a window, in a line naming the flag; None when they can."""
    for flag, value in (("--from", start), ("--until", until)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            return f"{flag}: must be a non-negative number of simulated seconds, got {value:g}"
    if start is not None and until is not None and until <= start:
        return f"--until: must be after --from ({start:g}), got {until:g}"
    return None


def in_window(jobs: Sequence[SimJob], start: float | None, until: float | None) -> list[SimJob]:
    """The jobs arriving at or after `start` and before `until` (either None: unbounded), in their order.
    A window no job arrives in is refused, naming where the workload's arrivals lie (a ValueError)."""
    lo = -math.inf if start is None else start
    hi = math.inf if until is None else until
    kept = [j for j in jobs if lo <= j.arrival < hi]
    if not kept and jobs:
        first, last = min(j.arrival for j in jobs), max(j.arrival for j in jobs)
        raise ValueError(f"--from/--until: no job arrives in [{_s(start)}, {_s(until)}) simulated seconds; "
                         f"the workload's arrivals run from {first:g} to {last:g}")
    return kept


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
