"""Parked jobs: pending jobs a cycle found no room for, left out of cycles until room may exist.

Why: a cycle used to go over every pending job, so with 100,000 jobs waiting
for accelerators that no cluster has, each new submission paid for a cycle over all of
them (seconds, and growing with the backlog). A job the scheduler could not
place stays unplaceable until something that could change its answer happens:

- a placement of an accelerator model it accepts ends or is re-queued (its room,
  CPU and memory come free: the job comes back whatever its size);
- a report shows a pool of such a model changed, or more CPU or memory, or a new
  workload kind, in a cluster: the job comes back if that pool, in that cluster,
  now holds what one way of running it needs (`Need`: one replica of spread work,
  the whole gang of a training job, each with its CPU and memory, as the GangFit
  and CpuMemoryFit filters count them). A report is an upper bound of the room
  the cycle will see (reservations only take from it), so a job that does not
  fit the report does not fit the cycle's snapshot either. Without this, on a
  fleet whose reports move a pool every few seconds, an 8 x 8 gang came back
  with every one-GPU job that ended anywhere, and the most common job, one that
  names no model, came back on every report: nothing stayed parked. A cluster
  running preemptible work is the exception: a job may fit there by stopping
  it, which its room does not show, so such a cluster's reports bring back every
  job of a changed pool's model as before;
- a cluster becomes Ready, or the scheduling policy changes: every parked job
  comes back;
- a job of the same queue stops holding resources (quota and fair share).

Until then the job keeps the pending reason the cycle gave it, unless a report
changes what that reason tells of: then one job of its group comes back, and the
reason its cycle gives it is every parked job's of the group (reason_refresh.py). Parked jobs are grouped by
the models they accept and by what they need, so un-parking touches only the
groups of a model, and checks each need once for all the jobs that share it.
This module keeps ids, and the parked jobs in line that a cycle counts (parked_summary.py); the
federator decides when to call it.

A job names models as its user wrote them ("A100") and pools are named as
their nodes are ("NVIDIA-A100-SXM4-80GB", family "A100"): they are matched as
the scheduler matches them (`accepts_model`), else a pinned job would wait for
an event that moved some other part of the fleet.

A live cycle is computed off the event loop, so such an event can come while
the cycle that will find a job no room is still running on a snapshot from
before it. The job is not parked yet, so the event brings back nothing, and
parking the job on the cycle's verdict would leave it waiting for an event
that already happened: a gang kept Pending beside a member that its last
running job just left, until some other report moved that pool. So the lot
also remembers what it heard since `mark` (the cycle's plan), and `park`
leaves such a job a candidate instead. A preemptible job the cycle placed counts
as heard too: the jobs after it saw its room taken, not as room they may preempt.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from federator.model import AcceleratorPool, ClusterCapacity, JobId, JobKind, JobSpec, Reason, ReasonCode
from federator.model.accelerator import accepts_model
from federator.model.node_room import node_room_fits
from federator.model.pod_sets import largest_first
from federator.server.parked_summary import ParkedSummary

ANY_MODEL = ""  # the group of jobs that take any accelerator model (or none)
INTERNED_NEEDS = 65_536


@dataclass(frozen=True, slots=True)
class Need:
    """What one way of running a job needs of one pool and its cluster before the scheduler could place any of it:
    `replicas` replicas (a training gang's all, one of spread work) of `milli` milli-accelerators each (0: CPU
    only), each with its CPU and memory on one node, as GangFit and CpuMemoryFit count them."""

    milli: int
    replicas: int
    cpu_milli: int
    memory_bytes: int

    def met_by(self, capacity: ClusterCapacity, pool: AcceleratorPool | None) -> bool:
        """Whether this cluster (and, for accelerator work, this pool of it) has that much room as reported."""
        n = self.replicas
        if self.cpu_milli > capacity.node_cpu_milli_free_max or self.cpu_milli * n > capacity.cpu_milli_free:
            return False
        if self.memory_bytes > capacity.node_memory_bytes_free_max or \
                self.memory_bytes * n > capacity.memory_bytes_free:
            return False
        if not self.milli:  # each replica's CPU and memory on one node, where the agent says that room is
            return pool is None and (not capacity.node_room or node_room_fits(
                capacity.node_room, self.cpu_milli, self.memory_bytes, n) >= n)
        return pool is not None and pool.replica_capacity(self.milli, self.cpu_milli, self.memory_bytes) >= n


Needs = tuple[tuple[str, Need], ...]  # (model name as the job gives it, or ANY_MODEL; what that way needs)


def needs_of(spec: JobSpec) -> Needs:
    """Each way of running the job: a model it names (or ANY_MODEL), and what that way needs. A gang of unequal
    pod sets (model/pod_sets.py) needs at least room for its largest set: a pool that has it brings the job back,
    and the cycle judges the rest (7 replicas at the largest ask would wait for room it never needs). An elastic
    gang needs room for its minimum count."""
    res = spec.resources
    n = spec.replicas if spec.kind is JobKind.TRAINING else 1
    if spec.elastic:  # an elastic gang starts at its minimum (model/elastic.py): room for that brings it back
        n = spec.min_replicas
    if spec.pod_sets and spec.kind is JobKind.TRAINING:
        largest = largest_first(spec.pod_sets)[0]
        res, n = largest.resources, largest.count
    alternatives = spec.alternatives()
    if not alternatives:
        return ((ANY_MODEL, Need(0, n, res.cpu_milli, res.memory_bytes)),)
    return tuple(dict.fromkeys((a.model or ANY_MODEL, Need(a.milli, n, res.cpu_milli, res.memory_bytes))
                               for a in alternatives))


@dataclass(frozen=True, slots=True)
class _Heard:
    """An event: room in pools of `model` (None: CPU and memory only), as `capacity` and `pool` report it (None:
    room of every kind, as when a placement ends)."""

    model: str | None
    family: str = ""
    capacity: ClusterCapacity | None = None
    pool: AcceleratorPool | None = None

    def brings_back(self, name: str, need: Need) -> bool:
        """Whether this event brings back a way of running named `name` (a model, or ANY_MODEL) needing `need`."""
        if self.model is None:  # CPU and memory only: CPU-only work
            return not need.milli and name == ANY_MODEL and (
                self.capacity is None or need.met_by(self.capacity, None))
        if not (name == ANY_MODEL or accepts_model(name, self.model, self.family)):
            return False
        if self.capacity is None:  # a placement ended: every job of the model, CPU-only work too
            return True
        return bool(need.milli) and need.met_by(self.capacity, self.pool)


class ParkingLot:
    def __init__(self) -> None:
        # model name -> need -> jobs: the jobs that could run on that model once a pool holds that need
        self._by_model: dict[str, dict[Need, set[JobId]]] = defaultdict(dict)
        self._by_queue: dict[str, set[JobId]] = defaultdict(set)
        self.summary = ParkedSummary()  # the parked jobs in line, which a cycle's reasons count (owner_share.py)
        self._where: dict[JobId, tuple[Needs, str]] = {}
        # What would have un-parked jobs since `mark`: pools whose room changed, queues that released, anything.
        self._heard_events: list[_Heard] = []
        self._heard_queues: set[str] = set()
        self._heard_all = False
        self._heard_memo: dict[Needs, bool] = {}  # per needs, while nothing new is heard
        self._interned: dict[Needs, Needs] = {}  # one copy of each (a backlog has few shapes and many jobs)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._where

    def park(self, job_id: JobId, spec: JobSpec, reason: Reason, submitted_at: float = 0.0) -> None:
        """Leave a job out of cycles until room may exist for it. WAITING and refusals are not parked: they
        say nothing about capacity. Nor is a job that an event since `mark` would have brought back: the
        verdict, from a cycle planned at `mark`, may be stale for it."""
        if reason.code in (ReasonCode.WAITING, ReasonCode.REFUSED_BY_CLUSTER, ReasonCode.PREEMPTED):
            return
        needs = needs_of(spec)
        if len(self._interned) >= INTERNED_NEEDS:
            self._interned.clear()  # a bound, not a leak: shapes seen once must not stay forever
        needs = self._interned.setdefault(needs, needs)
        if self._heard(needs, spec.queue):
            return
        self.unpark(job_id)
        self._where[job_id] = (needs, spec.queue)
        for name, need in needs:
            self._by_model[name].setdefault(need, set()).add(job_id)
        self._by_queue[spec.queue].add(job_id)
        self.summary.add(job_id, spec, reason, submitted_at)  # counted in its queue's line (parked_summary.py)

    def unpark(self, job_id: JobId) -> None:
        where = self._where.pop(job_id, None)
        if where is None:
            return
        self.summary.remove(job_id)
        needs, queue = where
        for name, need in needs:
            group = self._by_model.get(name, {})
            jobs = group.get(need)
            if jobs is not None:
                jobs.discard(job_id)
                if not jobs:
                    del group[need]
        held = self._by_queue.get(queue)
        if held is not None:
            held.discard(job_id)
            if not held:  # a queue name is the user's: an empty set per name ever parked grew for ever (soak S6)
                del self._by_queue[queue]

    def mark(self) -> None:
        """Start hearing anew: a cycle has taken its snapshot, and will park the jobs it finds no room for."""
        self._heard_events.clear()
        self._heard_queues.clear()
        self._heard_all = False
        self._heard_memo.clear()

    def forget_verdicts(self) -> None:
        """The cycle planned at `mark` will not take all it reserved (a job it placed was cancelled meanwhile,
        or a cluster it chose went away): every verdict it gives assumed that room taken, so none parks."""
        self._heard_all = True

    def _heard(self, needs: Needs, queue: str) -> bool:
        """Whether an event since `mark` would have brought back a job of these needs and queue."""
        if self._heard_all or queue in self._heard_queues:
            return True
        if not self._heard_events:
            return False
        got = self._heard_memo.get(needs)
        if got is None:
            got = self._heard_memo[needs] = any(
                e.brings_back(name, need) for e in self._heard_events for name, need in needs)
        return got

    def _hear(self, event: _Heard) -> None:
        self._heard_events.append(event)
        self._heard_memo.clear()

    def placed_preemptible(self, accelerator_model: str, family: str = "") -> None:
        """The cycle planned at `mark` placed a preemptible job on this model. The jobs it placed after it saw
        its room taken, not as room they may preempt (it was not running yet): from the next cycle on they may.
        So none of this cycle's verdicts on that model parks; jobs parked before saw that room free and did not
        fit it, victims or not, and stay parked."""
        self._hear(_Heard(accelerator_model, family))

    def model_changed(self, accelerator_model: str, family: str = "") -> set[JobId]:
        """Room of any size may have come in pools of this model (of this catalog family), and CPU and memory
        with it (a placement ended): every job that accepts it, by the names they gave, and every any-model
        and CPU-only job come back. The names are few (what users write), the jobs many."""
        return self._bring_back(_Heard(accelerator_model, family))

    def pool_changed(self, pool: AcceleratorPool, capacity: ClusterCapacity) -> set[JobId]:
        """A report moved this pool of a cluster whose report is `capacity`: the jobs that accept its model, or
        any model, and whose need it now holds (CPU-only work is not helped by a pool)."""
        return self._bring_back(_Heard(pool.accelerator_model, pool.family, capacity, pool))

    def host_changed(self, capacity: ClusterCapacity) -> set[JobId]:
        """A report shows more CPU or memory (or a new workload kind) in a cluster: the CPU-only jobs it now holds.
        (Accelerator jobs come back through `pool_changed` of that cluster's pools.)"""
        return self._bring_back(_Heard(None, capacity=capacity))

    def _bring_back(self, event: _Heard) -> set[JobId]:
        self._hear(event)
        ids: set[JobId] = set()
        for name in [n for n in self._by_model if n == ANY_MODEL or (
                event.model is not None and accepts_model(n, event.model, event.family))]:
            group = self._by_model[name]
            for need in [need for need in group if event.brings_back(name, need)]:
                ids |= group.pop(need)
            if not group:
                del self._by_model[name]
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
        """Anything may fit now (a cluster became Ready, the policy changed)."""
        self._heard_all = True
        ids = set(self._where)
        self._by_model.clear()
        self._by_queue.clear()
        self._where.clear()
        self.summary.clear()
        return ids


__all__ = ["ANY_MODEL", "Need", "ParkingLot", "needs_of"]
