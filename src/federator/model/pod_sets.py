"""A gang of unequal pod sets: a brought workload's roles, each at its own count and per-pod ask.

Why: the scheduler's gang is N equal replicas. A brought workload (`spec.workload`: a JobSet's replicated jobs, a
PyTorchJob's Master and Workers, an LWS's leader and workers, a RayJob's head and workers) has roles that ask
different amounts: an RL JobSet of a learner 2 x 8, a rollout 4 x 1 and a reward model 1 x 1 asks 21 accelerators.
Counted as 7 equal replicas at the largest ask it was reserved, quota-checked and billed as 56, and waited
GangDoesNotFit where 21 would fit (outside QA ML platform, E2).

A job whose counted roles ask unequal amounts carries them as `JobSpec.pod_sets` (set by the federator at submit
from spec.workload, `jobfile`); the scheduler fits each set's pods on nodes that hold its own ask, all in one cluster
(scheduler/pod_set_fit.py), and reserve, quota, fair share and the bill count each set at what it asks. Every other
job has none and is N equal replicas as before. `JobSpec.replicas` stays the pods of all sets and
`JobSpec.resources` the largest ask of each resource among them (what 0.19.0 stored, and reads back).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from federator.model.cluster import AcceleratorPool
from federator.model.resources import MILLI, Resources


@dataclass(frozen=True, slots=True)
class PodSetAsk:
    """One role of a gang: `count` pods, each asking `resources` (CPU, memory, accelerators of the job's model)."""

    name: str
    count: int
    resources: Resources


def pod_sets_total(pod_sets: Iterable[PodSetAsk]) -> Resources:
    """What all the pods of the sets ask together."""
    total = Resources()
    for p in pod_sets:
        total = total + p.resources * p.count
    return total


def unequal(pod_sets: tuple[PodSetAsk, ...]) -> bool:
    """Whether the sets ask different amounts per pod (then the job carries them; alike, it is N equal replicas)."""
    return len({p.resources for p in pod_sets if p.count}) > 1


def described(pod_sets: Iterable[PodSetAsk]) -> str:
    """`learner 2 x 8, rollout 4 x 1, reward 1 x 1 accelerators (21 in all)`: each set's pods x each pod's
    accelerators (CPUs for CPU-only sets), what `federator get jobs NAME` says of a gang of pod sets."""
    sets = tuple(pod_sets)
    if any(p.resources.accelerator_milli for p in sets):
        each, unit = (lambda r: r.accelerator_milli), "accelerators"
    else:
        each, unit = (lambda r: r.cpu_milli), "CPUs"
    total = sum(p.count * each(p.resources) for p in sets)
    return ", ".join(f"{p.name} {p.count} x {_count(each(p.resources))}" for p in sets) + \
        f" {unit} ({_count(total)} in all)"


def _count(milli: int) -> str:
    return f"{milli // MILLI}" if milli % MILLI == 0 else f"{milli / MILLI:g}"


def largest_first(pod_sets: Iterable[PodSetAsk]) -> tuple[PodSetAsk, ...]:
    """The order sets are bound in: the largest per-pod ask first (as kube-scheduler binds the larger pods where
    they still fit), so a small pod never takes the node a large one needed."""
    return tuple(sorted(pod_sets, key=lambda p: (-p.resources.accelerator_milli, -p.resources.cpu_milli,
                                                 -p.resources.memory_bytes, p.name)))


def short_in(pool: AcceleratorPool, pod_sets: Iterable[PodSetAsk]) -> str:
    """"" when every set's pods fit `pool` together, each pod's accelerators on one node with its CPU and memory
    beside them, taken largest first; else the first set that does not fit, and whether larger sets were taken
    before it ("reward 1 x 1 does not fit beside the larger sets"; "learner 2 x 8 does not fit"). A set asking no
    accelerators is not the pool's to hold."""
    taken = False
    for p in largest_first(pod_sets):
        r = p.resources
        if not r.accelerator_milli or not p.count:
            continue
        try:
            pool = pool.take_milli(r.accelerator_milli, p.count, cpu_milli=r.cpu_milli, memory_bytes=r.memory_bytes)
        except ValueError:
            return f"{p.name} {p.count} x {_count(r.accelerator_milli)} does not fit" + \
                (" beside the larger sets" if taken else "")
        taken = True
    return ""


__all__ = ["PodSetAsk", "described", "largest_first", "pod_sets_total", "short_in", "unequal"]
