"""When a placement ended, from its agent's word (JobUpdate.ended_at), checked against what the federator knows.

Why a module of its own: a placement that ends while the federator is down or paused, or while its agent is cut
off, is heard of only at the agent's re-sync. Taking that moment as the end billed the outage as run time (outside
SRE QA F1: 280 accelerator-seconds of work billed as 3,668.9 after a 150 s federator pause). So the agent says when
the final phase was reached, on the federator's clock as it estimates it (agent/ended.py), and the federator
checks, never trusts: the value is clamped to [the attempt's start, the time the federator learns of the end], so
a wrong or hostile clock can shorten a bill down to the start, never lengthen it. A value outside that window is
counted (federator_job_end_times_clamped_total{cluster,reason}) and logged; 0 (not said: a 0.7.0 agent, or one
restarted since the end) is the time the federator learns of it, as before.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum

from federator.metrics import Metrics
from federator.model import Job

log = logging.getLogger("federator.server")


class Clamped(StrEnum):
    """Why a said end time was not taken as said (the metric's `reason` label)."""

    FUTURE = "future"  # after the federator learnt of the end: never billed past that
    BEFORE_START = "before_start"  # before the attempt started (or was placed): billed from the start
    INVALID = "invalid"  # not a number, or infinite


@dataclass(frozen=True, slots=True)
class EndTime:
    at: float  # unix seconds, federator clock, inside [start, learned]
    clamped: Clamped | None = None  # why `at` is not what the agent said; None: taken as said (or not said)


def window_start(job: Job) -> float:
    """The earliest a placement of `job` can have ended: its attempt's first Running report, else its placement."""
    return job.started_at or job.placed_at


def end_time(said: float, *, start: float, learned: float) -> EndTime:
    """The end of a placement: `said` (JobUpdate.ended_at; 0: not said) inside [start, learned]."""
    start = min(start, learned) if start > 0 else learned
    if said == 0:
        return EndTime(learned)
    if not math.isfinite(said):
        return EndTime(learned, Clamped.INVALID)
    if said > learned:
        return EndTime(learned, Clamped.FUTURE)
    if said < start:
        return EndTime(start, Clamped.BEFORE_START)
    return EndTime(said)


def placement_end(job: Job, said: float, *, learned: float, cluster: str, placement_id: str,
                  metrics: Metrics) -> float:
    """`end_time` for a placement of `job` reported ended by `cluster`'s agent; a clamped value counted and logged."""
    got = end_time(said, start=window_start(job), learned=learned)
    if got.clamped is not None:
        metrics.end_times_clamped.labels(cluster, got.clamped.value).inc()
        log.warning("cluster %s said placement %s ended at %r, outside [%.3f, %.3f] (%s): taken as %.3f", cluster,
                    placement_id, said, window_start(job), learned, got.clamped.value, got.at)
    return got.at


def latest_end(job: Job) -> float | None:
    """When the last of `job`'s placements ended, as known (None: none known): a job whose parts all succeeded
    finished with the last of them, whichever was reported last."""
    return max((p.ended_at for p in job.placements if p.ended_at), default=None)


__all__ = ["Clamped", "EndTime", "end_time", "latest_end", "placement_end", "window_start"]
