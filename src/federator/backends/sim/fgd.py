"""Fragmentation Gradient Descent (FGD) node binding, implemented from the paper's description.

Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent" (USENIX ATC'23). The paper's measure, as this
module reads it:

- the *fragment* of a node for one task class is the free GPU capacity of the
  node that the class cannot use: all of it if a task of the class cannot run
  on the node at all (CPU, memory, GPU count, or a GPU model it does not
  accept), otherwise the free part of each GPU that is too small for it (for
  a fractional task: GPUs with less free than its request; for a whole-GPU
  task: every GPU that is partly used);
- the *expected* fragment of a node is that, averaged over the target
  workload (task classes weighted by popularity); CPU-only tasks and tasks
  that do not accept the node's model see every free GPU as fragment;
- FGD binds a task to the node (and GPUs) where the expected fragment grows
  least: the steepest descent.

Pinned GPU models fall out of the same measure: capacity of a model that
pinned work wants is *not* fragment for that work, so an unpinned task loses
the least by taking a model few classes accept.

Why this is fast enough for ten thousand nodes in Python: a node's expected
fragment depends only on its GPU model, the free milli-GPUs of its GPUs (as a
sorted tuple) and which classes its free CPU and memory could host (a bit
mask), so nodes are grouped by that signature, values are cached per
signature, and one task looks at groups, not nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from federator.model import MILLI, JobSpec, Resources


class NodeView(Protocol):
    """What FGD reads of a simulated node (backends/sim/nodes.py `_Node`)."""

    @property
    def free_cpu_milli(self) -> int: ...

    @property
    def free_memory_bytes(self) -> int: ...

    @property
    def used(self) -> list[int]: ...

    @property
    def model(self) -> str: ...


@dataclass(frozen=True, slots=True)
class TaskClass:
    """One shape of task in the target workload: per-GPU milli (1000 = whole), GPUs, CPU, memory."""

    accelerator_milli: int
    gpus: int
    cpu_milli: int
    memory_bytes: int
    weight: float


@dataclass(frozen=True, slots=True)
class Workload:
    """The target workload seen from each GPU model: the classes that accept it, and the share that cannot.

    Built from samples of (per-replica resources, accepted model names, weight);
    `accepts(wanted, model)` decides whether a sample's model list takes a model.
    """

    classes: dict[str, tuple[TaskClass, ...]] = field(default_factory=dict)
    cannot: dict[str, float] = field(default_factory=dict)  # model -> share that cannot use it

    @classmethod
    def of(cls, samples: Iterable[tuple[Resources, tuple[str, ...], float]], models: Iterable[str],
           accepts: AcceptsFn) -> Workload:
        total = 0.0
        by_key: dict[tuple[int, int, tuple[str, ...]], list[float]] = {}
        for res, wanted, w in samples:
            total += w
            if not res.accelerator_milli:
                continue
            whole = res.accelerator_milli % MILLI == 0
            key = (MILLI if whole else res.accelerator_milli, res.accelerator_milli // MILLI if whole else 1, wanted)
            acc = by_key.setdefault(key, [0.0, 0.0, 0.0])
            acc[0] += w
            acc[1] += w * res.cpu_milli
            acc[2] += w * res.memory_bytes
        classes: dict[str, tuple[TaskClass, ...]] = {}
        cannot: dict[str, float] = {}
        for model in models:
            merged: dict[tuple[int, int], list[float]] = {}
            for (milli, gpus, wanted), (w, cpu, mem) in by_key.items():
                if wanted and not any(accepts(x, model) for x in wanted):
                    continue
                m = merged.setdefault((milli, gpus), [0.0, 0.0, 0.0])
                m[0] += w
                m[1] += cpu
                m[2] += mem
            got = tuple(TaskClass(milli, gpus, int(cpu / w), int(mem / w), w / total)
                        for (milli, gpus), (w, cpu, mem) in sorted(merged.items()) if w > 0)
            classes[model] = got
            cannot[model] = max(0.0, 1.0 - sum(c.weight for c in got)) if total else 1.0
        return cls(classes, cannot)


class AcceptsFn(Protocol):
    def __call__(self, wanted: str, model: str) -> bool: ...


def class_fragment(free: Sequence[int], host_ok: bool, c: TaskClass) -> int:
    """Free milli-GPUs of a node (given per GPU) that a task of class `c` cannot use."""
    total = sum(free)
    if not host_ok:
        return total
    if c.accelerator_milli >= MILLI:
        if sum(1 for f in free if f == MILLI) < c.gpus:
            return total
        return sum(f for f in free if f < MILLI)
    if max(free, default=0) < c.accelerator_milli:
        return total
    return sum(f for f in free if f < c.accelerator_milli)


class FgdIndex:
    """Nodes grouped by FGD signature, and the FGD choice of node and GPUs for one replica."""

    def __init__(self, nodes: Sequence[NodeView], workload: Workload) -> None:
        self.nodes = nodes
        self.workload = workload
        self._sig: dict[int, tuple[tuple[int, ...], int]] = {}
        self._groups: dict[str, dict[tuple[tuple[int, ...], int], dict[int, None]]] = {}
        self._value: dict[tuple[str, tuple[int, ...], int], float] = {}
        for i, n in enumerate(nodes):
            if n.model:
                self.update(i)

    def _mask(self, model: str, cpu: int, mem: int) -> int:
        mask = 0
        for k, c in enumerate(self.workload.classes.get(model, ())):
            if cpu >= c.cpu_milli and mem >= c.memory_bytes:
                mask |= 1 << k
        return mask

    def expected(self, model: str, free: tuple[int, ...], mask: int) -> float:
        """The node's expected fragment (milli-GPUs) under the target workload."""
        key = (model, free, mask)
        got = self._value.get(key)
        if got is None:
            wl = self.workload
            got = wl.cannot.get(model, 1.0) * sum(free)
            for k, c in enumerate(wl.classes.get(model, ())):
                got += c.weight * class_fragment(free, bool(mask >> k & 1), c)
            self._value[key] = got
        return got

    def update(self, i: int) -> None:
        """Re-file node `i` after its GPUs, CPU or memory changed."""
        n = self.nodes[i]
        groups = self._groups.setdefault(n.model, {})
        old = self._sig.get(i)
        if old is not None:
            members = groups[old]
            del members[i]
            if not members:
                del groups[old]
        sig = (tuple(sorted(MILLI - u for u in n.used)), self._mask(n.model, n.free_cpu_milli, n.free_memory_bytes))
        self._sig[i] = sig
        groups.setdefault(sig, {})[i] = None

    def choose(self, r: Resources, models: Iterable[str]) -> tuple[int, tuple[int, ...]] | None:
        """The node and GPU slots where one replica of `r` grows the expected fragment least."""
        if not r.accelerator_milli:
            return self._choose_host(r, models)
        whole = r.accelerator_milli % MILLI == 0
        g = r.accelerator_milli // MILLI if whole else 1
        d = MILLI if whole else r.accelerator_milli
        best: tuple[float, int, tuple[int, ...]] | None = None
        for model in models:
            for (free, mask), members in self._groups.get(model, {}).items():
                if (sum(1 for f in free if f == MILLI) < g) if whole else (free[-1] < d if free else True):
                    continue
                i = next((i for i in members if self.nodes[i].free_cpu_milli >= r.cpu_milli
                          and self.nodes[i].free_memory_bytes >= r.memory_bytes), None)
                if i is None:
                    continue
                n = self.nodes[i]
                before = self.expected(model, free, mask)
                after_mask = self._mask(model, n.free_cpu_milli - r.cpu_milli, n.free_memory_bytes - r.memory_bytes)
                options = [MILLI] if whole else sorted({f for f in free if f >= d})
                for f in options:
                    after = list(free)
                    for _ in range(g):
                        after.remove(f)
                        after.append(f - d)
                    delta = self.expected(model, tuple(sorted(after)), after_mask) - before
                    if best is None or (delta, i) < (best[0], best[1]):
                        slots = tuple([s for s, u in enumerate(n.used) if MILLI - u == f][:g])
                        best = (delta, i, slots)
        return None if best is None else (best[1], best[2])


    def _choose_host(self, r: Resources, models: Iterable[str]) -> tuple[int, tuple[int, ...]] | None:
        """A replica without GPUs: the GPU node where taking its CPU and memory strands the fewest GPUs
        (those whose node can no longer host the work that wants them), fullest node first on a tie."""
        best: tuple[float, int, int] | None = None
        for model in models:
            for (free, mask), members in self._groups.get(model, {}).items():
                i = next((i for i in members if self.nodes[i].free_cpu_milli >= r.cpu_milli
                          and self.nodes[i].free_memory_bytes >= r.memory_bytes), None)
                if i is None:
                    continue
                n = self.nodes[i]
                after = self._mask(model, n.free_cpu_milli - r.cpu_milli, n.free_memory_bytes - r.memory_bytes)
                delta = self.expected(model, free, after) - self.expected(model, free, mask)
                key = (delta, sum(free), i)
                if best is None or key < best:
                    best = key
        return None if best is None else (best[2], ())


