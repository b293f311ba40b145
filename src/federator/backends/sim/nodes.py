"""A set of simulated nodes: binds replicas to nodes and reports a resource model.

Pure and synchronous, so the asyncio agent backend and the discrete-event
simulator share it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from federator.backends.sim.fleet import NodeSpec
from federator.model import ClusterCapacity, GpuPool, Resources


@dataclass(slots=True)
class _Node:
    spec: NodeSpec
    free_gpus: int
    free_cpu_milli: int
    free_memory_bytes: int


@dataclass(slots=True)
class NodeSet:
    """Nodes of one simulated cluster and which replicas sit where."""

    nodes: list[_Node]
    bound: dict[str, list[tuple[int, Resources]]] = field(default_factory=dict)  # placement -> [(node, res)]

    @classmethod
    def of(cls, specs: Iterable[NodeSpec]) -> NodeSet:
        return cls([
            _Node(s, s.gpus - s.busy_gpus, s.cpu_milli - s.busy_cpu_milli, s.memory_bytes - s.busy_memory_bytes)
            for s in specs
        ])

    def bind(self, key: str, *, replicas: int, resources: Resources, gpu_model: str) -> str | None:
        """Bind every replica or none; best fit (fewest free GPUs that suffice). Returns why not, or None."""
        if key in self.bound:
            return None
        g = math.ceil(resources.gpu_milli / 1000)
        taken: list[tuple[int, Resources]] = []
        for _ in range(replicas):
            best: int | None = None
            for i, n in enumerate(self.nodes):
                if g and n.spec.gpu_model != gpu_model:
                    continue
                if n.free_gpus < g or n.free_cpu_milli < resources.cpu_milli:
                    continue
                if n.free_memory_bytes < resources.memory_bytes:
                    continue
                if best is None or (n.free_gpus, n.free_cpu_milli) < (
                        self.nodes[best].free_gpus, self.nodes[best].free_cpu_milli):
                    best = i
            if best is None:
                for i, r in taken:
                    self._give(i, r, g)
                return f"{replicas} x {resources} on {gpu_model or 'CPU'} nodes do not fit"
            self._take(best, resources, g)
            taken.append((best, resources))
        self.bound[key] = taken
        return None

    def unbind(self, key: str) -> None:
        for i, r in self.bound.pop(key, []):
            self._give(i, r, math.ceil(r.gpu_milli / 1000))

    def _take(self, i: int, r: Resources, g: int) -> None:
        n = self.nodes[i]
        n.free_gpus -= g
        n.free_cpu_milli -= r.cpu_milli
        n.free_memory_bytes -= r.memory_bytes

    def _give(self, i: int, r: Resources, g: int) -> None:
        n = self.nodes[i]
        n.free_gpus += g
        n.free_cpu_milli += r.cpu_milli
        n.free_memory_bytes += r.memory_bytes

    def capacity(self, *, sequence: int = 0) -> ClusterCapacity:
        pools: dict[str, tuple[list[int], list[int]]] = {}
        for n in self.nodes:
            if not n.spec.gpu_model:
                continue
            hist, totals = pools.setdefault(n.spec.gpu_model, ([0] * 9, [0]))
            if n.free_gpus >= len(hist):
                hist.extend([0] * (n.free_gpus + 1 - len(hist)))
            hist[n.free_gpus] += 1
            totals[0] += n.spec.gpus
        gpu_pools = tuple(
            GpuPool(model, tuple(hist), total[0], total[0]) for model, (hist, total) in sorted(pools.items())
        )
        return ClusterCapacity(
            gpu_pools=gpu_pools,
            cpu_milli_allocatable=sum(n.spec.cpu_milli for n in self.nodes),
            cpu_milli_free=sum(n.free_cpu_milli for n in self.nodes),
            memory_bytes_allocatable=sum(n.spec.memory_bytes for n in self.nodes),
            memory_bytes_free=sum(n.free_memory_bytes for n in self.nodes),
            node_cpu_milli_free_max=max((n.free_cpu_milli for n in self.nodes), default=0),
            node_memory_bytes_free_max=max((n.free_memory_bytes for n in self.nodes), default=0),
            sequence=sequence,
            placement_ids=frozenset(self.bound),
        )
