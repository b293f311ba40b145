"""When a placement ended, from its agent's word (JobUpdate.ended_at), checked against what the federator knows.

Why a module of its own: a placement that ends while the federator is down or paused, or while its agent is cut
off, is heard of only at the agent's re-sync. Taking that moment as the end billed the outage as run time (outside
SRE QA F1: 280 accelerator-seconds of work billed as 3,668.9 after a 150 s federator pause). So the agent says when
the final phase was reached, on the federator's clock as it estimates it (agent/ended.py), and the federator
checks, never trusts: the value is clamped to [the attempt's start, the time the federator learns of the end], so
a wrong or hostile clock can shorten a bill down to the start, never lengthen it. A value outside that window is
counted (federator_job_end_times_clamped_total{cluster,reason}) and logged once while it lasts (`ClampLog`); 0
(not said: a 0.7.0 agent, or one restarted since the end) is the time the federator learns of it, as before.
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


class ClampLog:
    """Logs a cluster's clamped end times once while it lasts: a WARNING when its end times start being clamped,
    DEBUG for each one after, one INFO (with how many there were) when an end time it says is in range again.

    Why: an agent with a bad clock says a wrong end at every terminal update, and a WARNING each was one line per
    finished placement of that cluster, for as long as its clock stayed wrong, saying nothing new after the first
    (read-through of 0.8.0). The metric counts every one; the log says when it started and when it stopped, as the
    federator says of a cluster's inconsistent or over-bound reports and its unreachable member API. An end not
    said (0) is no word on the clock either way: it neither starts nor ends a spell."""

    __slots__ = ("_clamped",)

    def __init__(self) -> None:
        self._clamped: dict[str, int] = {}  # cluster -> end times clamped since its spell began (one per cluster)

    def clamped(self, cluster: str, detail: str) -> None:
        """`cluster` said an end time out of its window; `detail` says which, and what it was taken as."""
        held = self._clamped.get(cluster)
        self._clamped[cluster] = (held or 0) + 1
        if held is None:
            log.warning("cluster %s %s; its end times are clamped until one is in range again, logged at DEBUG "
                        "meanwhile (federator_job_end_times_clamped_total counts each)", cluster, detail)
        else:
            log.debug("cluster %s %s", cluster, detail)

    def in_range(self, cluster: str) -> None:
        """`cluster` said an end time inside its window: the spell of clamped ones, if any, is over."""
        held = self._clamped.pop(cluster, None)
        if held is not None:
            log.info("cluster %s: its end times are in range again (%d clamped meanwhile)", cluster, held)


def placement_end(job: Job, said: float, *, learned: float, cluster: str, placement_id: str,
                  metrics: Metrics, clamps: ClampLog) -> float:
    """`end_time` for a placement of `job` reported ended by `cluster`'s agent; a clamped value counted and logged
    (`ClampLog`: once while it lasts)."""
    start = window_start(job)
    got = end_time(said, start=start, learned=learned)
    if got.clamped is not None:
        metrics.end_times_clamped.labels(cluster, got.clamped.value).inc()
        clamps.clamped(cluster, f"said placement {placement_id} ended at {said!r}, outside [{start:.3f}, "
                                f"{learned:.3f}] ({got.clamped.value}): taken as {got.at:.3f}")
    elif said:
        clamps.in_range(cluster)
    return got.at


def latest_end(job: Job) -> float | None:
    """When the last of `job`'s placements ended, as known (None: none known): a job whose parts all succeeded
    finished with the last of them, whichever was reported last."""
    return max((p.ended_at for p in job.placements if p.ended_at), default=None)


__all__ = ["ClampLog", "Clamped", "EndTime", "end_time", "latest_end", "placement_end", "window_start"]