@dataclass(slots=True)
class DemandLearner:
    """The recent requests simulated clusters have seen: FGD's target workload when none is given.

    Rebuilt after 1, 2, 4, ... 1024 requests and then every 1024, so early
    choices use what little is known and later ones do not pay for a rebuild
    per request. `version` counts the rebuilds: one learner may serve several
    node sets (the simulator's clusters all learn from the work offered to the
    federation), and each rebuilds its index when the version moves.
    """

    seen: dict[tuple[Resources, tuple[str, ...]], float] = field(default_factory=dict)  # shapes' weights, summed
    count: int = 0
    next_rebuild: int = 1
    version: int = 0
    _built: dict[tuple[str, ...], tuple[int, Workload]] = field(default_factory=dict)

    def observe(self, r: Resources, wanted: tuple[str, ...]) -> bool:
        """Count one request; True (and a new version) when the workload should be rebuilt."""
        self.seen[(r, wanted)] = self.seen.get((r, wanted), 0.0) + 1.0
        return self._counted()

    def observe_job(self, spec: JobSpec) -> bool:
        """Count one job at its shapes (`shapes_of`, each at its share of the job); True as `observe`."""
        for r, wanted, weight in shapes_of(spec):
            self.seen[(r, wanted)] = self.seen.get((r, wanted), 0.0) + weight
        return self._counted()

    def _counted(self) -> bool:
        self.count += 1
        if self.count >= self.next_rebuild:
            self.next_rebuild = self.next_rebuild * 2 if self.next_rebuild < 1024 else self.next_rebuild + 1024
            self.version += 1
            return True
        return False

    def samples(self) -> list[tuple[Resources, tuple[str, ...], float]]:
        return [(r, wanted, n) for (r, wanted), n in self.seen.items()]

    def workload(self, models: Sequence[str], accepts: AcceptsFn) -> Workload:
        """The target workload over `models` at the current version (built once per version and model list)."""
        key = tuple(models)
        got = self._built.get(key)
        if got is None or got[0] != self.version:
            got = self._built[key] = (self.version, Workload.of(self.samples(), key, accepts))
        return got[1]


