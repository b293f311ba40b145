"""Parked jobs: pending jobs a cycle found no room for, left out of cycles until room may exist.

Why: a cycle used to go over every pending job, so with 100,000 jobs waiting
for accelerators that no cluster has, each new submission paid for a cycle over all of
them (seconds, and growing with the backlog). A job the scheduler could not
place stays unplaceable until something that could change its answer happens:

- capacity in a pool of an accelerator model it accepts changes (a report whose pool
  differs from the last one, a placement of that model ends or is re-queued). A job
  names models as its user wrote them ("A100") and pools are named as their nodes
  are ("NVIDIA-A100-SXM4-80GB", family "A100"): they are matched as the scheduler
  matches them (`accepts_model`), else a pinned job would wait for an event that
  moved some other part of the fleet;
- CPU or memory free grows in a cluster, or it gains a workload kind: the jobs
  that may run there come back (those taking one of its models, or any model);
- a cluster becomes Ready, or the scheduling policy changes: every parked job
  comes back;
- a job of the same queue stops holding resources (quota and fair share).

Until then the job keeps the pending reason the cycle gave it (reasons are
refreshed lazily: when the job is next looked at). Parked jobs are grouped by
the models they accept, so un-parking a model touches only its groups, not
every job. This module keeps only ids; the federator decides when to call it.

A live cycle is computed off the event loop, so such an event can come while
the cycle that will find a job no room is still running on a snapshot from
before it. The job is not parked yet, so the event brings back nothing, and
parking the job on the cycle's verdict would leave it waiting for an event
that already happened: a gang kept Pending beside a member that its last
running job just left, until some other report moved that pool. So the lot
also remembers what it heard since `mark` (the cycle's plan), and `park`
leaves such a job a candidate instead.
"""

from __future__ import annotations

from collections import defaultdict

from federator.model import JobId, JobSpec, Reason, ReasonCode
from federator.model.accelerator import accepts_model

ANY_MODEL = ""  # the group of jobs that take any accelerator model (or none)


def _models(spec: JobSpec) -> tuple[str, ...]:
    alternatives = spec.alternatives()
    if not alternatives or any(not a.model for a in alternatives):
        return (ANY_MODEL,)
    return tuple(dict.fromkeys(a.model for a in alternatives))


class ParkingLot:
    def __init__(self) -> None:
        self._by_model: dict[str, set[JobId]] = defaultdict(set)
        self._by_queue: dict[str, set[JobId]] = defaultdict(set)
        self._where: dict[JobId, tuple[tuple[str, ...], str]] = {}
        # What would have un-parked jobs since `mark`: pools whose room changed (model, family), queues that
        # released, anything.
        self._heard_models: set[tuple[str, str]] = set()
        self._heard_queues: set[str] = set()
        self._heard_all = False

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._where

    def park(self, job_id: JobId, spec: JobSpec, reason: Reason) -> None:
        """Leave a job out of cycles until room may exist for it. WAITING and refusals are not parked: they
        say nothing about capacity. Nor is a job that an event since `mark` would have brought back: the
        verdict, from a cycle planned at `mark`, may be stale for it."""
        if reason.code in (ReasonCode.WAITING, ReasonCode.REFUSED_BY_CLUSTER, ReasonCode.PREEMPTED):
            return
        models = _models(spec)
        if self._heard(models, spec.queue):
            return
        self._where[job_id] = (models, spec.queue)
        for m in models:
            self._by_model[m].add(job_id)
        self._by_queue[spec.queue].add(job_id)

    def unpark(self, job_id: JobId) -> None:
        where = self._where.pop(job_id, None)
        if where is None:
            return
        models, queue = where
        for m in models:
            self._by_model[m].discard(job_id)
        self._by_queue[queue].discard(job_id)

    def mark(self) -> None:
        """Start hearing anew: a cycle has taken its snapshot, and will park the jobs it finds no room for."""
        self._heard_models.clear()
        self._heard_queues.clear()
        self._heard_all = False

    def forget_verdicts(self) -> None:
        """The cycle planned at `mark` will not take all it reserved (a job it placed was cancelled meanwhile,
        or a cluster it chose went away): every verdict it gives assumed that room taken, so none parks."""
        self._heard_all = True

    def _heard(self, models: tuple[str, ...], queue: str) -> bool:
        """Whether an event since `mark` would have brought back a job of these models and queue."""
        if self._heard_all or queue in self._heard_queues:
            return True
        heard = self._heard_models
        return bool(heard) and (models == (ANY_MODEL,) or any(
            accepts_model(m, model, family) for model, family in heard for m in models))

    def placed_preemptible(self, accelerator_model: str, family: str = "") -> None:
        """The cycle planned at `mark` placed a preemptible job on this model. The jobs it placed after it saw
        its room taken, not as room they may preempt (it was not running yet): from the next cycle on they may.
        So none of this cycle's verdicts on that model parks; jobs parked before saw that room free and did not
        fit it, victims or not, and stay parked."""
        self._heard_models.add((accelerator_model, family))

    def model_changed(self, accelerator_model: str, family: str = "") -> set[JobId]:
        """Room in pools of this model (of this catalog family) may have grown: the jobs that accept it, by the
        names they gave, and the any-model ones come back. The names are few (what users write), the jobs many."""
        self._heard_models.add((accelerator_model, family))
        ids = self._by_model.pop(ANY_MODEL, set())
        for name in [n for n in self._by_model if n != ANY_MODEL and accepts_model(n, accelerator_model, family)]:
            ids |= self._by_model.pop(name)
        for job_id in ids:
            self.unpark(job_id)
        return ids

    def queue_released(self, queue: str) -> set[JobId]:
        """A job of this queue stopped holding resources: its quota and fair share may admit others."""
        self._heard_queues.add(queue)
        ids = self._by_queue.pop(queue, set())
        for job_id in ids:
            self.unpark(job_id)
        return ids

    def clear(self) -> set[JobId]:
        """Anything may fit now (a cluster became Ready, CPU or memory grew, the policy changed)."""
        self._heard_all = True
        ids = set(self._where)
        self._by_model.clear()
        self._by_queue.clear()
        self._where.clear()
        return ids


__all__ = ["ANY_MODEL", "ParkingLot"]
