"""An immutable snapshot of member clusters and a transaction over it.

Each placement attempt writes into a `Txn`; the cycle commits the attempt
only if the whole job fits, so an aborted gang leaks no capacity (as Armada's
node-db transactions do). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from federator.model import ClusterInfo, ClusterState, Resources


@dataclass(frozen=True, slots=True)
class Snapshot:
    clusters: tuple[ClusterInfo, ...]

    @classmethod
    def of(cls, clusters: Iterable[ClusterInfo]) -> Snapshot:
        return cls(tuple(sorted(clusters, key=lambda c: c.name)))

    def ready(self) -> Iterator[ClusterInfo]:
        return (c for c in self.clusters if c.state is ClusterState.READY)


def reserve(cluster: ClusterInfo, *, resources: Resources, replicas: int, gpus_per_replica: int,
            gpu_model: str) -> ClusterInfo:
    """The cluster after binding `replicas` replicas (raises ValueError if they do not fit)."""
    cap = cluster.capacity
    total = resources * replicas
    if total.cpu_milli > cap.cpu_milli_free or total.memory_bytes > cap.memory_bytes_free:
        raise ValueError(f"{replicas} replicas do not fit the free CPU or memory of {cluster.name}")
    pools = cap.gpu_pools
    if gpus_per_replica:
        pools = tuple(p.take(gpus_per_replica, replicas) if p.gpu_model == gpu_model else p for p in pools)
    cpu_free = cap.cpu_milli_free - total.cpu_milli
    mem_free = cap.memory_bytes_free - total.memory_bytes
    new_cap = replace(
        cap,
        gpu_pools=pools,
        cpu_milli_free=cpu_free,
        memory_bytes_free=mem_free,
        node_cpu_milli_free_max=min(cap.node_cpu_milli_free_max, cpu_free),
        node_memory_bytes_free_max=min(cap.node_memory_bytes_free_max, mem_free),
    )
    return replace(cluster, capacity=new_cap)


class Txn:
    """Copy-on-write view of a snapshot for one cycle, with nested attempts."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._clusters: dict[str, ClusterInfo] = {c.name: c for c in snapshot.clusters}
        self._order = [c.name for c in snapshot.clusters]
        self._attempt: dict[str, ClusterInfo] | None = None

    def clusters(self) -> list[ClusterInfo]:
        return [self.get(name) for name in self._order]

    def get(self, name: str) -> ClusterInfo:
        if self._attempt is not None and name in self._attempt:
            return self._attempt[name]
        return self._clusters[name]

    def begin(self) -> None:
        self._attempt = {}

    def put(self, cluster: ClusterInfo) -> None:
        if self._attempt is None:
            raise RuntimeError("put() outside an attempt; call begin() first")
        self._attempt[cluster.name] = cluster

    def commit(self) -> None:
        if self._attempt:
            self._clusters.update(self._attempt)
        self._attempt = None

    def abort(self) -> None:
        self._attempt = None

    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(self.clusters()))

