"""Shared builders for the benchmarks: mixed-accelerator clusters and mixed-shape job sets, seeded."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from pathlib import Path

from federator.model import (
    AcceleratorPool,
    ClusterCapacity,
    ClusterInfo,
    ClusterState,
    Job,
    JobId,
    JobKind,
    JobPhase,
    JobSpec,
    Reason,
    ReasonCode,
    Resources,
)
from federator.model.pool_room import one_node_room, room_classes
from federator.scheduler import PlacementRequest
from federator.security.authz import USER_ANNOTATION
from federator.store import SqliteJobStore

GiB = 2**30
# (model, accelerators per node, share of a cluster's nodes)
NODE_MIX = (("NVIDIA-H100-80GB-HBM3", 8, 0.3), ("NVIDIA-A100-SXM4-80GB", 8, 0.3), ("NVIDIA-L40S", 4, 0.2),
            ("NVIDIA-A10", 1, 0.2))
# (share, kind, replicas range, accelerators per replica (milli), model choices)
JOB_MIX = (
    (0.30, JobKind.TRAINING, (1, 1), 1000, ((), ("A10",), ("L40S", "A10"))),
    (0.15, JobKind.TRAINING, (1, 1), 2000, ((), ("L40S",))),
    (0.10, JobKind.TRAINING, (1, 2), 4000, ((), ("A100",))),
    (0.15, JobKind.TRAINING, (1, 4), 8000, (("H100",), ("A100",), ("H100", "A100"))),
    (0.15, JobKind.INFERENCE, (1, 1), 500, ((), ("L40S",), ("A10",))),
    (0.10, JobKind.INFERENCE, (2, 8), 1000, ((), ("L40S", "A10"))),
    (0.05, JobKind.TRAINING, (1, 2), 0, ((),)),
)


def clusters(n: int, *, nodes: int = 1000, seed: int = 0, regions: int = 10) -> list[ClusterInfo]:
    """`n` clusters of `nodes` idle nodes each, the model mix varying a little per cluster."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        pools = []
        nodes_here = 0
        for model, per_node, share in NODE_MIX:
            count = max(1, round(nodes * share * rng.uniform(0.7, 1.3)))
            hist = [0] * 9
            hist[per_node] = count
            pools.append(AcceleratorPool(model, tuple(hist), count * per_node, count * per_node))
            nodes_here += count
        out.append(idle_cluster(i, regions, pools, nodes_here, rng))
    return out


def idle_cluster(i: int, regions: int, pools: Sequence[AcceleratorPool], node_count: int,
                 rng: random.Random) -> ClusterInfo:
    """A cluster of idle nodes (128 CPUs and 1 TiB each) holding these pools, at a random price."""
    cpu, mem = node_count * 128_000, node_count * 1024 * GiB
    cap = ClusterCapacity(accelerator_pools=tuple(pools), cpu_milli_allocatable=cpu, cpu_milli_free=cpu,
                          memory_bytes_allocatable=mem, memory_bytes_free=mem,
                          node_cpu_milli_free_max=128_000, node_memory_bytes_free_max=1024 * GiB)
    labels = (("federator.io/price-per-accelerator-hour", f"{rng.uniform(1.5, 4.5):.2f}"),)
    return ClusterInfo(f"cluster-{i:04d}", f"region-{i % regions:02d}", labels=labels, capacity=cap)


H100 = "NVIDIA-H100-80GB-HBM3"


def h100_member(name: str, region: str, *, free_by_node: Sequence[int], cpu_used: float = 0.0) -> ClusterInfo:
    """A ready member of nodes of 8 H100, 128 CPUs and 2 TiB each, node i with `free_by_node[i]` devices free and
    `cpu_used` of each node's CPU and memory taken: the gang benches' small fleets (elastic_gangs.py,
    reserve_backlog.py), one room shape a cluster."""
    nodes = len(free_by_node)
    hist = [0] * 9
    for free in free_by_node:
        hist[free] += 1
    pool = AcceleratorPool(H100, tuple(hist), 8 * nodes, 8 * nodes)
    cpu, mem = 128_000, 2048 * GiB
    cpu_free, mem_free = round(cpu * (1 - cpu_used)), round(mem * (1 - cpu_used))
    cap = ClusterCapacity(accelerator_pools=(pool,), cpu_milli_allocatable=cpu * nodes, cpu_milli_free=cpu_free * nodes,
                          memory_bytes_allocatable=mem * nodes, memory_bytes_free=mem_free * nodes,
                          node_cpu_milli_free_max=cpu_free, node_memory_bytes_free_max=mem_free)
    return ClusterInfo(name, region, ClusterState.READY, (), cap)


