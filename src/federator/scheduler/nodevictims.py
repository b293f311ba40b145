"""Victims per node: the cheapest preemptible work on one node that frees what one replica needs.

Why (tenant QA F9): a replica runs on one node, so stopping victims helps only where they free a node's
worth. `preemption.plan` takes a cluster's victims cheapest first over the whole cluster and releases them
into the pool's histogram as the pessimistic guess (each freed accelerator to the node with the fewest free),
since a histogram counts nodes by free accelerators but never names one. On a cluster packed with 1-GPU jobs
the ten cheapest sat on ten different nodes, no node freed 8, and an 8-GPU priority-1000 job waited while 3
victims on the one node that already had 5 free would have let it in.

When the running work says its nodes (`Allocation.nodes`), this module does what the Kubernetes scheduler's
preemption does per node: for each node, the cheapest victims there that bring it to one replica's worth free;
for a gang, those node sets cheapest first until every replica fits. A node's free accelerators are its size
less what every running job (preemptible or not) holds there; its size is the pool's per-node size, known
only when the pool's nodes are alike (total = nodes x the histogram's top). Where that cannot be read, or the
histogram has no node with that many free (work placed this cycle, or a stale report), the node is not
guessed at: the cluster-wide plan still stands.

Pure: values in, values out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from federator.model import MILLI, AcceleratorPool, ClusterInfo, JobId
from federator.scheduler.framework import Allocation, allocation_parts
from federator.scheduler.snapshot import release

NodeKey = tuple[str, str, str]
"""(cluster, accelerator model, node)."""


def node_used(running: Iterable[Allocation]) -> dict[NodeKey, int]:
    """Accelerator milli held on each node by the running work that says its nodes."""
    out: dict[NodeKey, int] = defaultdict(int)
    for a in running:
        for node, replicas in a.nodes:
            out[a.cluster, a.accelerator_model, node] += a.resources.accelerator_milli * replicas
    return out


def forget(used: dict[NodeKey, int], allocs: Iterable[Allocation]) -> None:
    """`used` once these allocations are stopped (a committed preemption)."""
    for a in allocs:
        for node, replicas in a.nodes:
            key = (a.cluster, a.accelerator_model, node)
            used[key] = used.get(key, 0) - a.resources.accelerator_milli * replicas


def node_size(pool: AcceleratorPool) -> int | None:
    """Accelerators per node when the pool's nodes are alike (None when the histogram cannot say)."""
    top = len(pool.nodes_by_free) - 1
    return top if top > 0 and pool.nodes and pool.total_accelerators == pool.nodes * top else None


