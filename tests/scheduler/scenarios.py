"""Shared fixtures for scheduler scenario tests: fleets, configs and a one-call cycle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from federator.model import ClusterInfo, JobId, JobSpec, Resources
from federator.model.job import USER_ANNOTATION
from federator.scheduler import (
    Allocation,
    Arrival,
    CycleResult,
    QueueConfig,
    Quota,
    Scheduler,
    SchedulerConfig,
    Snapshot,
)

from builders import cluster, job, pool, request

H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
L40S = "NVIDIA-L40S"


def n_h100_nodes(n: int, name: str = "c", region: str = "r", **kw: Any) -> ClusterInfo:
    """A cluster of n idle 8 x H100 nodes."""
    return cluster(name, region, pool(H100, nodes=n), **kw)


def with_queues(**weights: float) -> SchedulerConfig:
    return SchedulerConfig(queues={q: QueueConfig(weight=w) for q, w in weights.items()})


def with_quota(queue: str, *, gpus: dict[str, int] | None = None, cpu: int | None = None) -> SchedulerConfig:
    quota = Quota(accelerator_milli={m: n * 1000 for m, n in (gpus or {}).items()},
                  cpu_milli=cpu * 1000 if cpu is not None else None)
    return SchedulerConfig(queues={queue: QueueConfig(quota=quota)})


def spec(name: str, **kw: Any) -> JobSpec:
    extra = {k: kw.pop(k) for k in ("preemptible", "min_regions", "user_region", "max_latency_ms") if k in kw}
    return replace(job(name, **kw), **extra)


def owned(user: str, name: str, **kw: Any) -> JobSpec:
    """`spec(name, **kw)` submitted by `user` (the owner the federator records: `JobSpec.owner`)."""
    return replace(spec(name, **kw), annotations=((USER_ANNOTATION, user),))


def running(s: JobSpec, cluster_name: str, *, model: str = H100, placed_at: float = 0.0,
            replicas: int | None = None) -> Allocation:
    return Allocation(JobId(s.name), s.queue, s.priority, s.preemptible, cluster_name, model,
                      replicas or s.replicas, s.resources, placed_at, owner=s.owner)


def cycle(clusters: Sequence[ClusterInfo], specs: Sequence[JobSpec], *, config: SchedulerConfig | None = None,
          allocations: Sequence[Allocation] = (), now: float = 0.0, recent: Sequence[Arrival] = ()) -> CycleResult:
    return Scheduler(config).schedule(Snapshot.of(clusters), [request(s, at=i) for i, s in enumerate(specs)],
                                      running=allocations, now=now, recent=recent)


def placed(result: CycleResult) -> dict[str, dict[str, int]]:
    """job -> {cluster: replicas}"""
    out: dict[str, dict[str, int]] = {}
    for d in result.decisions:
        for a in d.assignments:
            out.setdefault(d.job_id, {})[a.cluster] = out.get(d.job_id, {}).get(a.cluster, 0) + a.replicas
    return out


def gpus(r: Resources, replicas: int) -> float:
    return r.accelerator_milli * replicas / 1000
