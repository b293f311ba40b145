"""Whether a job could ever run on the fleet as it stands: "never fits", a pure check over a snapshot.

Why: a gang no member cluster could hold even empty (16 x 8 H100 where the largest H100 cluster has 8 nodes of 8)
waited "InsufficientAccelerators: ... no node with 8 free" for good, told its tenant to wait for room that can
never exist, and kept FederatorJobsPendingTooLong firing for its queue (outside SRE QA, F11). Such a job is
`Reason.never` = `NeverRunnable.FLEET` now: counted in federator_never_runnable_jobs{reason="fleet"} and left out
of the oldest-pending age. It stays pending (a larger member may join, and then it runs) and is judged again
every cycle, as a quota's "never" is.

What "could never hold, even empty" means with the resource model the federator has. A report says per pool
(vendor, model) its devices (`total_accelerators`, with those of the member's unusable nodes: they may come
back), its usable nodes, and what is free; it does not say how many devices each node has when empty (a full
node is in bucket 0 whatever its size). So the check is an upper bound that is sound for any node shapes: a
replica of m milli-devices takes at least m of a pool's devices (one partition or more of a MIG pool), so a pool
holds at most `devices * 1000 // m` replicas, however empty. A pool whose report says its largest node
(`largest_node_accelerators`, installed, usable or not) holds none: a replica needing more devices than that
node has can never run there, whatever frees (8 devices where every node has 4). An older agent does not say;
its pools are judged by their total alone. Host room (CPU, memory) is judged by the size of a member's largest
node (`ClusterCapacity.largest_node_cpu_milli` / `largest_node_memory_bytes`, allocatable, usable or not), never
by its free room or its allocatable total (which shrinks with its NotReady nodes: a wait, not a never): a
replica asking more CPU or memory than that node has can never run on that member, accelerators or not (200
CPUs where every node has 96; 4Ti where every node has 1Ti: pending for good as "InsufficientAccelerators",
outside HPC QA, H2). Such a "never" has the code of what is short (`InsufficientCpu`, `InsufficientMemory`). A
member that does not say (an older agent: 0) could hold any replica, so the job is not judged never on it.

- A gang (all replicas in one cluster, one model): never when no accepted pool of any cluster holds all of it.
- A spread job: never when the fleet's accepted pools together hold fewer than its replicas (groups of
  `group_size` whole on one cluster), or fewer regions have a cluster that holds one group than its minRegions
  (less the regions the rest of a running job already holds).
- Every cluster the snapshot has counts, whatever its state: a cordoned or quarantined one may be uncordoned, a
  Partitioned one come back, and a Lost one's last report stands until the federator forgets it.
- A fleet with no pool the job accepts at all is not judged: Submit warns "no member cluster has B200 now" and the
  job waits for one to join (as `fairshare._never_fits` leaves a model no member reports).
- A job of alternatives is never only if each alternative is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from federator.model import (
    MILLI,
    AcceleratorPool,
    ClusterCapacity,
    ClusterInfo,
    NeverRunnable,
    Reason,
    ReasonCode,
    format_bytes,
)
from federator.model.pod_sets import described
from federator.scheduler.alternatives import variants
from federator.scheduler.framework import PlacementRequest, accepted_pools
from federator.scheduler.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Largest:
    """The most of one request a cluster could hold even empty, and the pool that holds it."""

    cluster: str
    region: str
    replicas: int  # an upper bound (module docstring)
    pool: AcceleratorPool
    # What one replica asks of a node's host that the cluster's largest node has not (`host_short`; then `replicas`
    # is 0), None if a node could hold it: asked once per cluster per check, and passed on to `host_never`.
    short: ReasonCode | None = None


def most_replicas(request: PlacementRequest, pool: AcceleratorPool) -> int:
    """At most how many replicas of `request` the pool holds, even empty: each takes at least its share of the
    pool's devices (whole devices, a fraction, or whole MIG partitions)."""
    m = request.accelerator_milli
    if m <= 0 or node_short(request, pool):
        return 0
    devices = pool_devices(pool)
    if pool.sharing == "MIG" and pool.unit_milli > 0:
        return devices // max(1, m // MILLI)  # a fraction takes one partition, G whole take G
    return devices * MILLI // m


