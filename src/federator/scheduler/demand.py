"""What waiting and recent work asks for, per cycle: FGD's target workload and pinned pressure.

Two placement terms read it (plugins.py):

- *Fragmentation*: FGD's expected unusable GPU of a pool (Weng et al.,
  ATC'23) needs the distribution of requests: per GPU model, the shapes of
  the requests that accept it (milli-GPUs per GPU, GPUs, CPU, memory), each
  weighted by popularity, and the share of requests that cannot use it;
- *Scarcity*: a job open to several models should leave alone the model that
  pinned work needs. The pressure on a model is the GPU demand of work that
  accepts only some models (pinned), split over the models it accepts,
  divided by that model's free GPUs across the fleet; and for work of two
  or more GPUs per replica, the same over pinned work of that kind and the
  free GPUs of nodes with two or more free.

The sample is the pending requests of the cycle, the running allocations
(the recent arrivals that were placed), and, while those two hold fewer than
DEMAND_SAMPLE replicas, the newest arrivals that have ended (`Arrival`, kept
by the caller in a DemandMemory: the server's Cycles, the simulator). All are
handed to the cycle, so this stays a pure function of its inputs. The ended
ones are the memory: a federator that schedules a few jobs a cycle, or has
just started, sees a handful of pending requests and would steer by them
alone, while FGD's target workload is the long-run distribution (its paper
takes it from the trace). Alibaba `all` mix, 10-pod cycles, seeds 1 and 2:
0.8972 and 0.8906 of the GPUs allocated from a cold start, 0.9004 and 0.8918
with the whole trace as the sample (docs/benchmarks.md, round 10).

Pressure moves *within* a cycle: a burst of a thousand flexible jobs placed
against pressures computed at the start would drain a small model before the
cycle sees it go. `Pressure.take` counts each reservation against its
model's free capacity, and says when the Scarcity scores have moved by a
step, so the cycle re-scores its clusters then (and only then).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from federator.model import MILLI, AcceleratorPool, ClusterInfo, JobSpec, Resources
from federator.model.accelerator import accepts_model
from federator.scheduler.alternatives import first_ask
from federator.scheduler.fragmentation import GrowthCache
from federator.scheduler.framework import Allocation, PlacementRequest, serves_shape

# (milli-GPUs per GPU: 1..999 or 1000 for whole GPUs, GPUs per replica, CPU milli, memory bytes, weight)
Shape = tuple[int, int, int, int, float]


STEP = 5  # Scarcity points a model's score may drift before the cycle re-scores (see Pressure.take)


class Pressure:
    """Pinned demand over free capacity per model, kept current through a cycle's reservations.

    `score(model)` is what the Scarcity term reads, 0-100: full for a model no pinned work
    presses, half at the median pressure (of the pressed models), 0 at twice that or more. The median, not the
    most pressed model: one small model swamped by pinned work (an A800 pool of 22 nodes at
    pressure 97 while the rest sat near 0.3, Alibaba `all` mix) would otherwise squeeze every
    other model's score into the top few points and leave flexible work no guidance. Over
    bench/fgd.py's 20 runs the median scale was short of the baselines by 2.46 points in sum
    (2.28 on seeds 3-4), the most pressed model's by 3.10 (2.86).
    """

    __slots__ = ("active", "fixed_high", "free", "high", "multi", "pinned", "pressed", "pressures", "scores")

    def __init__(self, pinned: dict[str, float], free: dict[str, int], multi: Pressure | None = None,
                 fixed_high: float = 0.0) -> None:
        self.pinned = pinned
        self.free = free
        # 0: the median scale above. Else the absolute scale's pressure that scores 0, fixed for the cycle
        # (`demand_of` derives it from `SchedulerConfig.scarcity_scales`' K).
        self.fixed_high = fixed_high
        self.active = any(pinned.values())  # whether any model is pressed at all (else every model scores full)
        self.pressures = {m: self.of(m) for m in free}
        self.pressed = sorted(p for p in self.pressures.values() if 0 < p < float("inf"))  # kept sorted
        self.high = self._high()
        self.scores = self._scores()
        # The same over pinned work of two or more accelerators per replica and the free accelerators of
        # nodes with two or more free: the supply such work can use (see `score`).
        self.multi = multi

    def of(self, model: str) -> float:
        """Pinned milli-accelerators wanted per free milli-accelerator of `model` (inf when none is free)."""
        free, pinned = self.free.get(model, 0), self.pinned.get(model, 0.0)
        return pinned / free if free > 0 else (float("inf") if pinned else 0.0)

    def _high(self) -> float:
        """Twice the median pressure of the pressed models (or `fixed_high`): the pressure that scores 0."""
        if self.fixed_high > 0:
            return self.fixed_high if self.active else 0.0
        pressed = self.pressed
        return 2 * pressed[len(pressed) // 2] if pressed else 0.0

    def _scores(self) -> dict[str, int]:
        high = self.high
        if high <= 0:
            return dict.fromkeys(self.pressures, 100)
        return {m: 0 if p >= high else round(100 * (1.0 - p / high)) for m, p in self.pressures.items()}

    def score(self, model: str, multi: bool = False) -> int:
        """The Scarcity score of `model` for a replica of one accelerator or less, or (`multi`) of more.

        A model's supply for multi-accelerator work is only its nodes with several free: the Alibaba
        fleet's GPU-series-1 has 1,558 GPUs, 902 of them on one-GPU nodes, so its pressure over all
        GPUs looked low while flexible 2-8 GPU pods took the 8-GPU nodes its pinned 2-8 GPU pods
        needed (126 pinned GPUs left waiting, `pinned` mix, seed 2)."""
        if multi and self.multi is not None:
            return self.multi.score(model)
        return self.scores.get(model, 100)

    def take(self, model: str, milli: int, multi: bool = False) -> bool:
        """Count a reservation of `milli` on `model` (`multi`: more than one accelerator per replica);
        True when some model's score moved by STEP or more since the scores were last published,
        which are then published anew. A smaller reservation comes out of the multi-accelerator
        supply too for the part the model's nodes with one free cannot hold."""
        spill = milli
        if not multi and self.multi is not None:  # it takes nodes with one free first, as the member packs
            spill = max(0, milli - max(0, self.free.get(model, 0) - self.multi.free.get(model, 0)))
        moved = self._take(model, milli)
        if spill and self.multi is not None:
            moved = self.multi._take(model, spill) or moved
        return moved

    def _take(self, model: str, milli: int) -> bool:
        if model not in self.free or not milli or not self.active:
            return False
        self.free[model] -= milli
        old, new = self.pressures[model], self.of(model)
        self.pressures[model] = new
        pressed = self.pressed
        if 0 < old < float("inf"):
            del pressed[bisect.bisect_left(pressed, old)]
        if 0 < new < float("inf"):
            bisect.insort(pressed, new)
        high = self._high()
        published = self.scores
        if high == self.high:
            # Every other model scores as at the last reservation, within STEP of what is published (else it
            # would have been published then): only this model can have moved far enough.
            score = 100 if high <= 0 else 0 if new >= high else round(100 * (1.0 - new / high))
            if abs(score - published[model]) < STEP:
                return False
            self.scores = self._scores()
            return True
        self.high = high
        now = self._scores()
        for m, score in now.items():
            if abs(score - published[m]) >= STEP:
                self.scores = now
                return True
        return False


