"""What a scheduling cycle sees of the fleet: each member as it last reported, less what the federator reserved since.

Why a module of its own: a member's report lags the federator's own placements (a Launch sent, its pods not bound
yet), so every reader of room holds them itself, the same way: the cycle (server/scheduling.py), the cluster list
(server/cluster_service.py), a drain's fit (server/drain_fit.py), the rebalancer and a drain's surge. How a
placement a report cannot hold is still held (`_reserve_or_exhaust`) is a rule of its own (outside QA F6), and it
made scheduling.py the longest module of the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from federator.model import ClusterInfo, ClusterState, Job, JobSpec, Placement, placement_resources
from federator.model.node_room import node_room_take
from federator.scheduler import Snapshot, reserve

if TYPE_CHECKING:
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator


def active_by_cluster(jobs: Iterable[Job]) -> dict[str, list[tuple[Placement, JobSpec]]]:
    """The active placements of `jobs` on each cluster, with their jobs' specs."""
    active: dict[str, list[tuple[Placement, JobSpec]]] = {}
    for job in jobs:
        for p in job.placements:
            if p.phase.is_active:
                active.setdefault(p.cluster, []).append((p, job.spec))
    return active


def reserved_info(rec: ClusterRecord, active: Sequence[tuple[Placement, JobSpec]]) -> ClusterInfo | None:
    """A cluster as last reported, less its active placements that report does not count yet (not listed
    in it, or listed on a pool it contradicts: `rec.uncounted`, server/consistency.py)."""
    if rec.capacity is None:
        return None
    info = ClusterInfo(rec.name, rec.region, rec.state, tuple(sorted(rec.labels.items())), rec.capacity)
    for p, spec in active:
        if p.placement_id not in rec.capacity.placement_ids or p.placement_id in rec.uncounted:
            info = _reserve_or_exhaust(info, p, spec)
    return info


def fleet_snapshot(fed: Federator, active: Mapping[str, Sequence[tuple[Placement, JobSpec]]]) -> Snapshot:
    """Member clusters as last reported, less what this federator has reserved since (`active`, by cluster). A
    Ready cluster an operator cordoned (server/cordons.py) is Cordoned here, one under quarantine
    (server/quarantine.py) Quarantined: the scheduler keeps new work off it as off any cluster not Ready, and says
    why."""
    quarantined = fed.early.quarantine.current(fed.clock())
    cordoned = fed.cordons.names()
    infos = [info if info.state is not ClusterState.READY
             else replace(info, state=ClusterState.CORDONED) if info.name in cordoned
             else replace(info, state=ClusterState.QUARANTINED) if info.name in quarantined
             else info
             for rec in fed.clusters.values()
             if (info := reserved_info(rec, active.get(rec.name, ()))) is not None]
    return Snapshot.of(infos)


def _reserve_or_exhaust(info: ClusterInfo, p: Placement, spec: JobSpec) -> ClusterInfo:
    """Hold a placement's resources in the snapshot, as its member would bind it.

    A report that cannot hold it that way (no node with the host room beside the devices: the member's pods wait
    for CPU or memory, or the report is stale) still holds it: its devices are taken from nodes that have them,
    its CPU and memory from the cluster's totals (down to none). Only a report that has not even the devices in
    one node's shape holds the whole pool. Before, any such report held the whole pool: one gang waiting for CPU
    on a member made its 800 free accelerators read 0 until --start-timeout (outside QA's Go agent, F6)."""
    resources = placement_resources(p, spec)
    try:
        if spec.pod_sets and p.replicas == spec.replicas:  # a whole gang of pod sets: each set at its own ask
            bound = info  # all sets or, failing one, the fallback below from the report as it was
            for s in sorted(spec.pod_sets, key=lambda s: -s.resources.accelerator_milli):
                bound = reserve(bound, resources=s.resources, replicas=s.count, accelerator_model=p.accelerator_model)
            return bound
        return reserve(info, resources=resources, replicas=p.replicas, accelerator_model=p.accelerator_model)
    except ValueError:
        pass
    cap = info.capacity
    loose = replace(info, capacity=replace(
        cap, cpu_milli_free=cap.cpu_milli_free + resources.cpu_milli * p.replicas,
        memory_bytes_free=cap.memory_bytes_free + resources.memory_bytes * p.replicas))
    try:  # the devices alone, then the host room it would have taken, as far as there is any
        held = reserve(loose, resources=replace(resources, cpu_milli=0, memory_bytes=0), replicas=p.replicas,
                       accelerator_model=p.accelerator_model).capacity
        cpu = max(0, cap.cpu_milli_free - resources.cpu_milli * p.replicas)
        memory = max(0, cap.memory_bytes_free - resources.memory_bytes * p.replicas)
        return info.with_capacity(held.after_bind(held.accelerator_pools, cpu, memory,
                                                  min(held.node_cpu_milli_free_max, cpu),
                                                  min(held.node_memory_bytes_free_max, memory),
                                                  node_room_take(held.node_room, resources.cpu_milli,
                                                                 resources.memory_bytes, p.replicas, strict=False)))
    except ValueError:
        pools = tuple(
            replace(pool, nodes_by_free=(pool.nodes,), shared_devices=(), host_room=(), shared_room=(),
                    room_classes=())
            if pool.accelerator_model == p.accelerator_model else pool
            for pool in cap.accelerator_pools
        )
        return replace(info, capacity=replace(cap, accelerator_pools=pools))


__all__ = ["active_by_cluster", "fleet_snapshot", "reserved_info"]
