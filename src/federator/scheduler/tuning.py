"""Scarcity's scale, chosen per fleet by rollout: the federator tries its candidates on its own fleet.

How hard `Scarcity` should press small work off the models pinned work needs has opposite answers on
the two fleets of docs/benchmarks.md (round 20). Where the models pinned small work needs sit on
one-accelerator nodes (the synthetic fleet's A10 and L4), a soft absolute scale lets `Fragmentation`
keep small work off the big nodes that flexible gangs wait for, and pinned one-accelerator pods pay
less than the gangs gain. Where such a model also has big nodes that its pinned gangs press (the
Alibaba fleet's GPU-series-1), the median scale is what keeps small work on its one-accelerator
nodes. The federator cannot tell its fleet from the outside, and no fixed scale is right for both.

It can try. A rollout offers the fleet's remaining room a copy of the demand sample (pending work,
running work and the memory of ended arrivals, as `demand.demand_of` reads them), shuffled and
repeated until it asks for as many accelerators as are free, once per candidate scale, through the
same cycle at pool level, and keeps the scale that places the most accelerators. A tie keeps the
scale in use, so a fleet that no candidate packs better does not flap.

A rollout costs about a cycle over the fleet's remaining room per candidate, so the caller runs it
rarely (`Tuner.due`): at the first cycle that has demand, and then once `BUDGET` times the replicas
it offered (and at least `RETUNE_AFTER`) have been placed. It is pure and deterministic (a fixed
seed shuffles), so the simulator's runs repeat.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from federator.model import JobId, JobKind, JobSpec
from federator.scheduler.config import QueueConfig, SchedulerConfig
from federator.scheduler.cycle import Scheduler
from federator.scheduler.demand import DEMAND_SAMPLE, Arrival, samples
from federator.scheduler.framework import Allocation, PlacementRequest
from federator.scheduler.snapshot import Snapshot

RETUNE_AFTER = DEMAND_SAMPLE  # replicas placed between rollouts at least: by then the demand sample is new
# Replicas placed between rollouts per replica they offered. A rollout's placement costs half to all of a
# cycle's (bench/throughput.py --rollout), so rollouts take at most about 5% of the scheduling
# work (measured 3-6%, docs/benchmarks.md round 23); what they choose is the fleet's and its work's,
# which change slowly.
BUDGET = 16
ROLLOUT_ROOM = 12_000_000  # milli-accelerators a rollout fills at most: a larger fleet is sampled by cluster
ROLLOUT_LIMIT = 20_000  # replicas a rollout offers at most


@dataclass(frozen=True, slots=True)
class Trial:
    """One candidate's rollout: the scale and the milli-accelerators it placed."""

    scale: float
    placed_milli: int
    offered: int  # replicas offered