@dataclass(frozen=True, slots=True)
class Demand:
    """The cycle's view of demand, by cluster GPU model name."""

    shapes: dict[str, tuple[Shape, ...]] = field(default_factory=dict)
    cannot: dict[str, float] = field(default_factory=dict)  # share of requests that cannot use the model
    usable_shapes: dict[str, tuple[Shape, ...]] = field(default_factory=dict)  # `shapes` of work that can use it
    live: Pressure = field(default_factory=lambda: Pressure({}, {}), compare=False)  # pinned pressure, kept current
    cache: GrowthCache = field(default_factory=GrowthCache, compare=False)  # the Fragmentation score's memo

    @property
    def empty(self) -> bool:
        return not self.shapes


# The replicas a cycle's demand sample reaches with the memory: pending and running work first, then the
# newest ended arrivals until this many (none once live work alone has them). The memory is a prior that
# gives way: from a cold start it is what the cycle knows; when it tells of another mix than today's, it
# misleads only until today's work has this much. 10-pod cycles, Alibaba `all` seeds 1-2, yesterday's draw
# of the same mix in the memory: 0.9006 / 0.8918 at 1,000 (targets 0.8994 / 0.8910), 0.8991 at 300, 0.8968
# at 100. With yesterday's `fractional` instead: 0.8954 / 0.8896 at 1,000, 0.8947 / 0.8843 with no bound,
# 0.8972 / 0.8906 with no memory (docs/benchmarks.md, round 10).
DEMAND_SAMPLE = 1_000
RECENT_ARRIVALS = DEMAND_SAMPLE  # ended arrivals a memory keeps: each has a replica at least, so no cycle reads more


