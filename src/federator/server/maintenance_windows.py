"""Maintenance windows: a cordon that holds only from a start until an end (`federator cordon CLUSTER --from T
--until T`, `CordonClusterRequest.window_from/window_until`).

Why: a cordon acts now, so an admin who announced maintenance on east-1 for Tuesday 08:00-12:00 could not keep a
12-hour job from starting there at 23:00 the night before (outside HPC QA, H12). A window is held with the cordons
(server/cordons.py; stored as they are, so it outlives a restart): before its start the scheduler's
MaintenanceWindow filter (scheduler/maintenance_window.py) places there only the jobs whose run bound ends by the
start; from the start it is a cordon in force (what runs stays); at its end `Cordons.end_windows` forgets it and the
cluster takes work again; `uncordon` cancels it. Here: the request's window checked, and each job's run bound as
the cycle's requests carry it (only while some window is ahead: else every job's bound would split the shapes the
cycle caches its verdicts by).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from federator.model import Job
from federator.scheduler.config import SchedulerConfig
from federator.scheduler.framework import PlacementRequest
from federator.server.cordons import CordonError
from federator.timestamps import time_problem, utc_seconds

MAX_AHEAD_SECONDS = 10 * 366 * 86400.0
"""How far ahead of the federator's now a window may end (about 10 years): further is a typo (a time in
milliseconds, year 59009: outside fuzz QA F1), refused naming the field before anything is stored."""

if TYPE_CHECKING:
    from federator.server.federator import Federator


def checked_window(window_from: float, window_until: float, now: float) -> tuple[float, float]:
    """A Cordon request's window as it is held (0: not given), or CordonError naming the field at fault."""
    for field, value in (("window_from", window_from), ("window_until", window_until)):
        if not math.isfinite(value) or value < 0:
            raise CordonError(field, f"must be a time in Unix seconds (0: not given), got {value!r}")
        if (problem := time_problem(value)) is not None:
            raise CordonError(field, problem)
        if value > now + MAX_AHEAD_SECONDS:
            raise CordonError(field, f"{utc_seconds(value)} is more than 10 years after now ({utc_seconds(now)}); "
                                     "send Unix seconds (not milliseconds)")
    if window_from and window_from < now:
        raise CordonError("window_from", f"{utc_seconds(window_from)} is in the past (now {utc_seconds(now)}); "
                                         "leave it out to cordon now")
    if window_until and window_until <= (window_from or now):
        after = f"window_from {utc_seconds(window_from)}" if window_from else f"now ({utc_seconds(now)})"
        raise CordonError("window_until", f"{utc_seconds(window_until)} must be after {after}")
    return window_from, window_until


def run_bound(config: SchedulerConfig, job: Job) -> int:
    """How long `job` may run once started, in seconds (0: no bound): its spec.maxRunSeconds, else its queue's,
    the shorter of the two (`SchedulerConfig.run_limit`, which server/run_limits.py enforces)."""
    return config.run_limit(job.spec.queue, job.spec.max_run_seconds)[0]


def bounded(request: PlacementRequest, seconds: int) -> PlacementRequest:
    """`request` carrying the run bound `seconds` (0 while no window is ahead), the same object if it does."""
    return request if request.run_seconds == seconds else replace(request, run_seconds=seconds)


def windowed(fed: Federator, requests: Sequence[PlacementRequest]) -> tuple[list[PlacementRequest], dict[str, float]]:
    """`requests` as a scheduler call besides the cycle's takes them (a rebalancing move, a drain's surge), with
    the windows ahead to pass it: else a running job's new part could be put on a cluster whose window it would
    cross. A running job's bound is counted whole, not what is left of it: never later than it may end."""
    ahead = fed.cordons.ahead()
    if not ahead:
        return list(requests), {}
    config = fed.scheduler.config
    return [bounded(r, run_bound(config, job)) if (job := fed.jobs.get(r.job_id)) is not None else r
            for r in requests], ahead


__all__ = ["MAX_AHEAD_SECONDS", "bounded", "checked_window", "run_bound", "windowed"]
