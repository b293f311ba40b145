"""The gang of unequal pod sets: each set's pods on nodes that hold its own ask, all sets in one cluster.

Why: a brought workload's roles (a learner 2 x 8, a rollout 4 x 1, a reward model 1 x 1) were fitted as 7 equal
replicas of 8 (56 accelerators for 21 asked) and waited GangDoesNotFit where 21 would fit (outside QA ML platform,
E2). A job carrying `JobSpec.pod_sets` (model/pod_sets.py) is fitted here instead: the sets are taken one after the
other from one pool of the cluster's model, the largest per-pod ask first (as kube-scheduler binds the larger pods
where they still fit), each pod's CPU and memory on the node of its accelerators; all or nothing, in one cluster.
Reserving does the same over the snapshot (`reserve_request`), and the queue usage counts each set at its ask
(`parts`). A request without pod sets goes the equal-replicas way everywhere, unchanged.

Pure: over the cycle's snapshot, like the rest of the scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence

from federator.model import MILLI, AcceleratorPool, ClusterInfo, Reason, ReasonCode, Resources, format_bytes
from federator.model.pod_sets import PodSetAsk, largest_first, short_in
from federator.scheduler.framework import PlacementRequest
from federator.scheduler.snapshot import reserve


def placed_sets(request: PlacementRequest) -> tuple[PodSetAsk, ...]:
    """The pod sets `request` is fitted by: its job's, largest per-pod ask first, when it asks for the whole gang;
    () otherwise (equal replicas: every job without pod sets)."""
    sets = request.spec.pod_sets
    if not sets or not request.is_gang or request.replicas != request.spec.replicas:
        return ()
    return largest_first(sets)


def parts(request: PlacementRequest, replicas: int) -> tuple[tuple[Resources, int], ...]:
    """(per-pod resources, pods) of `replicas` replicas of `request` as queue usage counts them: each pod set at its
    ask for a whole gang of pod sets, else `replicas` x the spec's resources."""
    sets = placed_sets(request) if replicas == request.spec.replicas else ()
    return tuple((p.resources, p.count) for p in sets) or ((request.spec.resources, replicas),)


def gang_fit(request: PlacementRequest, cluster: ClusterInfo, pools: Sequence[AcceleratorPool]) -> Reason | None:
    """GangFit for a gang of pod sets: None when one of `pools` (those of the cluster `request` accepts) holds
    every set's pods, each on a node with its own ask free beside them; else why, naming the set that did not fit
    on the pool that went furthest."""
    sets = placed_sets(request)
    short = ""
    model = ""
    for pool in pools:
        missing = short_in(pool, sets)
        if not missing:
            return None
        if not short:
            short, model = missing, pool.accelerator_model
    asked = ", ".join(f"{p.name} {p.count} x {_count(p.resources.accelerator_milli)}" for p in request.spec.pod_sets)
    if not model:
        return Reason(ReasonCode.INSUFFICIENT_ACCELERATORS,
                      f"{cluster.name} has no accelerator pool the job accepts for its pod sets ({asked})")
    return Reason(ReasonCode.GANG_DOES_NOT_FIT,
                  f"{cluster.name} has no room for the pod sets {asked} {model} accelerators together: "
                  f"{short}")


def cpu_memory_fit(request: PlacementRequest, cluster: ClusterInfo) -> Reason | None:
    """CpuMemoryFit for a gang of pod sets: their CPU and memory together free in the cluster, and each set's pod
    on its freest node (the pools' own node room checks the accelerator pods' hosts, `gang_fit`)."""
    cap = cluster.capacity
    sets = placed_sets(request)
    total = Resources()
    for p in sets:
        total = total + p.resources * p.count
    cpu = max(p.resources.cpu_milli for p in sets)
    memory = max(p.resources.memory_bytes for p in sets)
    if cpu > cap.node_cpu_milli_free_max or total.cpu_milli > cap.cpu_milli_free:
        return Reason(ReasonCode.INSUFFICIENT_CPU,
                      f"{cluster.name} has {cap.cpu_milli_free / MILLI:g} CPUs free "
                      f"({cap.node_cpu_milli_free_max / MILLI:g} on its freest node), its pod sets need "
                      f"{total.cpu_milli / MILLI:g} (the most on one pod {cpu / MILLI:g})")
    if memory > cap.node_memory_bytes_free_max or total.memory_bytes > cap.memory_bytes_free:
        return Reason(ReasonCode.INSUFFICIENT_MEMORY,
                      f"{cluster.name} has {format_bytes(cap.memory_bytes_free)} memory free, its pod sets need "
                      f"{format_bytes(total.memory_bytes)} (the most on one pod {format_bytes(memory)})")
    return None


def reserve_request(cluster: ClusterInfo, request: PlacementRequest, model: str, *, bucket: int = 0) -> ClusterInfo:
    """The cluster after binding the whole of `request` on `model` (ValueError if it does not fit): each pod set
    at its own ask for a gang of pod sets, else `request.replicas` equal replicas (`snapshot.reserve`)."""
    sets = placed_sets(request)
    if not sets:
        return reserve(cluster, resources=request.spec.resources, replicas=request.replicas,
                       accelerator_model=model, bucket=bucket)
    for p in sets:
        cluster = reserve(cluster, resources=p.resources, replicas=p.count, accelerator_model=model)
    return cluster


def _count(milli: int) -> str:
    return f"{milli // MILLI}" if milli % MILLI == 0 else f"{milli}m"


__all__ = ["cpu_memory_fit", "gang_fit", "parts", "placed_sets", "reserve_request"]