@dataclass(frozen=True, slots=True)
class Arrival:
    """A job that arrived recently and has ended: what it asked for per replica, the models it accepted
    (empty: any), and its replicas. The cycle's memory of demand (module docstring)."""

    resources: Resources
    accelerator_models: tuple[str, ...]
    replicas: int

    @classmethod
    def of(cls, spec: JobSpec) -> Arrival:
        """What the cycle counts of an ended job with this spec (its first alternative's ask: `first_ask`)."""
        resources, models = first_ask(spec)
        return cls(resources, models, spec.replicas)


class DemandMemory:
    """The last `limit` arrivals that ended, newest first, as `demand_of` reads them (`recent`). The
    server's Cycles and the simulator keep one each."""

    __slots__ = ("_newest_first", "_window")

    def __init__(self, limit: int = RECENT_ARRIVALS) -> None:
        if limit < 1:
            raise ValueError(f"limit: must be at least 1, got {limit}")
        self._window: deque[Arrival] = deque(maxlen=limit)
        self._newest_first: tuple[Arrival, ...] | None = ()

    def __len__(self) -> int:
        return len(self._window)

    def add(self, arrival: Arrival) -> None:
        """An arrival ended; the oldest is forgotten once `limit` are kept."""
        self._window.append(arrival)
        self._newest_first = None

    def arrivals(self) -> tuple[Arrival, ...]:
        """The arrivals kept, newest first (what a cycle reads)."""
        if self._newest_first is None:
            self._newest_first = tuple(reversed(self._window))
        return self._newest_first


def samples(requests: Sequence[PlacementRequest], running: Sequence[Allocation],
             recent: Sequence[Arrival], sample: int) -> Iterable[tuple[Resources, tuple[str, ...], int]]:
    live = 0
    for r in requests:
        live += r.replicas
        resources, models = first_ask(r.spec)
        yield resources, models, r.replicas
    for a in running:
        live += a.replicas
        yield a.resources, a.accelerator_models, a.replicas
    want = sample - live  # the memory tops the sample up, newest first, and gives way as it grows
    for e in recent:
        if want <= 0:
            break
        n = e.replicas if e.replicas < want else want
        want -= n
        yield e.resources, e.accelerator_models, n


def _uses(milli: int, gpus: int, wanted: tuple[str, ...], model: str, family: str, pool: AcceleratorPool) -> bool:
    """Whether work of a shape (`milli` per device, `gpus` devices), naming `wanted` (() = any), can use `model`,
    whose devices share as `pool`'s do: by name, and by the rule the filters hold placements to (`serves_shape`:
    whole devices of a MIG or vNPU partition pool only for work naming a partition, a fraction no bigger than the
    partition). Counted by name alone, a running 4-device job of any model made taking one of a node's four free
    5-core vNPUs look like stranding the other three, and a 250m fraction placed after it took a 10-core vNPU
    (billed double) beside four free 5-core ones; alone it took a 5-core one (vendqa61 V2, MIG alike)."""
    if wanted and not any(accepts_model(w, model, family) for w in wanted):
        return False
    return serves_shape(pool, milli if milli < MILLI else gpus * MILLI, wanted)