def shapes_of(spec: JobSpec) -> tuple[tuple[Resources, tuple[str, ...], float], ...]:
    """A job's per-replica shapes as FGD's target workload counts them: (resources, accepted models, weight).

    The one-count form is one shape: its count on any of its models. A job with alternatives
    (`spec.accelerators`, a trace pod that may run on several vendors: simulate/pod_asks.py) has its count in
    each alternative, not in `resources` (which holds CPU and memory alone): read as the one-count form it was
    CPU-only work, and FGD bound for a workload without it. Alternatives of one count are one shape, on any of
    their models, as the one-count form of those models would be; alternatives of different counts (8 x H100 or
    16 x Ascend910B) are one shape per count, the job's weight split evenly between them: which one it runs on
    is the scheduler's choice, not known when the work is offered. An alternative that names no model (a
    vendor's any model, a capability) makes its shape accept any model: the learner's models are names, and a
    vendor is none of them.
    """
    alternatives = spec.accelerators
    if not alternatives:
        return ((spec.resources, spec.accelerator_models, 1.0),)
    by_count: dict[int, list[str]] = {}
    open_counts: set[int] = set()
    for alt in alternatives:
        models = by_count.setdefault(alt.milli, [])
        if not alt.model:
            open_counts.add(alt.milli)
        elif alt.model not in models:
            models.append(alt.model)
    weight = 1.0 / len(by_count)
    return tuple((Resources(spec.resources.cpu_milli, spec.resources.memory_bytes, milli),
                  () if milli in open_counts else tuple(models), weight) for milli, models in by_count.items())