def replica_units(request: PlacementRequest, pool: AcceleratorPool) -> int:
    """The pool's units one replica takes on one node: its whole devices (a fraction one), or on MIG partitions."""
    m = request.accelerator_milli
    if pool.sharing == "MIG" and pool.unit_milli > 0:
        return max(1, m // MILLI)
    return -(-m // MILLI)


def node_short(request: PlacementRequest, pool: AcceleratorPool) -> bool:
    """Whether one replica needs more of the pool's units than its largest node has installed (when said)."""
    largest = pool.largest_node_accelerators
    return 0 < largest < replica_units(request, pool)


def pool_devices(pool: AcceleratorPool) -> int:
    """A pool's devices (its own units), even those of its member's unusable nodes; never fewer than it reports
    free or allocatable, so that a report that left its total out cannot make a job read as never fitting."""
    free = pool.free_accelerators + sum(n for _, n in pool.shared_devices)
    return max(pool.total_accelerators, pool.allocatable_accelerators, free)


def fleet_shape(pool: AcceleratorPool) -> tuple[object, ...]:
    """What the check reads of a pool, its free room aside (which moves with every placement and report): pools of
    one shape are judged alike, so a report that moves only free room need not have a job judged again
    (server/fleet_models.py memoizes Submit's warning by the members' shapes)."""
    return (pool.vendor, pool.resource_name, pool.accelerator_model, pool.family, pool.memory_mib, pool.sharing,
            pool.unit_milli, pool.largest_node_accelerators, pool_devices(pool), pool.nodes)


def host_short(request: PlacementRequest, capacity: ClusterCapacity) -> ReasonCode | None:
    """What one replica asks of a node's host that the member's largest node has not (when it says its size):
    `InsufficientCpu` or `InsufficientMemory`; None when a node could hold it, or the member does not say."""
    res = request.spec.resources
    if 0 < capacity.largest_node_cpu_milli < res.cpu_milli:
        return ReasonCode.INSUFFICIENT_CPU
    if 0 < capacity.largest_node_memory_bytes < res.memory_bytes:
        return ReasonCode.INSUFFICIENT_MEMORY
    return None


def rooms(request: PlacementRequest, snapshot: Snapshot) -> list[Largest]:
    """Per cluster with a pool the request accepts (its quota aside: that is fairshare's), its largest pool's
    (room for none on a cluster none of whose nodes has the replica's CPU or memory: `Largest.short`)."""
    free = replace(request, blocked_models=(), model_caps=())
    out = []
    for c in snapshot.clusters:
        best = max(accepted_pools(free, c), key=lambda p: most_replicas(free, p), default=None)
        if best is not None:
            short = host_short(request, c.capacity)
            out.append(Largest(c.name, c.region, 0 if short else most_replicas(free, best), best, short))
    return out


def _spread_total(request: PlacementRequest, cluster: ClusterInfo, short: ReasonCode | None) -> int:
    """The most replicas of a spread request one cluster holds even empty, over every pool it accepts (none when
    its host is `short`, as `rooms` found)."""
    if short:
        return 0
    free = replace(request, blocked_models=(), model_caps=())
    return sum(most_replicas(free, p) for p in accepted_pools(free, cluster))


def host_never(request: PlacementRequest, clusters: Sequence[ClusterInfo],
               shorts: Sequence[ReasonCode | None] | None = None) -> tuple[str, ReasonCode | None]:
    """Why no node of `clusters` (those the request could use) could hold one replica's CPU or memory even
    empty, and the code of what is short; ("", None) when one could, or `clusters` is empty. `shorts`: each
    cluster's `host_short`, in the order of `clusters`, when the caller has them (`rooms`), else asked here."""
    short = list(shorts) if shorts is not None else [host_short(request, c.capacity) for c in clusters]
    if not clusters or not all(short):
        return "", None
    res = request.spec.resources
    cpu = min(clusters, key=lambda c: (-c.capacity.largest_node_cpu_milli, c.name))
    mem = min(clusters, key=lambda c: (-c.capacity.largest_node_memory_bytes, c.name))
    most_cpu = f"{cpu.capacity.largest_node_cpu_milli / MILLI:g}, on {cpu.name}"
    most_mem = f"{format_bytes(mem.capacity.largest_node_memory_bytes)}, on {mem.name}"
    if all(s is ReasonCode.INSUFFICIENT_CPU for s in short):
        return (f"no node of any member cluster has the {res.cpu_milli / MILLI:g} CPUs one replica asks, even empty "
                f"(the most on one node is {most_cpu})"), ReasonCode.INSUFFICIENT_CPU
    if all(s is ReasonCode.INSUFFICIENT_MEMORY for s in short):
        return (f"no node of any member cluster has the {format_bytes(res.memory_bytes)} memory one replica asks, "
                f"even empty (the most on one node is {most_mem})"), ReasonCode.INSUFFICIENT_MEMORY
    return (f"no node of any member cluster has both the {res.cpu_milli / MILLI:g} CPUs and the "
            f"{format_bytes(res.memory_bytes)} memory one replica asks, even empty (the most CPUs on one node are "
            f"{most_cpu}; the most memory {most_mem})"), ReasonCode.INSUFFICIENT_CPU


def never_fits_coded(request: PlacementRequest, snapshot: Snapshot) -> tuple[str, ReasonCode | None]:
    """Why one alternative (a request as the cycle tries it) can never run on `snapshot`'s fleet, even empty ("" when
    it could, or when it needs accelerators and no member has a pool it accepts), and the code its reason should
    have when that is a replica's CPU or memory (else None)."""
    if request.accelerator_milli <= 0:  # CPU-only work: any member's node will do
        return host_never(request, snapshot.clusters)
    if request.spec.pod_sets and request.is_gang:  # unequal roles: their devices together (pod_set_fit.py)
        return _never_sets(request, snapshot), None
    found = rooms(request, snapshot)
    if not found:
        return "", None
    by_name = {c.name: c for c in snapshot.clusters}
    host = host_never(request, [by_name[r.cluster] for r in found], [r.short for r in found])
    if host[0]:
        return host
    return _never_accelerators(request, snapshot, found), None


def _never_accelerators(request: PlacementRequest, snapshot: Snapshot, found: list[Largest]) -> str:
    """`never_fits_coded`'s words for a request for accelerators that some member has a pool for (`found`)."""
    what = f"{request.replicas} x {_count(request.accelerator_milli)} {_models(request, found)}"
    if all(node_short(request, r.pool) for r in found):
        node = min(found, key=lambda r: (-r.pool.largest_node_accelerators, r.cluster))
        return (f"no node of any member cluster could hold one replica of {_count(request.accelerator_milli)} "
                f"{_models(request, found)} even empty (the largest, on {node.cluster}, has "
                f"{node.pool.largest_node_accelerators} {node.pool.accelerator_model})")
    biggest = max(found, key=lambda r: (r.replicas, pool_devices(r.pool)))
    largest = (f"the largest, {biggest.cluster}, has {pool_devices(biggest.pool)} "
               f"{biggest.pool.accelerator_model} on {biggest.pool.nodes} nodes")
    if request.is_gang or (request.replicas == 1 and request.spec.min_regions <= 1):
        if biggest.replicas >= request.replicas:
            return ""
        return f"no member cluster could hold {what} even empty ({largest}, room for {biggest.replicas})"
    g = max(1, request.spec.group_size)
    short = {r.cluster: r.short for r in found}  # a cluster not found has no pool the request accepts: holds 0
    held = {c.name: _spread_total(request, c, short.get(c.name)) for c in snapshot.clusters}
    total = sum(n // g * g for n in held.values())
    if total < request.replicas:
        return (f"the whole fleet could hold {total} of {request.replicas} replicas x "
                f"{_count(request.accelerator_milli)} {_models(request, found)} even empty ({largest})")
    regions = {c.region for c in snapshot.clusters if held[c.name] >= g} | set(request.kept_regions)
    if len(regions) < request.spec.min_regions:
        shown = ", ".join(sorted(regions)) or "none"
        have = f"only {len(regions)} region has" if len(regions) == 1 else f"only {len(regions)} regions have"
        return (f"minRegions is {request.spec.min_regions}, but {have} a member cluster that could hold "
                f"{'a replica' if g == 1 else f'a group of {g} replicas'} of {_models(request, found)} even empty "
                f"({shown})")
    return ""


def _never_sets(request: PlacementRequest, snapshot: Snapshot) -> str:
    """`never_fits_coded`'s words for a gang of pod sets: no pool it accepts, in any member, has the devices of all
    its sets together, or a node the size of its largest pod, even empty ("" when one could, or none has a pool it
    accepts: that is AcceleratorModel's to say). An upper bound, as for equal replicas (module docstring)."""
    free = replace(request, blocked_models=(), model_caps=())
    sets = request.spec.pod_sets
    need = sum(-(-p.resources.accelerator_milli // MILLI) * p.count for p in sets)
    most = max(-(-p.resources.accelerator_milli // MILLI) for p in sets)
    pools = [(c.name, p) for c in snapshot.clusters for p in accepted_pools(free, c)]
    if not pools or any(pool_devices(p) >= need and not 0 < p.largest_node_accelerators < most for _, p in pools):
        return ""
    name, pool = max(pools, key=lambda cp: (pool_devices(cp[1]), cp[0]))
    models = "|".join(request.spec.accelerator_models) or "|".join(sorted({p.accelerator_model for _, p in pools}))
    return (f"no member cluster could hold the pod sets {described(sets)} {models} together even "
            f"empty (the largest, {name}, has {pool_devices(pool)} {pool.accelerator_model} on {pool.nodes} nodes"
            + (f", at most {pool.largest_node_accelerators} on one" if pool.largest_node_accelerators else "") + ")")


def never_coded(request: PlacementRequest, snapshot: Snapshot, legacy_vendor: str = ""
                ) -> tuple[str, ReasonCode | None]:
    """Why a job can never run on the fleet as it stands, over every alternative it has ("" if one could; the text
    ends by saying the job waits for a larger member, which is what it does), and the code its reason should have
    when every alternative is short of a node's CPU or memory alike (`host_short`; None: the cycle's own code
    stands)."""
    tried = variants(request, legacy_vendor)
    judged = [never_fits_coded(v, snapshot) for v in tried]
    why = [w for w, _ in judged]
    if not all(why):
        return "", None
    codes = {c for _, c in judged}
    code = codes.pop() if len(codes) == 1 else None
    if len(why) == 1:
        said = why[0]
    else:
        alts = request.spec.accelerators
        said = "; ".join(f"alternative {i + 1} ({alts[i].describe()}): {w}" for i, w in enumerate(why))
    # "cancel it and submit a smaller one", not "shrink it": a gang's size is fixed once submitted, even one never
    # placed (a FederatedJob's spec.replicas of a training job is refused), so the advice is one that works (G12)
    return (f"{said}: it can never run as the fleet stands (cancel it and submit a smaller one, or it waits until "
            "the fleet grows to hold it)"), code


class FleetFit:
    """The fleet check of one cycle: over the cycle's snapshot, memoized per request shape (the snapshot's
    devices do not change within a cycle; its free room, which the check does not read, does)."""

    def __init__(self, snapshot: Snapshot, legacy_vendor: str = "") -> None:
        self.snapshot = snapshot
        self.legacy_vendor = legacy_vendor
        self._said: dict[tuple[object, ...], tuple[str, ReasonCode | None]] = {}

    def judged(self, request: PlacementRequest, outcome: Reason) -> Reason:
        """`outcome`, or, when no wait could cure it, the same code with a message that says so first and what
        the cycle found after it (`NeverRunnable.FLEET`). A quota's "never" stands: the tenant's quota is what to
        change first."""
        if outcome.never is not None:
            return outcome
        s = request.spec
        key = (s.kind, request.replicas, s.resources, s.accelerator_models, s.accelerators, s.min_regions,
               s.group_size, request.kept_regions, request.vendor, request.resource_name, s.pod_sets)
        said = self._said.get(key)
        if said is None:
            said = self._said[key] = never_coded(request, self.snapshot, self.legacy_vendor)
        if not said[0]:
            return outcome
        return Reason(said[1] or outcome.code, f"{said[0]}. Now: {outcome.message}", never=NeverRunnable.FLEET)


def _count(milli: int) -> str:
    return f"{milli // MILLI}" if milli % MILLI == 0 else f"{milli}m"


def _models(request: PlacementRequest, found: Sequence[Largest]) -> str:
    """The models asked, as the job names them, else those the fleet offers it."""
    named = request.spec.accelerator_models
    return "|".join(named) if named else "|".join(sorted({r.pool.accelerator_model for r in found}))


__all__ = ["FleetFit", "Largest", "fleet_shape", "host_never", "host_short", "most_replicas",
           "never_coded", "never_fits_coded", "node_short", "pool_devices",
           "replica_units", "rooms"]