def node_free(cluster: ClusterInfo, model: str, node: str, used: Mapping[NodeKey, int]) -> int | None:
    """Whole accelerators free on `node`, if it can be known and the histogram has such a node."""
    pool = next((p for p in cluster.capacity.accelerator_pools if p.accelerator_model == model), None)
    size = node_size(pool) if pool is not None else None
    if pool is None or size is None:
        return None
    held = used.get((cluster.name, model, node), 0)
    free = size - -(-held // MILLI)
    return free if 0 <= free <= size and pool.nodes_by_free[free] else None


def released_on_nodes(cluster: ClusterInfo, victims: Sequence[JobId], by_job: Mapping[JobId, Sequence[Allocation]],
                      used: Mapping[NodeKey, int]) -> ClusterInfo:
    """The cluster with these victims gone: a victim's whole accelerators go back to the nodes it ran on where
    those nodes' free room is known (`node_free`), the rest as `snapshot.release` guesses."""
    freed: dict[tuple[str, str], int] = defaultdict(int)
    for j in victims:
        for a in by_job[j]:
            if a.cluster != cluster.name:
                continue
            whole = a.resources.accelerator_milli % MILLI == 0 and a.nodes and not a.pod_sets  # sets: per set below
            known = whole and all(node_free(cluster, a.accelerator_model, n, used) is not None for n, _ in a.nodes)
            for res, pods in allocation_parts(a):
                res = replace(res, accelerator_milli=0) if known else res
                cluster = release(cluster, resources=res, replicas=pods, accelerator_model=a.accelerator_model)
            if known:
                for node, replicas in a.nodes:
                    freed[a.accelerator_model, node] += a.resources.accelerator_milli // MILLI * replicas
    for (model, node), gained in sorted(freed.items()):
        free = node_free(cluster, model, node, used)
        cluster = _moved(cluster, model, free, gained)
    return cluster


def _moved(cluster: ClusterInfo, model: str, free: int | None, gained: int) -> ClusterInfo:
    """One node of `model` moved from `free` to `free + gained` accelerators free."""
    pools = []
    for p in cluster.capacity.accelerator_pools:
        counts = list(p.nodes_by_free)
        if p.accelerator_model == model and free is not None and counts[free]:
            counts[free] -= 1
            counts[min(free + gained, len(counts) - 1)] += 1
            p = p.with_state(tuple(counts), p.shared_devices, (), (), ())
        elif p.accelerator_model == model:  # that node is no longer where the reports put it: the usual guess
            p = p.release_milli(gained * MILLI, 1)
        pools.append(p)
    cap = cluster.capacity
    return cluster.with_capacity(cap.after_bind(tuple(pools), cap.cpu_milli_free, cap.memory_bytes_free,
                                                cap.node_cpu_milli_free_max, cap.node_memory_bytes_free_max))


def node_sets(cluster: ClusterInfo, accelerators: int, on: Sequence[JobId],
              by_job: Mapping[JobId, Sequence[Allocation]], used: Mapping[NodeKey, int],
              cost: Callable[[JobId], float], *, budget: int) -> list[tuple[float, int, str, tuple[JobId, ...]]]:
    """Per node of `cluster`, the cheapest victims among `on` there that leave it `accelerators` free (at most
    `budget`), as (cost, victims, node, victims), cheapest first. A node already that free needs none, and is
    left out: what keeps the job off it is not accelerators."""
    there: dict[tuple[str, str], list[JobId]] = defaultdict(list)
    for j in on:
        for a in by_job[j]:
            if a.cluster == cluster.name and a.resources.accelerator_milli % MILLI == 0:
                for node, _ in a.nodes:
                    if j not in there[a.accelerator_model, node]:
                        there[a.accelerator_model, node].append(j)
    out: list[tuple[float, int, str, tuple[JobId, ...]]] = []
    for (model, node), jobs in there.items():
        free = node_free(cluster, model, node, used)
        if free is None or free >= accelerators:
            continue
        chosen: list[JobId] = []
        for j in sorted(jobs, key=lambda j: (cost(j), by_job[j][0].priority, j)):
            if free >= accelerators or len(chosen) >= budget:
                break
            chosen.append(j)
            free += sum(a.resources.accelerator_milli // MILLI * r for a in by_job[j] if a.cluster == cluster.name
                        and a.accelerator_model == model for n, r in a.nodes if n == node)
        if free >= accelerators:
            out.append((sum(cost(j) for j in chosen), len(chosen), node, tuple(chosen)))
    return sorted(out)


def by_pool(used: Mapping[NodeKey, int]) -> dict[tuple[str, str], dict[str, int]]:
    """`used` grouped by (cluster, model): node -> accelerator milli held (nodes holding nothing left out)."""
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for (c, model, node), milli in used.items():
        if milli > 0:
            out[c, model][node] = milli
    return out


def blocked_everywhere(ready: Sequence[ClusterInfo], accelerators: int, on: Mapping[str, Sequence[JobId]],
                       by_job: Mapping[JobId, Sequence[Allocation]],
                       pools: Mapping[tuple[str, str], Mapping[str, int]]) -> bool:
    """Whether every node that could hold a replica of `accelerators` runs work the job may not stop (`on`: its
    candidates per cluster), so that no preemption could ever make room: said only where every node of a pool
    is named by the running work (a node with nothing on it is free, and the job would not be waiting for it).
    `pools` is `by_pool` of the running work's node use, grouped once per cycle (PlanMemo.pools)."""
    if not accelerators or not pools:
        return False
    seen = False
    for cluster in ready:
        stoppable: dict[tuple[str, str], int] = defaultdict(int)
        for j in on.get(cluster.name, ()):
            for a in by_job[j]:
                for node, replicas in a.nodes:
                    stoppable[a.accelerator_model, node] += a.resources.accelerator_milli * replicas
        for pool in cluster.capacity.accelerator_pools:
            size = node_size(pool)
            if size is None or size < accelerators:
                continue
            held = pools.get((cluster.name, pool.accelerator_model), {})
            if len(held) < pool.nodes:
                return False  # a node no running work names: cannot say
            for node, milli in held.items():
                if size - -(-(milli - stoppable.get((pool.accelerator_model, node), 0)) // MILLI) >= accelerators:
                    return False
            seen = True
    return seen