def rollout_requests(requests: Sequence[PlacementRequest], running: Sequence[Allocation],
                     recent: Sequence[Arrival], free_milli: int, *, limit: int = ROLLOUT_LIMIT,
                     seed: int = 0) -> list[PlacementRequest]:
    """The demand sample, shuffled and repeated until it asks for `free_milli` accelerators (or `limit`
    replicas). Pending requests keep their specs; running and ended work is offered as gangs of the
    replicas it had, each on the models it accepted. A backlog of more than `limit` requests is offered
    every k-th of them."""
    if free_milli <= 0:
        return []
    step = -(-len(requests) // limit) if len(requests) > limit else 1  # a backlog of a national size: a sample
    pool: list[JobSpec] = [replace(r.spec, replicas=r.replicas, preemptible=False) for r in requests[::step]]
    taken = sum(s.replicas for s in pool)
    for res, models, n in samples((), running, recent, DEMAND_SAMPLE - min(taken, DEMAND_SAMPLE)):
        pool.append(JobSpec(name="rollout", kind=JobKind.TRAINING, replicas=n, resources=res,
                            accelerator_models=models))
    if not any(s.resources.accelerator_milli for s in pool):
        return []
    rng = random.Random(seed)
    out: list[PlacementRequest] = []
    asked = replicas = 0
    while asked < free_milli and replicas < limit:
        order = pool[:]
        rng.shuffle(order)
        for spec in order:
            if asked >= free_milli or replicas >= limit:
                break
            out.append(PlacementRequest(JobId(f"rollout-{len(out)}"), spec, spec.replicas, float(len(out))))
            asked += spec.replicas * spec.resources.accelerator_milli
            replicas += spec.replicas
    return out


def trials(config: SchedulerConfig, snapshot: Snapshot, requests: Sequence[PlacementRequest],
           running: Sequence[Allocation] = (), recent: Sequence[Arrival] = ()) -> tuple[Trial, ...]:
    """A rollout per candidate scale of `config` (an empty tuple when there is no choice or no demand)."""
    if len(config.scarcity_scales) < 2:
        return ()
    snapshot = sample_fleet(snapshot)
    free = sum(p.free_milli for c in snapshot.ready() for p in c.capacity.accelerator_pools)
    offered = rollout_requests(requests, running, recent, free)  # none without room or accelerator work
    if not offered:
        return ()
    # The fleet's packing only: no queue's quota or fair share, and nothing preempted.
    plain = replace(config, queues={}, default_queue=QueueConfig(), preemption=False,
                    max_placements_per_cycle=len(offered))
    scheduler = Scheduler(plain)
    replicas = sum(r.replicas for r in offered)
    out = []
    for scale in config.scarcity_scales:
        result = scheduler.schedule(snapshot, offered, running=running, recent=recent, scarcity_scale=scale)
        placed = sum(a.accelerator_milli * a.replicas for d in result.decisions for a in d.assignments)
        out.append(Trial(scale, placed, replicas))
    return tuple(out)


def sample_fleet(snapshot: Snapshot, room: int = ROLLOUT_ROOM) -> Snapshot:
    """Every k-th ready cluster (by name), k the least that brings the free accelerators under `room`: a
    national fleet's rollout fills a sample of it, whose models and pools are the fleet's in proportion."""
    ready = sorted(snapshot.ready(), key=lambda c: c.name)
    free = sum(p.free_milli for c in ready for p in c.capacity.accelerator_pools)
    if free <= room or len(ready) < 2:
        return Snapshot.of(ready)
    k = -(-free // room)
    return Snapshot.of(ready[::k])


class Tuner:
    """Which of the configured scales the cycles use, and when to look again (module docstring). The
    server's Cycles and the simulator keep one each."""

    __slots__ = ("_after", "_placed", "_stopped", "config", "last", "rollouts", "scale")

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.scale = config.scarcity_scales[0]
        self.last: tuple[Trial, ...] = ()  # the last rollout's trials, for logs and metrics
        self.rollouts = 0
        self._placed: int | None = None  # replicas placed since the last rollout (None: none yet)
        self._after = RETUNE_AFTER  # replicas to place before the next rollout
        self._stopped = False

    def due(self) -> bool:
        """Whether a rollout is worth its cost now."""
        if self._stopped or len(self.config.scarcity_scales) < 2:
            return False
        return self._placed is None or self._placed >= self._after

    def stop(self) -> None:
        """No more rollouts: the scale in use stays (the server's answer to a rollout that failed)."""
        self._stopped = True

    def placed(self, replicas: int) -> None:
        """Count replicas the cycles placed."""
        if self._placed is not None:
            self._placed += replicas

    def tune(self, snapshot: Snapshot, requests: Sequence[PlacementRequest], running: Sequence[Allocation] = (),
             recent: Sequence[Arrival] = ()) -> float:
        """Run the rollouts, keep the best scale (a tie keeps the one in use) and return it."""
        return self.take(trials(self.config, snapshot, requests, running, recent))

    def take(self, got: tuple[Trial, ...]) -> float:
        """Keep the best of a rollout's trials (a tie keeps the scale in use) and return the scale."""
        if not got:
            return self.scale  # no demand yet: look again at the next cycle
        self.rollouts += 1
        self._placed = 0
        self._after = max(RETUNE_AFTER, BUDGET * sum(t.offered for t in got))
        self.last = got
        best = max(t.placed_milli for t in got)
        if next(t.placed_milli for t in got if t.scale == self.scale) < best:
            self.scale = next(t.scale for t in got if t.placed_milli == best)
        return self.scale
