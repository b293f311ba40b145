"""Queue objects as scheduler queues, and the Queue status. Pure functions.

A Queue's spec is exactly a queue of the policy file (`{weight, quota: {gpus,
cpu, memory}}`) and is checked by the same validator
(`scheduler.policy.queue_from_document`), so a quota means the same whether an
operator wrote it in `--policy` or with `kubectl apply`. Queue objects define
or override the policy file's queue of the same name; the file stays the base,
so deleting a Queue falls back to the file's definition (or `defaultQueue`).

The scheduler stays pure: `with_queues` builds a new `SchedulerConfig`, and the
controller hands it to the Federator (`Federator.set_scheduler_config`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from federator.backends.kube.resources import condition, timestamp
from federator.catalog.model_names import quota_model_problem
from federator.model import MILLI, Job, JobPhase, placement_held_milli
from federator.scheduler import PolicyError, QueueConfig, SchedulerConfig
from federator.scheduler.policy import queue_from_document

Obj = dict[str, Any]

VALID = "Valid"
TERMINATING = "Terminating"
#: The finalizer that holds a deleted Queue while jobs of its queue are unfinished (queue_controller.py).
IN_USE = "federator.io/queue-in-use"


def queue_name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def queue_from_object(obj: Mapping[str, Any]) -> QueueConfig:
    """The scheduler's queue for a Queue object; PolicyError names every bad field (`spec.quota.accelerators.H1000`)."""
    spec = obj.get("spec")
    return queue_from_document({} if spec is None else spec, where="spec", source=f"Queue {queue_name(obj)}",
                               models=quota_model_problem)


def with_queues(base: SchedulerConfig, queues: Mapping[str, QueueConfig], *,
                multi_tenant: bool = False) -> SchedulerConfig:
    """The policy file's config with these queues defined or overridden; the file's other queues stay.
    `multi_tenant`: a Queue object has an access list, which makes the federation multi-tenant as one in the
    policy file does (`SchedulerConfig.max_priority`: a queue's default maxPriority is then 0)."""
    return replace(base, queues={**base.queues, **queues}, multi_tenant=base.multi_tenant or multi_tenant)


@dataclass(frozen=True, slots=True)
class QueueUsage:
    """What one queue holds now: accelerators per cluster model (placed and running jobs), and job counts."""

    accelerators_in_use: Mapping[str, float] = field(default_factory=dict)
    pending_jobs: int = 0
    running_jobs: int = 0  # placed or running


def queue_usage(jobs: Iterable[Job]) -> dict[str, QueueUsage]:
    """Per queue name, from the federator's jobs."""
    gpus: dict[str, dict[str, int]] = {}
    pending: dict[str, int] = {}
    running: dict[str, int] = {}
    for job in jobs:
        q = job.spec.queue
        if job.phase is JobPhase.PENDING:
            pending[q] = pending.get(q, 0) + 1
        elif job.phase.is_active:
            running[q] = running.get(q, 0) + 1
            for p in job.placements:
                milli = placement_held_milli(p, job.spec)  # a partition at its worth, as quotas count it
                if p.phase.is_active and milli and p.accelerator_model:
                    held = gpus.setdefault(q, {})
                    held[p.accelerator_model] = held.get(p.accelerator_model, 0) + milli
    return {q: QueueUsage({m: milli / MILLI for m, milli in sorted(gpus.get(q, {}).items())},
                          pending.get(q, 0), running.get(q, 0))
            for q in set(gpus) | set(pending) | set(running)}


def queue_status(*, generation: int, problem: str | None, usage: QueueUsage,
                 old_conditions: Iterable[Mapping[str, Any]] = (), now: float) -> Obj:
    """A Queue's status: whether the scheduler uses it (condition Valid, naming the bad fields if not), and
    what the queue holds."""
    old = {str(c.get("type")): c for c in old_conditions}
    valid = condition(VALID, problem is None, "Invalid" if problem else "Accepted",
                      problem or "the scheduler uses this queue", timestamp(now), generation, old)
    return {"observedGeneration": generation, "conditions": [valid],
            "acceleratorsInUse": {m: _number(v) for m, v in usage.accelerators_in_use.items()},
            "pendingJobs": usage.pending_jobs, "runningJobs": usage.running_jobs}


def terminating(usage: QueueUsage, *, generation: int, old_conditions: Iterable[Mapping[str, Any]] = (),
                now: float) -> Obj:
    """The condition of a deleted Queue its unfinished jobs hold (finalizer IN_USE): what holds it, and that its
    quota stays in force until they end."""
    old = {str(c.get("type")): c for c in old_conditions}
    message = (f"deleted; held by its {usage.pending_jobs} pending and {usage.running_jobs} running jobs, under "
               "this Queue's quota and weight until they end, then it goes")
    return condition(TERMINATING, True, "InUse", message, timestamp(now), generation, old)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


__all__ = ["IN_USE", "TERMINATING", "VALID", "PolicyError", "QueueUsage", "queue_from_object", "queue_name",
           "queue_status", "queue_usage", "terminating", "with_queues"]
