"""The immutable per-cycle view of the member clusters, and transactions over it.

A cycle never mutates a snapshot: each placement attempt writes into a
`Txn` and commits only if the whole job fits, so an aborted attempt leaks
nothing. `reserve` and `release` are the only arithmetic on capacity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from federator.model import AcceleratorPool, ClusterInfo, ClusterState, Resources
from federator.model.node_room import node_room_give, node_room_take


@dataclass(frozen=True, slots=True)
class Snapshot:
    clusters: tuple[ClusterInfo, ...]

    @classmethod
    def of(cls, clusters: Iterable[ClusterInfo]) -> Snapshot:
        return cls(tuple(sorted(clusters, key=lambda c: c.name)))

    def ready(self) -> Iterator[ClusterInfo]:
        return (c for c in self.clusters if c.state is ClusterState.READY)


def _first_pool(pools: tuple[AcceleratorPool, ...], accelerator_model: str) -> int | None:
    """The index of the model's first pool: the one the scheduler read the model's room from.

    Pools are keyed by vendor and model (`ClusterCapacity.pool`), so two vendors' pools may share a model name; the
    scheduler's fit checks read the first (`ClusterCapacity.pool(model)`), and a booking must take from that one
    only: taking from every pool of the name spent the other vendor's room too, and raised where it had none.
    """
    return next((i for i, p in enumerate(pools) if p.accelerator_model == accelerator_model), None)


def reserve(cluster: ClusterInfo, *, resources: Resources, replicas: int, accelerator_model: str,
            accelerators_per_replica: int | None = None, bucket: int = 0) -> ClusterInfo:
    """The cluster after binding `replicas` replicas (raises ValueError if they do not fit).

    accelerators come from `resources.accelerator_milli` (whole or fractional); `accelerators_per_replica`
    is accepted for older callers and ignored. `bucket` names where one fractional replica goes instead
    of best fit (`AcceleratorPool.after_take`; the cycle passes `pools.reservation_bucket`).
    """
    del accelerators_per_replica
    cap = cluster.capacity
    cpu = resources.cpu_milli * replicas
    mem = resources.memory_bytes * replicas
    if cpu > cap.cpu_milli_free or mem > cap.memory_bytes_free:
        raise ValueError(f"{replicas} replicas do not fit the free CPU or memory of {cluster.name}")
    pools = cap.accelerator_pools
    if resources.accelerator_milli and replicas:
        i = _first_pool(pools, accelerator_model)
        if i is None:
            raise ValueError(f"{cluster.name} has no {accelerator_model} pool")
        taken = pools[i].take_milli(resources.accelerator_milli, replicas, cpu_milli=resources.cpu_milli,
                                    memory_bytes=resources.memory_bytes, bucket=bucket)
        pools = (*pools[:i], taken, *pools[i + 1:])
    cpu_free = cap.cpu_milli_free - cpu
    mem_free = cap.memory_bytes_free - mem
    # Each replica's CPU and memory on one node (model/node_room.py): CPU-only work where a node holds it (else
    # it does not fit), an accelerator replica's beside its accelerators, on a node of its pool as the pool's
    # room classes tell them (best fit, as the pool's take), else the roomiest
    among: frozenset[tuple[int, int]] = frozenset()
    if resources.accelerator_milli and cap.node_room:
        pool = cap.pool(accelerator_model)
        if pool is not None:
            among = frozenset((c, m) for _, c, m, _ in pool.room_classes)
    room = node_room_take(cap.node_room, resources.cpu_milli, resources.memory_bytes, replicas,
                          roomiest=bool(resources.accelerator_milli),
                          strict=not resources.accelerator_milli, among=among)
    new_cap = cap.after_bind(pools, cpu_free, mem_free, min(cap.node_cpu_milli_free_max, cpu_free),
                             min(cap.node_memory_bytes_free_max, mem_free), room)
    return cluster.with_capacity(new_cap)


def release(cluster: ClusterInfo, *, resources: Resources, replicas: int, accelerator_model: str) -> ClusterInfo:
    """An estimate of the cluster after `replicas` replicas leave (what-if planning, e.g. preemption)."""
    cap = cluster.capacity
    pools = cap.accelerator_pools
    if resources.accelerator_milli and replicas:
        i = _first_pool(pools, accelerator_model)
        if i is not None:
            pools = (*pools[:i], pools[i].release_milli(resources.accelerator_milli, replicas), *pools[i + 1:])
    cpu_free = min(cap.cpu_milli_allocatable, cap.cpu_milli_free + resources.cpu_milli * replicas)
    mem_free = min(cap.memory_bytes_allocatable, cap.memory_bytes_free + resources.memory_bytes * replicas)
    new_cap = cap.after_bind(pools, cpu_free, mem_free,
                             max(cap.node_cpu_milli_free_max, min(resources.cpu_milli, cpu_free)),
                             max(cap.node_memory_bytes_free_max, min(resources.memory_bytes, mem_free)),
                             node_room_give(cap.node_room, resources.cpu_milli, resources.memory_bytes, replicas))
    return cluster.with_capacity(new_cap)


class Txn:
    """Copy-on-write view of a snapshot for one cycle, with one attempt open at a time.

    `on_change` hears the name of every cluster whose view changes (a put, or
    an abort that undoes puts), so per-cycle caches can refresh just those.
    """

    def __init__(self, snapshot: Snapshot, on_change: Callable[[str], None] | None = None) -> None:
        self._clusters: dict[str, ClusterInfo] = {c.name: c for c in snapshot.clusters}
        self.names: tuple[str, ...] = tuple(c.name for c in snapshot.clusters)
        self._attempt: dict[str, ClusterInfo] | None = None
        self._on_change = on_change or (lambda _name: None)

    def clusters(self) -> list[ClusterInfo]:
        return [self.get(name) for name in self.names]

    def get(self, name: str) -> ClusterInfo:
        if self._attempt is not None:
            got = self._attempt.get(name)
            if got is not None:
                return got
        return self._clusters[name]

    def begin(self) -> None:
        self._attempt = {}

    def put(self, cluster: ClusterInfo) -> None:
        if self._attempt is None:
            raise RuntimeError("put() outside an attempt; call begin() first")
        self._attempt[cluster.name] = cluster
        self._on_change(cluster.name)

    def commit(self) -> None:
        if self._attempt:
            self._clusters.update(self._attempt)
        self._attempt = None

    def abort(self) -> None:
        undone = self._attempt or {}
        self._attempt = None
        for name in undone:
            self._on_change(name)

    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(self._clusters[n] for n in self.names))