ROOMS = ("none", "one-node", "classes")


def with_room(clusters_: Sequence[ClusterInfo], room: str, *, seed: int = 0) -> list[ClusterInfo]:
    """The clusters with a third of each pool's nodes part-used, and node fit as an agent reports it:
    `room` "none" leaves the idle clusters as they are; "one-node" reports one node's room per bucket
    (host_room, older agents); "classes" also every node's room by class (room_classes). A part-used
    node has fewer devices free, and its CPU and memory down by one of 100 steps, so a pool carries
    some tens of classes, as a busy member's does."""
    if room == "none":
        return list(clusters_)
    rng = random.Random(seed)
    out = []
    for c in clusters_:
        pools = []
        for p in c.capacity.accelerator_pools:
            per_node = len(p.nodes_by_free) - 1
            nodes = []
            for _ in range(p.nodes):
                if rng.random() < 1 / 3:
                    step = rng.randint(1, 100)
                    nodes.append((rng.randint(0, per_node - 1), 128_000 - 1000 * step, (1024 - 8 * step) * GiB))
                else:
                    nodes.append((per_node, 128_000, 1024 * GiB))
            hist = [0] * (per_node + 1)
            for free, _, _ in nodes:
                hist[free] += 1
            host_room = tuple(one_node_room((cpu, mem) for f, cpu, mem in nodes if f == i) for i in range(len(hist)))
            classes = room_classes(nodes, ()) if room == "classes" else ()
            pools.append(dataclasses.replace(p, nodes_by_free=tuple(hist), host_room=host_room, room_classes=classes))
        out.append(dataclasses.replace(c, capacity=dataclasses.replace(c.capacity, accelerator_pools=tuple(pools))))
    return out


def jobs(n: int, *, seed: int = 0, queues: Sequence[str] = ("research", "serving", "batch"),
         regions: int = 10) -> list[PlacementRequest]:
    rng = random.Random(seed)
    weights = [m[0] for m in JOB_MIX]
    out = []
    for i in range(n):
        _, kind, (lo, hi), milli, models = rng.choices(JOB_MIX, weights=weights)[0]
        replicas = rng.randint(lo, hi)
        gpus = max(1, milli // 1000)
        spec = JobSpec(name=f"job-{i:06d}", kind=kind, replicas=replicas,
                       resources=Resources(4000 * gpus, 32 * GiB * gpus, milli), accelerator_models=rng.choice(models),
                       queue=rng.choice(queues), priority=rng.choice((0, 0, 0, 10)),
                       preferred_regions=(f"region-{rng.randrange(regions):02d}",) if rng.random() < 0.2 else ())
        out.append(PlacementRequest(JobId(spec.name), spec, replicas, float(i)))
    return out


def owned(requests: Sequence[PlacementRequest], owners: int) -> list[PlacementRequest]:
    """The requests with job i submitted by user i mod `owners` (the owner the federator records)."""
    return [dataclasses.replace(r, spec=dataclasses.replace(r.spec,
                                                            annotations=((USER_ANNOTATION, f"user-{i % owners}"),)))
            for i, r in enumerate(requests)]


def backlog(db: Path, n: int) -> None:
    """`n` pending jobs of the benchmarks' mixed shapes (`jobs`, seed 11), written as a federator would have
    stored them: the backlog bench/submit_scale.py and bench/soak.py start a federator on."""
    store = SqliteJobStore(db)
    batch: list[Job] = []
    for r in jobs(n, seed=11):
        batch.append(Job(job_id=r.job_id, spec=r.spec, submitted_at=time.time(), phase=JobPhase.PENDING,
                         pending_reason=Reason(ReasonCode.WAITING, "waiting for the next scheduling cycle")))
        if len(batch) == 5_000:
            store.put(batch)
            batch = []
    store.put(batch)
    store.close()
