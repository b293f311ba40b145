"""What the federator knows of a member cluster: identity, state and capacity.

Capacity is a *resource model*, not a node list: per GPU model, how many nodes
have 0, 1, 2, ... GPUs free. That is enough to decide whether a gang of
N replicas x G GPUs fits, and keeps the scheduler's cost independent of the
number of nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache

from federator.model.resources import MILLI


class ClusterState(StrEnum):
    READY = "Ready"
    PARTITIONED = "Partitioned"  # stream dropped; jobs keep running; no new work
    LOST = "Lost"  # gone past the grace time; its jobs may be re-placed


PRICE_LABEL = "federator.io/price-per-gpu-hour"


@dataclass(frozen=True, slots=True)
class GpuPool:
    """The nodes of one cluster that carry one GPU model.

    Whole GPUs are counted per node (`nodes_by_free_gpus`). A GPU that holds
    fractional replicas (milli-GPU requests, as in GPU-sharing clusters) is
    *shared*: it is not free for whole-GPU work, and `shared_gpus` counts such
    GPUs by their free milli-GPUs, as sorted `(free_milli, count)` pairs with
    0 < free_milli < 1000. Together that is enough to decide whether N
    replicas of G GPUs, or of m milli-GPUs, fit.

    `host_room[i]` is the most free (CPU milli, memory bytes) among the nodes
    with exactly i whole GPUs free, so that "fits" here means "fits on a
    node" also for CPU and memory, not only in the cluster's sum; () when the
    agent does not report it (no host check then).
    """

    gpu_model: str
    nodes_by_free_gpus: tuple[int, ...]  # [i] = nodes with exactly i whole GPUs free
    total_gpus: int
    allocatable_gpus: int
    shared_gpus: tuple[tuple[int, int], ...] = ()  # (free milli-GPUs, how many shared GPUs)
    host_room: tuple[tuple[int, int], ...] = ()  # [i] = (most free CPU milli, memory bytes) of those nodes

    @property
    def free_gpus(self) -> int:
        """Whole GPUs free (shared GPUs excluded)."""
        return sum(i * n for i, n in enumerate(self.nodes_by_free_gpus))

    @property
    def free_milli(self) -> int:
        """Every free milli-GPU: whole free GPUs and the free part of shared ones."""
        return self.free_gpus * MILLI + sum(f * n for f, n in self.shared_gpus)

    @property
    def nodes(self) -> int:
        return sum(self.nodes_by_free_gpus)

    def nodes_with_at_least(self, gpus: int) -> int:
        return sum(self.nodes_by_free_gpus[max(gpus, 0):])

    def gang_capacity(self, gpus_per_replica: int) -> int:
        """How many replicas of `gpus_per_replica` whole GPUs fit (several may share a node)."""
        if gpus_per_replica <= 0:
            return 0
        return _gang_capacity(self.nodes_by_free_gpus, gpus_per_replica)

    def replica_capacity(self, gpu_milli: int, cpu_milli: int = 0, memory_bytes: int = 0) -> int:
        """How many replicas of `gpu_milli` milli-GPUs each fit: whole GPUs or a fraction of one.

        With `cpu_milli` / `memory_bytes` and a reported `host_room`, whole GPUs count only on
        nodes whose host has room for a replica (and as many replicas as that room holds)."""
        if gpu_milli <= 0:
            return 0
        hist = self.nodes_by_free_gpus
        if self.host_room and (cpu_milli or memory_bytes):
            hist = _hosted(hist, self.host_room, cpu_milli, memory_bytes, max(gpu_milli // MILLI, 1))
        if gpu_milli % MILLI == 0:
            return _gang_capacity(hist, gpu_milli // MILLI)
        return _fraction_capacity(hist, self.shared_gpus, gpu_milli)

    def take_milli(self, gpu_milli: int, replicas: int) -> GpuPool:
        """The pool after binding `replicas` replicas of `gpu_milli` each (whole or fractional)."""
        if gpu_milli % MILLI == 0:
            return self.take(gpu_milli // MILLI, replicas)
        return self._take_fraction(gpu_milli, replicas)

    def take(self, gpus_per_replica: int, replicas: int) -> GpuPool:
        """The pool after binding `replicas` replicas, best fit: fullest nodes first.

        Best fit keeps nodes with many free GPUs whole for large gangs, and it
        is what the agent does too, so the federator's view stays close to the
        cluster's.
        """
        counts = list(self.nodes_by_free_gpus)
        left = replicas
        g = gpus_per_replica
        for free in range(g, len(counts)):
            if not left:
                break
            per_node = free // g
            whole = min(counts[free], left // per_node)  # nodes that take per_node replicas each
            counts[free] -= whole
            counts[free - per_node * g] += whole
            left -= whole * per_node
            if left and counts[free]:  # one more node takes the rest (fewer than per_node)
                counts[free] -= 1
                counts[free - left * g] += 1
                left = 0
        if left:
            raise ValueError(f"{replicas} x {gpus_per_replica} GPUs do not fit in pool {self.gpu_model}")
        return replace(self, nodes_by_free_gpus=tuple(counts), host_room=_moved_room(self, counts))

    def _take_fraction(self, milli: int, replicas: int) -> GpuPool:
        """Best fit for fractional replicas: the fullest shared GPU that fits, then whole GPUs
        from the node with the fewest whole GPUs free (filling one GPU before the next)."""
        shared = dict(self.shared_gpus)
        left = replicas
        for free in sorted(shared):
            if free < milli:
                continue
            while left and shared.get(free, 0):
                per = min(free // milli, left)
                shared[free] -= 1
                rest = free - per * milli
                if rest:
                    shared[rest] = shared.get(rest, 0) + 1
                left -= per
            if not left:
                break
        counts = list(self.nodes_by_free_gpus)
        per_gpu = MILLI // milli
        for free in range(1, len(counts)):
            while left and counts[free]:
                gpus = min(free, -(-left // per_gpu))  # GPUs of this node the rest needs
                counts[free] -= 1
                counts[free - gpus] += 1
                full_rest = MILLI - per_gpu * milli  # left on each GPU filled to per_gpu replicas
                last = left - (gpus - 1) * per_gpu if left < gpus * per_gpu else per_gpu
                last_rest = MILLI - last * milli
                if full_rest and gpus > 1:
                    shared[full_rest] = shared.get(full_rest, 0) + gpus - 1
                if last_rest:
                    shared[last_rest] = shared.get(last_rest, 0) + 1
                left -= min(left, gpus * per_gpu)
            if not left:
                break
        if left:
            raise ValueError(f"{replicas} x {milli}m GPU do not fit in pool {self.gpu_model}")
        return replace(self, nodes_by_free_gpus=tuple(counts), host_room=_moved_room(self, counts),
                       shared_gpus=tuple(sorted((f, n) for f, n in shared.items() if n)))

    def release_milli(self, gpu_milli: int, replicas: int) -> GpuPool:
        """An estimate of the pool after `replicas` replicas of `gpu_milli` leave (for what-if
        planning such as preemption). The histogram does not say which nodes they sat on, so
        the GPUs go back to the nodes with the fewest free GPUs: the pessimistic guess for
        gangs. The agent's next report replaces the estimate with the truth. Host room is dropped
        (not known after a release), so the estimate does not check it."""
        counts = list(self.nodes_by_free_gpus)
        top = len(counts) - 1
        if gpu_milli % MILLI == 0:
            g = gpu_milli // MILLI
            for _ in range(replicas):
                for free in range(0, top - g + 1):
                    if counts[free]:
                        counts[free] -= 1
                        counts[free + g] += 1
                        break
            return replace(self, nodes_by_free_gpus=tuple(counts), host_room=())
        shared = dict(self.shared_gpus)
        for _ in range(replicas):
            base = next((f for f in sorted(shared) if shared[f] and f + gpu_milli <= MILLI), None)
            if base is None:
                continue
            shared[base] -= 1
            if base + gpu_milli < MILLI:
                shared[base + gpu_milli] = shared.get(base + gpu_milli, 0) + 1
            else:
                emptiest = next((f for f in range(top) if counts[f]), None)
                if emptiest is not None:
                    counts[emptiest] -= 1
                    counts[emptiest + 1] += 1
        return replace(self, nodes_by_free_gpus=tuple(counts), host_room=(),
                       shared_gpus=tuple(sorted((f, n) for f, n in shared.items() if n)))


def _moved_room(pool: GpuPool, counts: list[int]) -> tuple[tuple[int, int], ...]:
    """Host room after nodes moved to fewer free GPUs: a bucket that gained nodes may hold the room
    of a bucket above it (optimistic; the agent's next report has the truth)."""
    room = pool.host_room
    if not room:
        return room
    out = list(room) + [(0, 0)] * (len(counts) - len(room))
    best = (0, 0)
    for i in range(len(counts) - 1, -1, -1):
        if i < len(room):
            best = (max(best[0], room[i][0]), max(best[1], room[i][1]))
        if counts[i] > (pool.nodes_by_free_gpus[i] if i < len(pool.nodes_by_free_gpus) else 0):
            out[i] = (max(out[i][0], best[0]), max(out[i][1], best[1]))
    return tuple(out)


@lru_cache(maxsize=1 << 16)
def _hosted(hist: tuple[int, ...], room: tuple[tuple[int, int], ...], cpu: int, mem: int, g: int) -> tuple[int, ...]:
    """The histogram as far as host room allows: a bucket whose best node cannot host a replica
    counts no nodes, one that hosts fewer replicas than its GPUs allow counts fewer GPUs."""
    out = list(hist)
    for i, n in enumerate(hist):
        if not n or i >= len(room):
            continue
        c, m = room[i]
        per = min(i // g, c // cpu if cpu else i, m // mem if mem else i)
        if per < i // g:
            out[i] = 0
            out[per * g] += n
    return tuple(out)


@lru_cache(maxsize=1 << 16)
def _gang_capacity(hist: tuple[int, ...], g: int) -> int:
    return sum((i // g) * n for i, n in enumerate(hist))


@lru_cache(maxsize=1 << 16)
def _fraction_capacity(hist: tuple[int, ...], shared: tuple[tuple[int, int], ...], milli: int) -> int:
    whole = sum(i * n for i, n in enumerate(hist))
    return sum((f // milli) * n for f, n in shared) + whole * (MILLI // milli)


BUILTIN_WORKLOAD_KINDS = frozenset({"Job.batch", "Deployment.apps", "StatefulSet.apps"})
"""Workload kinds every Kubernetes cluster serves: what a cluster that advertises no kinds runs."""
WORKLOAD_KINDS = BUILTIN_WORKLOAD_KINDS | frozenset({
    "JobSet.jobset.x-k8s.io", "LeaderWorkerSet.leaderworkerset.x-k8s.io", "TrainJob.trainer.kubeflow.org",
    "PyTorchJob.kubeflow.org", "RayJob.ray.io"})
"""Every kind a FederatedJob's spec.workload may be ("Kind.group"); a simulated cluster runs them all."""


@dataclass(frozen=True, slots=True)
class ClusterCapacity:
    gpu_pools: tuple[GpuPool, ...] = ()
    cpu_milli_allocatable: int = 0
    cpu_milli_free: int = 0
    memory_bytes_allocatable: int = 0
    memory_bytes_free: int = 0
    node_cpu_milli_free_max: int = 0
    node_memory_bytes_free_max: int = 0
    sequence: int = 0
    placement_ids: frozenset[str] = frozenset()
    workload_kinds: frozenset[str] = frozenset()  # "Kind.group" it can run; empty = BUILTIN_WORKLOAD_KINDS

    def runs(self, workload_kind: str) -> bool:
        """Whether the cluster can run a workload of this kind ("" = the federator's own Job/Deployment)."""
        return not workload_kind or workload_kind in (self.workload_kinds or BUILTIN_WORKLOAD_KINDS)

    def pool(self, gpu_model: str) -> GpuPool | None:
        for pool in self.gpu_pools:
            if pool.gpu_model == gpu_model:
                return pool
        return None

    @property
    def total_gpus(self) -> int:
        return sum(p.total_gpus for p in self.gpu_pools)

    @property
    def allocatable_gpus(self) -> int:
        return sum(p.allocatable_gpus for p in self.gpu_pools)

    @property
    def free_gpus(self) -> int:
        return sum(p.free_gpus for p in self.gpu_pools)


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """One member cluster as the scheduler sees it in a snapshot."""

    name: str
    region: str
    state: ClusterState = ClusterState.READY
    labels: tuple[tuple[str, str], ...] = ()
    capacity: ClusterCapacity = field(default_factory=ClusterCapacity)

    @property
    def price_per_gpu_hour(self) -> float | None:
        raw = dict(self.labels).get(PRICE_LABEL)
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None