def demand_of(clusters: Iterable[ClusterInfo], requests: Sequence[PlacementRequest],
              running: Sequence[Allocation], recent: Sequence[Arrival] = (), sample: int = DEMAND_SAMPLE,
              scarcity_scale: float = 0.0) -> Demand:
    """The demand of `requests`, `running` and, up to `sample` replicas in all, the `recent` arrivals that
    ended (newest first), over the GPU models of `clusters`. `scarcity_scale` (`SchedulerConfig`): 0 for
    the median scale of small work's pressure, else `K` of the absolute one."""
    free: dict[str, int] = {}
    free_multi: dict[str, int] = {}  # on nodes with two or more accelerators free
    family: dict[str, str] = {}
    like: dict[str, AcceleratorPool] = {}  # a pool of each model: how the model shares its devices (`serves_shape`)
    for c in clusters:
        for p in c.capacity.accelerator_pools:
            like.setdefault(p.accelerator_model, p)
            free[p.accelerator_model] = free.get(p.accelerator_model, 0) + p.free_milli
            free_multi[p.accelerator_model] = free_multi.get(p.accelerator_model, 0) + sum(
                i * n for i, n in enumerate(p.nodes_by_free) if i >= 2) * MILLI
            if p.family:
                family[p.accelerator_model] = p.family
    if not free:
        return Demand()
    models = sorted(free)
    total = 0
    asked = 0  # milli-accelerators the sample asks for
    by_key: dict[tuple[int, int, tuple[str, ...]], list[int]] = {}
    pinned: dict[str, float] = dict.fromkeys(models, 0.0)
    pinned_multi: dict[str, float] = dict.fromkeys(models, 0.0)
    for res, wanted, n in samples(requests, running, recent, sample):
        total += n
        if not res.accelerator_milli:
            continue
        asked += n * res.accelerator_milli
        whole = res.accelerator_milli % MILLI == 0
        key = (MILLI if whole else res.accelerator_milli, res.accelerator_milli // MILLI if whole else 1, wanted)
        acc = by_key.setdefault(key, [0, 0, 0])
        acc[0] += n
        acc[1] += n * res.cpu_milli
        acc[2] += n * res.memory_bytes
    shapes: dict[str, tuple[Shape, ...]] = {}
    cannot: dict[str, float] = {}
    for model in models:
        merged: dict[tuple[int, int], list[int]] = {}
        for (milli, gpus, wanted), (n, cpu, mem) in by_key.items():
            if not _uses(milli, gpus, wanted, model, family.get(model, ""), like[model]):
                continue
            m = merged.setdefault((milli, gpus), [0, 0, 0])
            m[0] += n
            m[1] += cpu
            m[2] += mem
        shapes[model] = tuple((milli, gpus, cpu // n, mem // n, n / total)
                              for (milli, gpus), (n, cpu, mem) in sorted(merged.items()) if n)
        cannot[model] = max(0.0, 1.0 - sum(s[4] for s in shapes[model]))
    for (milli, gpus, wanted), sums in by_key.items():
        if not wanted:
            continue
        takers = [model for model in models if _uses(milli, gpus, wanted, model, family.get(model, ""), like[model])]
        if not takers or len(takers) == len(models):
            continue  # open to every model (not pinned), or to none here
        share = sums[0] * milli * gpus / len(takers)
        for model in takers:
            pinned[model] += share
            if gpus >= 2:
                pinned_multi[model] += share
    usable = {m: tuple((*s[:4], s[4] / (1.0 - cannot[m])) for s in shapes[m]) if cannot[m] < 1.0 else ()
              for m in models}
    # Multi-accelerator work competes with pinned multi-accelerator work, and with the pinned work of one
    # accelerator or less that the model's other free accelerators (on nodes with one free) cannot hold.
    for model in models:
        pinned_multi[model] += max(0.0, pinned[model] - pinned_multi[model] - (free[model] - free_multi[model]))
    # The absolute scale: a model's pinned share of what the sample asks, times the fleet's free accelerators,
    # is what pinned work will still ask of it before the fleet fills (its need); the score is 0 where the
    # need is `K` times the model's free accelerators.
    fleet_free = sum(free.values())
    high = scarcity_scale * asked / fleet_free if scarcity_scale > 0 and fleet_free > 0 and asked else 0.0
    return Demand(shapes, cannot, usable, Pressure(pinned, free, Pressure(pinned_multi, free_multi), high))
