"""A scheduling cycle's plan and the pure computation over it: what runs on the worker thread, off the loop.

Why a module of its own: everything here may run on another thread than the event loop's, so it reads only the
frozen `CyclePlan` (no Federator, no job the loop changes); kept apart from the loop's side of the cycle
(server/scheduling.py: plan, commit, write, send), that boundary is one import line to check, and scheduling.py
was the longest module of the server. The tuner's rollouts (scheduler/tuning.py) ride the same thread: they
choose Scarcity's scale from the same snapshot, and only advise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from federator.model import MILLI, JobId
from federator.scheduler import Allocation, Arrival, CycleResult, PlacementRequest, Scheduler, Snapshot
from federator.scheduler.parked_line import ParkedQueue
from federator.scheduler.reservation import Reservation
from federator.scheduler.tuning import Tuner

log = logging.getLogger("federator.server")


@dataclass(frozen=True, slots=True)
class CyclePlan:
    """Everything one cycle reads: immutable, so the worker thread may read it while the loop goes on."""

    snapshot: Snapshot
    requests: tuple[PlacementRequest, ...]
    running: tuple[Allocation, ...]
    now: float
    scheduler: Scheduler
    generations: Mapping[JobId, int]  # each candidate's and each running job's generation, as planned
    recent: tuple[Arrival, ...] = ()  # the jobs that ended lately, by kind: the demand's memory (DemandMemory)
    tuner: Tuner | None = None  # Scarcity's scale; the worker runs its rollout when one is due (scheduler/tuning.py)
    reservations: tuple[Reservation, ...] = ()  # the last cycle's, which this one keeps where it can (reservations.py)
    resting: Mapping[JobId, float] = field(default_factory=dict)  # gangs whose reservation ran out: none until then
    maintenance: Mapping[str, float] = field(default_factory=dict)  # windows ahead (server/maintenance_windows.py)
    parked: Mapping[str, ParkedQueue] = field(default_factory=dict)  # parked jobs in line (parked_summary.py)


def compute(plan: CyclePlan) -> CycleResult:
    """The pure part: safe on any thread (one cycle at a time, which the tuner relies on)."""
    tuner = plan.tuner
    if tuner is None:
        return plan.scheduler.schedule(plan.snapshot, plan.requests, running=plan.running, now=plan.now,
                                       recent=plan.recent, reservations=plan.reservations, resting=plan.resting,
                                       maintenance=plan.maintenance, parked=plan.parked)
    rollout = _roll_out(plan, tuner) if tuner.due() else 0.0
    result = plan.scheduler.schedule(plan.snapshot, plan.requests, running=plan.running, now=plan.now,
                                     recent=plan.recent, scarcity_scale=tuner.scale, reservations=plan.reservations,
                                     resting=plan.resting, maintenance=plan.maintenance, parked=plan.parked)
    tuner.placed(sum(a.replicas for d in result.decisions for a in d.assignments))
    if rollout:  # the cycle waited for it: a phase of its own on the phase histogram
        result = replace(result, phase_seconds={**result.phase_seconds, "rollout": rollout})
    return result


def _roll_out(plan: CyclePlan, tuner: Tuner) -> float:
    """Run the rollouts that choose Scarcity's scale; the seconds they took (0 if none ran). They only
    advise: if they fail, that is logged once and the cycles go on with the scale in use, never stop."""
    was, count, started = tuner.scale, tuner.rollouts, time.perf_counter()
    try:
        tuner.tune(plan.snapshot, plan.requests, plan.running, plan.recent)
    except Exception:
        log.exception("the rollouts that choose Scarcity's scale failed: the cycles keep %s, with no more "
                      "rollouts until a restart or a policy with other scales", _scale(tuner.scale))
        tuner.stop()
        return 0.0
    if tuner.scale != was:
        log.info("Scarcity scale %s (was %s): a rollout over the fleet placed %s", _scale(tuner.scale), _scale(was),
                 ", ".join(f"{t.placed_milli / MILLI:g} accelerators at {_scale(t.scale)}" for t in tuner.last))
    return time.perf_counter() - started if tuner.rollouts > count else 0.0  # none without room or demand


def _scale(scale: float) -> str:
    return "median" if scale == 0 else f"K={scale:g}"


__all__ = ["CyclePlan", "compute"]
