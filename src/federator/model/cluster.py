"""What the federator knows of a member cluster: identity, state and capacity.

Capacity is a *resource model*, not a node list: per accelerator model, how many nodes
have 0, 1, 2, ... accelerators free. That is enough to decide whether a gang of
N replicas x G accelerators fits, and keeps the scheduler's cost independent of the
number of nodes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from federator.model.accelerator import DEFAULT_VENDOR, AcceleratorType
from federator.model.node_room import NodeRoom
from federator.model.pool_room import (
    PoolState,
    RoomClass,
    _classed_capacity_of,
    _Classes,
    _fraction_capacity,
    _gang_capacity,
    _hosted,
    _Room,
)
from federator.model.resources import MILLI
from federator.model.sharing import (
    SHARING_MIG,
    accelerator_milli_of,
    accelerator_milli_totals,
    held_milli,
    partition_worth,
    sharing_serves,
    vendor_totals,
)


class ClusterState(StrEnum):
    READY = "Ready"
    PARTITIONED = "Partitioned"  # stream dropped; jobs keep running; no new work
    LOST = "Lost"  # gone past the grace time; its jobs may be re-placed
    # Only in a scheduling snapshot, never a record's: a Ready cluster that failed several owners' work early and
    # takes no new work for a while (server/quarantine.py); what it runs stays.
    QUARANTINED = "Quarantined"
    # Only in a scheduling snapshot too: a Ready cluster an operator cordoned (server/cordons.py); what it runs stays.
    CORDONED = "Cordoned"


class GangAdmission(StrEnum):
    """What admits a gang (a training placement's pods) whole on a member cluster; its agent says so in Hello."""

    KUEUE = "kueue"  # Kueue: the workload waits suspended in a LocalQueue until all of it is admitted
    NONE = "none"  # nothing: the agent deletes a gang not wholly bound within its gang timeout
    UNKNOWN = ""  # the agent did not say (a simulated cluster, an older agent)

    @classmethod
    def parse(cls, text: str) -> GangAdmission:
        """A value from the wire: "" stays unknown, anything else unrecognised reads as `NONE`."""
        try:
            return cls(text)
        except ValueError:
            return cls.NONE


class AgentFeature(StrEnum):
    """An optional part of the agent contract an agent says it implements (Hello.features, agent.proto)."""

    RESIZE = "resize"  # it shrinks a placement in place on a Resize order
    LOST = "lost"  # it marks a placement it lost with JobUpdate.lost, not only in its message's words
    LOGS = "logs"  # it answers a LogsRequest with the tail of a placement's output (server/logs.py)
    LOGS_SINCE = "logs-since"  # it honours LogsRequest.timestamps and since_time: a follow (server/log_follow.py)
    SEALS = "seals"  # it says back Launch.seal and Cancel.seal (JobUpdate.launch_seal, cancel_seal: server/seals.py)

    @classmethod
    def parse(cls, names: Iterable[str]) -> frozenset[AgentFeature]:
        """The features of a Hello that this federator knows; other names (a newer agent's) are ignored."""
        known = {f.value: f for f in cls}
        return frozenset(known[n] for n in names if n in known)


PRICE_LABEL = "federator.io/price-per-accelerator-hour"
_OLD_PRICE_LABEL = "federator.io/price-per-" + "gpu-hour"  # the name before vendors; still read
PRICE_LABELS = (PRICE_LABEL, _OLD_PRICE_LABEL)
# The price a provider's cluster claimed when the trust file's minPrice/maxPrice took another (security/trust.py
# `Trust.priced_labels`): the federator's label, one an agent sends dropped. The price used is in PRICE_LABEL.
CLAIMED_PRICE_LABEL = "federator.io/claimed-price-per-accelerator-hour"


def parse_price(raw: str) -> float | None:
    """A price label's value as a number: a finite decimal of at least 0, else None.

    float() alone also reads "nan", "inf" and "-5": a NaN price made every scheduling cycle fail (the Price score
    rounds it), and a negative one scored above the maximum, drawing every job to that cluster. The federator
    refuses a Hello with such a value (security/limits.py check_hello); this keeps labels that came another way
    (a store written before that check) from doing either."""
    try:
        price = float(raw)
    except ValueError:
        return None
    return price if math.isfinite(price) and price >= 0 else None

DRA_SUFFIX = " (DRA)"
"""A pool whose devices pods get through Dynamic Resource Allocation names its DeviceClass, then this, as its
`resource_name` ("gpu.nvidia.com (DRA)"): not an extended resource a pod could request (agent.proto)."""

@dataclass(frozen=True, slots=True)
class AcceleratorPool:
    """The nodes of one cluster that carry one accelerator type, keyed by (vendor, model).

    Whole accelerators are counted per node (`nodes_by_free`). An accelerator that holds
    fractional replicas (milli-device requests, as in accelerator-sharing clusters) is
    *shared*: it is not free for whole-accelerator work, and `shared_devices` counts such
    accelerators by their free milli-devices, as sorted `(free_milli, count)` pairs with
    0 < free_milli < 1000. Together that is enough to decide whether N
    replicas of G GPUs, or of m milli-GPUs, fit.

    `host_room[i]` is the free (CPU milli, memory bytes) of one node, the roomiest
    (`one_node_room`), among the nodes with exactly i whole GPUs free, and
    `shared_room` the same among the nodes of the shared GPUs with a given free
    milli-GPUs, so that "fits" here means
    "fits on a node" also for CPU and memory, not only in the cluster's sum;
    () when the agent does not report it (no host check then).

    `room_classes` (`RoomClass`) say the same for every node, counted by class: when an agent
    reports them, the model reads them and not `host_room` / `shared_room`. One node's room per
    bucket cannot say that one node has the CPU for a CPU-heavy replica and another the memory
    for a memory-heavy one, nor that a bucket's other nodes are still roomy once that node took
    a replica; the classes can, and a take moves the node that took it to its new class.
    """

    accelerator_model: str
    nodes_by_free: tuple[int, ...]  # [i] = nodes with exactly i whole GPUs free
    total_accelerators: int
    allocatable_accelerators: int
    shared_devices: tuple[tuple[int, int], ...] = ()  # (free milli-GPUs, how many shared GPUs)
    host_room: tuple[tuple[int, int], ...] = ()  # [i] = (free CPU milli, memory bytes) of the roomiest of those nodes
    shared_room: tuple[tuple[int, int, int], ...] = ()  # (free milli-GPUs, the same of those nodes)
    vendor: str = DEFAULT_VENDOR
    memory_mib: int = 0  # per device; 0 = unknown
    resource_name: str = ""  # the Kubernetes resource pods request ("" = the catalog's)
    # The catalog family of the model ("Ascend910B" for an Ascend910B3 pool), "" if none: a job
    # naming the family selects this pool too (accelerator.accepts_model).
    family: str = ""
    # How a member shares these devices (Kubernetes members say; see Sharing): "" = not said, whole
    # devices and fractions both (simulated clusters, older agents); "None" = whole devices only;
    # "TimeSlicing"/"MPS" = fractions only; "HAMi" = both; "MIG" = each device is a hardware partition (MIG, Ascend
    # vNPU) worth `unit_milli` of a whole one, serving one replica of at most that much.
    sharing: str = ""
    unit_milli: int = 0
    room_classes: tuple[RoomClass, ...] = ()  # sorted; () = not reported (host_room then)
    # Quota held: whole accelerators free on the nodes but held back by the member's own admission quota (Kueue's
    # ClusterQueue), so not in `nodes_by_free`. Nothing is placed by it; reasons and displays name it, so a user
    # who sees free devices on the member learns why the federator leaves them be. 0 = none, or not said.
    quota_held_accelerators: int = 0
    # The devices installed on the pool's largest node (usable or not), in the pool's units, free or not: what one
    # replica could ever get on one node (scheduler/fleet_fit.py). 0 = not said (an older agent).
    largest_node_accelerators: int = 0

    def serves(self, accelerator_milli: int) -> bool:
        """Whether replicas of `accelerator_milli` (whole devices or a fraction) can run on this pool at all."""
        return sharing_serves(self.sharing, self.unit_milli, accelerator_milli)

    def of_resource(self, resource: str) -> bool:
        """Whether this pool's devices are of the device plugin resource `resource` (a job's one-count form):
        the pool's own, or a partition cut from it (huawei.com/Ascend310P-2c of huawei.com/Ascend310P)."""
        return self.resource_name == resource or (self.sharing == SHARING_MIG
                                                  and self.resource_name.startswith(f"{resource}-"))

    def accelerator_milli_of(self, units: int) -> int:
        """What `units` of this pool's own counts are worth in milli whole devices (`accelerator_milli_of`)."""
        return accelerator_milli_of(self, units)

    @property
    def free_device_milli(self) -> int:
        """What is free in milli whole-device equivalents: `free_milli` with a MIG partition at its share of a
        device (`accelerator_milli_of`), not as a whole one. For a share of use over several pools."""
        return self.accelerator_milli_of(self.free_accelerators) + sum(f * n for f, n in self.shared_devices)

    def device_milli_taken(self, accelerator_milli: int, replicas: int) -> int:
        """What binding `replicas` replicas of `accelerator_milli` each takes from this pool, in milli whole-device
        equivalents: on a MIG pool each replica takes whole partitions (`take_milli`: one for a fraction, else one
        per device asked), each worth `unit_milli`; elsewhere what was asked."""
        return replicas * held_milli(accelerator_milli, partition_worth(self))

    @property
    def key(self) -> tuple[str, str]:
        return (self.vendor, self.accelerator_model)

    @property
    def accelerator_type(self) -> AcceleratorType:
        return AcceleratorType(self.vendor, self.accelerator_model, self.memory_mib, self.resource_name)

    @property
    def free_accelerators(self) -> int:
        """Whole accelerators free (shared accelerators excluded)."""
        return sum(i * n for i, n in enumerate(self.nodes_by_free))

    @property
    def free_milli(self) -> int:
        """Every free milli-device: whole free accelerators and the free part of shared ones."""
        return self.free_accelerators * MILLI + sum(f * n for f, n in self.shared_devices)

    @property
    def nodes(self) -> int:
        return sum(self.nodes_by_free)

    def nodes_with_at_least(self, devices: int) -> int:
        return sum(self.nodes_by_free[max(devices, 0):])

    def gang_capacity(self, accelerators_per_replica: int) -> int:
        """How many replicas of `accelerators_per_replica` whole accelerators fit (several may share a node)."""
        if accelerators_per_replica <= 0:
            return 0
        return _gang_capacity(self.nodes_by_free, accelerators_per_replica)

    def replica_capacity(self, accelerator_milli: int, cpu_milli: int = 0, memory_bytes: int = 0) -> int:
        """How many replicas of `accelerator_milli` milli-GPUs each fit: whole GPUs or a fraction of one.

        With `cpu_milli` / `memory_bytes` and reported room classes (or `host_room`), GPUs count only
        on nodes whose host has room for a replica (and as many replicas as that room holds)."""
        if accelerator_milli <= 0 or not self.serves(accelerator_milli):
            return 0
        if self.sharing == SHARING_MIG and accelerator_milli % MILLI:
            return self.free_accelerators  # one partition per replica
        hist = self.nodes_by_free
        shared = self.shared_devices
        if self.room_classes and (cpu_milli or memory_bytes):
            return _classed_capacity_of(hist, shared, self.room_classes, accelerator_milli, cpu_milli, memory_bytes)
        if cpu_milli or memory_bytes:
            if self.host_room:
                hist = _hosted(hist, self.host_room, cpu_milli, memory_bytes, max(accelerator_milli // MILLI, 1))
            if self.shared_room and accelerator_milli % MILLI:
                roomy = {f for f, c, m in self.shared_room if c >= cpu_milli and m >= memory_bytes}
                shared = tuple((f, n) for f, n in shared if f in roomy)
        if accelerator_milli % MILLI == 0:
            return _gang_capacity(hist, accelerator_milli // MILLI)
        return _fraction_capacity(hist, shared, accelerator_milli)

    def take_milli(
        self, accelerator_milli: int, replicas: int, *, cpu_milli: int = 0, memory_bytes: int = 0, bucket: int = 0
    ) -> AcceleratorPool:
        """The pool after binding `replicas` replicas of `accelerator_milli` each (whole or fractional);
        with the replicas' CPU and memory, the host room of the nodes they land on shrinks too.
        A MIG pool gives each fractional replica a partition of its own. `bucket`: see `after_take`."""
        return self.with_state(*self.after_take(accelerator_milli, replicas, cpu_milli=cpu_milli,
                                                memory_bytes=memory_bytes, bucket=bucket))

    def with_state(self, hist: tuple[int, ...], shared: tuple[tuple[int, int], ...],
                   host_room: tuple[tuple[int, int], ...], shared_room: tuple[tuple[int, int, int], ...],
                   room_classes: tuple[RoomClass, ...]) -> AcceleratorPool:
        """This pool with another free state (`PoolState`), everything else the same. What
        `dataclasses.replace` does, spelled out: a cycle builds a pool per placement, and in the
        compiled build (setup.py) the generic replace is a tenth of the cycle. A test holds it to
        `replace` over every field."""
        return AcceleratorPool(self.accelerator_model, hist, self.total_accelerators, self.allocatable_accelerators,
                               shared, host_room, shared_room, self.vendor, self.memory_mib, self.resource_name,
                               self.family, self.sharing, self.unit_milli, room_classes,
                               self.quota_held_accelerators, self.largest_node_accelerators)

    def after_take(
        self, accelerator_milli: int, replicas: int, *, cpu_milli: int = 0, memory_bytes: int = 0, bucket: int = 0
    ) -> PoolState:
        """What `take_milli` leaves (`PoolState`), without building the pool: a what-if (the
        fragmentation score's) needs only that.

        `bucket` (one fractional replica of a shared pool only) names where it goes instead of best fit:
        `shared_bucket(f)`, a shared device with f milli free, or `whole_bucket(i)`, a whole device of a
        node with i whole devices free; ValueError if that bucket has none that holds it. The
        fragmentation score weighs every bucket, as FGD's node binder weighs every node."""
        whole = self._whole(accelerator_milli, replicas, bucket)
        if self.room_classes:
            hist, shared, classes = self._classed_take(whole, accelerator_milli, replicas, cpu_milli, memory_bytes,
                                                       bucket)
            return hist, shared, self.host_room, self.shared_room, classes.out()
        if whole:
            hist, room = self._take_whole(max(1, accelerator_milli // MILLI), replicas, cpu_milli, memory_bytes)
            return hist, self.shared_devices, room, self.shared_room, ()
        return self._take_fraction(accelerator_milli, replicas, cpu_milli, memory_bytes, bucket)

    def class_moves(
        self, accelerator_milli: int, replicas: int, *, cpu_milli: int = 0, memory_bytes: int = 0, bucket: int = 0
    ) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...], tuple[RoomClass, ...]]:
        """`after_take` of a pool with room classes, its classes given as what the take moved: (nodes_by_free,
        shared_devices, moves), a move being (bucket, CPU, memory, nodes gained) per class whose count
        changed, negative for the nodes that left it. The fragmentation score's what-ifs need only the
        change: a thousand-node pool has up to a thousand classes, and a take moves a few nodes."""
        if not self.room_classes:
            raise ValueError(f"pool {self.accelerator_model} reports no room classes")
        whole = self._whole(accelerator_milli, replicas, bucket)
        hist, shared, classes = self._classed_take(whole, accelerator_milli, replicas, cpu_milli, memory_bytes, bucket)
        return hist, shared, classes.moves()

    def _whole(self, accelerator_milli: int, replicas: int, bucket: int) -> bool:
        """Whether a take binds whole devices (a MIG partition is one); ValueError for a `bucket` it cannot name."""
        whole = accelerator_milli % MILLI == 0 or self.sharing == SHARING_MIG
        if whole and bucket:
            raise ValueError("bucket: only for a fractional replica of a shared pool")
        if bucket and replicas != 1:
            raise ValueError(f"bucket: only for one replica, not {replicas}")
        return whole

    def _classed_take(self, whole: bool, milli: int, replicas: int, cpu: int, mem: int, bucket: int
                      ) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...], _Classes]:
        classes = _Classes(self.room_classes, self.nodes_by_free, self.shared_devices, cpu, mem)
        if whole:
            return classes.take_whole(max(1, milli // MILLI), replicas, self.accelerator_model), \
                self.shared_devices, classes
        hist, shared = classes.take_fraction(milli, replicas, bucket, self.accelerator_model)
        return hist, shared, classes

    def take(
        self, accelerators_per_replica: int, replicas: int, *, cpu_milli: int = 0, memory_bytes: int = 0
    ) -> AcceleratorPool:
        """The pool after binding `replicas` replicas, best fit: fullest nodes first.

        Best fit keeps nodes with many free accelerators whole for large gangs, and it
        is what the agent does too, so the federator's view stays close to the
        cluster's.
        """
        return self.with_state(*self.after_take(accelerators_per_replica * MILLI, replicas, cpu_milli=cpu_milli,
                                                memory_bytes=memory_bytes))

    def _take_whole(self, accelerators_per_replica: int, replicas: int, cpu_milli: int,
                    memory_bytes: int) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
        """`take`'s (nodes_by_free, host_room)."""
        counts = list(self.nodes_by_free)
        room = _Room(self, cpu_milli, memory_bytes)
        left = replicas
        g = accelerators_per_replica
        for free in range(g, len(counts)):
            if not left:
                break
            if not room.hosts(free, 1):
                continue  # no node of this bucket has the CPU or memory for a replica
            per_node = min(free // g, room.fits(free))
            whole = min(counts[free], left // per_node)  # nodes that take per_node replicas each
            counts[free] -= whole
            counts[free - per_node * g] += whole
            if whole:
                room.move(free, free - per_node * g, per_node)
            left -= whole * per_node
            if left and counts[free]:  # one more node takes the rest (fewer than per_node)
                counts[free] -= 1
                counts[free - left * g] += 1
                room.move(free, free - left * g, left)
                left = 0
        if left:
            raise ValueError(
                f"{replicas} x {accelerators_per_replica} GPUs do not fit in pool {self.accelerator_model}"
            )
        return tuple(counts), room.whole_room()

    def _take_fraction(self, milli: int, replicas: int, cpu: int = 0, mem: int = 0, bucket: int = 0) -> PoolState:
        """Best fit for fractional replicas: the fullest shared GPU that fits, then whole GPUs
        from the node with the fewest whole GPUs free (filling one GPU before the next); only
        `bucket` when one is named (`after_take`). Returns `after_take`'s tuple."""
        shared = dict(self.shared_devices)
        room = _Room(self, cpu, mem)
        left = replicas
        for free in sorted(shared) if bucket <= 0 else ():
            if free < milli or not room.shared_hosts(free) or (bucket and free != -bucket):
                continue
            while left and shared.get(free, 0):
                per = min(free // milli, left)
                shared[free] -= 1
                rest = free - per * milli
                host = room.shared_of(free)
                if rest:
                    shared[rest] = shared.get(rest, 0) + 1
                    room.share(host, rest, per)
                if host is not None and room.shared is not None:  # the rest of the bucket: see _Room
                    room.shared[free] = (max(0, host[0] - cpu * per), max(0, host[1] - mem * per))
                left -= per
            if not left:
                break
        counts = list(self.nodes_by_free)
        per_gpu = MILLI // milli
        for free in range(1, len(counts)) if bucket >= 0 else ():
            if not room.hosts(free, 1) or (bucket and free != bucket):
                continue
            while left and counts[free]:
                gpus = min(free, -(-left // per_gpu), -(-room.fits(free) // per_gpu))  # GPUs the rest needs
                counts[free] -= 1
                counts[free - gpus] += 1
                on_node = min(left, gpus * per_gpu, room.fits(free))
                host = room.move(free, free - gpus, on_node)
                full_rest = MILLI - per_gpu * milli  # left on each GPU filled to per_gpu replicas
                last = left - (gpus - 1) * per_gpu if left < gpus * per_gpu else per_gpu
                last_rest = MILLI - last * milli
                if full_rest and gpus > 1:
                    shared[full_rest] = shared.get(full_rest, 0) + gpus - 1
                    room.share(host, full_rest, 0)
                if last_rest:
                    shared[last_rest] = shared.get(last_rest, 0) + 1
                    room.share(host, last_rest, 0)
                left -= on_node
            if not left:
                break
        if left:
            raise ValueError(f"{replicas} x {milli}m GPU do not fit in pool {self.accelerator_model}")
        return (tuple(counts), tuple(sorted((f, n) for f, n in shared.items() if n)), room.whole_room(),
                room.shared_room(shared), ())

    def release_milli(self, accelerator_milli: int, replicas: int) -> AcceleratorPool:
        """An estimate of the pool after `replicas` replicas of `accelerator_milli` leave (for what-if
        planning such as preemption). The histogram does not say which nodes they sat on, so
        the GPUs go back to the nodes with the fewest free GPUs: the pessimistic guess for
        gangs. The agent's next report replaces the estimate with the truth. Host room and room
        classes are dropped (not known after a release), so the estimate does not check them."""
        counts = list(self.nodes_by_free)
        top = len(counts) - 1
        if accelerator_milli % MILLI == 0:
            g = accelerator_milli // MILLI
            for _ in range(replicas):
                for free in range(0, top - g + 1):
                    if counts[free]:
                        counts[free] -= 1
                        counts[free + g] += 1
                        break
            return self.with_state(tuple(counts), self.shared_devices, (), (), ())
        shared = dict(self.shared_devices)
        for _ in range(replicas):
            base = next((f for f in sorted(shared) if shared[f] and f + accelerator_milli <= MILLI), None)
            if base is None:
                continue
            shared[base] -= 1
            if base + accelerator_milli < MILLI:
                shared[base + accelerator_milli] = shared.get(base + accelerator_milli, 0) + 1
            else:
                emptiest = next((f for f in range(top) if counts[f]), None)
                if emptiest is not None:
                    counts[emptiest] -= 1
                    counts[emptiest + 1] += 1
        return self.with_state(tuple(counts), tuple(sorted((f, n) for f, n in shared.items() if n)), (), (), ())




BUILTIN_WORKLOAD_KINDS = frozenset({"Job.batch", "Deployment.apps", "StatefulSet.apps"})
"""Workload kinds every Kubernetes cluster serves: what a cluster that advertises no kinds runs."""
WORKLOAD_KINDS = BUILTIN_WORKLOAD_KINDS | frozenset({
    "JobSet.jobset.x-k8s.io", "LeaderWorkerSet.leaderworkerset.x-k8s.io", "TrainJob.trainer.kubeflow.org",
    "PyTorchJob.kubeflow.org", "RayJob.ray.io"})
"""Every kind a FederatedJob's spec.workload may be ("Kind.group"); a simulated cluster runs them all."""




#: Why an agent leaves devices out of its report (agent.proto LeftOutDevices.reason).
LEFT_OUT_REASONS = ("unlabelled", "unsupported")

#: The most left-out entries a report may carry (one per resource and reason: a fleet of many vendors fits).
MAX_LEFT_OUT = 64


@dataclass(frozen=True, slots=True)
class ClusterCapacity:
    accelerator_pools: tuple[AcceleratorPool, ...] = ()
    cpu_milli_allocatable: int = 0
    cpu_milli_free: int = 0
    memory_bytes_allocatable: int = 0
    memory_bytes_free: int = 0
    node_cpu_milli_free_max: int = 0
    node_memory_bytes_free_max: int = 0
    sequence: int = 0
    placement_ids: frozenset[str] = frozenset()
    workload_kinds: frozenset[str] = frozenset()  # "Kind.group" it can run; empty = BUILTIN_WORKLOAD_KINDS
    node_room: NodeRoom = ()  # every node's free CPU and memory by class (model/node_room.py); () = not reported
    # Devices the agent sees but does not offer, as sorted (resource_name, reason, devices): shown, never placed on
    # (agent.proto LeftOutDevices; reasons LEFT_OUT_REASONS)
    left_out: tuple[tuple[str, str, int], ...] = ()
    # The most allocatable CPU and memory of any one node, usable or not, free or not (each its own maximum): what
    # one replica could ever get on one node (scheduler/fleet_fit.py, agent.proto). 0 = not said (an older agent).
    largest_node_cpu_milli: int = 0
    largest_node_memory_bytes: int = 0

    def after_bind(self, accelerator_pools: tuple[AcceleratorPool, ...], cpu_milli_free: int,
                   memory_bytes_free: int, node_cpu_milli_free_max: int, node_memory_bytes_free_max: int,
                   node_room: NodeRoom | None = None) -> ClusterCapacity:
        """This capacity with other pools and free CPU and memory (and node room; None: the same), the rest the
        same: what a reservation or a release changes (snapshot.py), without the generic `dataclasses.replace`
        (see AcceleratorPool.with_state)."""
        return ClusterCapacity(accelerator_pools, self.cpu_milli_allocatable, cpu_milli_free,
                               self.memory_bytes_allocatable, memory_bytes_free, node_cpu_milli_free_max,
                               node_memory_bytes_free_max, self.sequence, self.placement_ids, self.workload_kinds,
                               self.node_room if node_room is None else node_room, self.left_out,
                               self.largest_node_cpu_milli, self.largest_node_memory_bytes)

    def runs(self, workload_kind: str) -> bool:
        """Whether the cluster can run a workload of this kind ("" = the federator's own Job/Deployment)."""
        return not workload_kind or workload_kind in (self.workload_kinds or BUILTIN_WORKLOAD_KINDS)

    def pool(self, accelerator_model: str, vendor: str | None = None) -> AcceleratorPool | None:
        """The pool of a model (of `vendor`, when given: pools are keyed by (vendor, model))."""
        for pool in self.accelerator_pools:
            if pool.accelerator_model == accelerator_model and (vendor is None or pool.vendor == vendor):
                return pool
        return None

    def by_vendor(self) -> dict[str, tuple[int, int]]:
        """vendor -> (free, total) accelerator milli, sorted by vendor: the per-vendor capacity users see."""
        return vendor_totals(self.accelerator_pools)

    # Whole-device equivalents over every pool, in milli (`accelerator_milli_of`): the totals people read. The
    # `*_accelerators` sums below add each pool's own units (a MIG partition as one), for checks on what an
    # agent reported, never for display.
    @property
    def total_accelerator_milli(self) -> int:
        return accelerator_milli_totals(self.accelerator_pools)[1]

    @property
    def free_accelerator_milli(self) -> int:
        """Whole free devices (and free MIG partitions), shared ones excluded, as `free_accelerators`."""
        return accelerator_milli_totals(self.accelerator_pools)[0]

    @property
    def quota_held_accelerator_milli(self) -> int:
        return accelerator_milli_totals(self.accelerator_pools)[2]

    @property
    def total_accelerators(self) -> int:
        return sum(p.total_accelerators for p in self.accelerator_pools)

    @property
    def allocatable_accelerators(self) -> int:
        return sum(p.allocatable_accelerators for p in self.accelerator_pools)

    @property
    def free_accelerators(self) -> int:
        return sum(p.free_accelerators for p in self.accelerator_pools)

    @property
    def quota_held_accelerators(self) -> int:
        """Free accelerators the member's own quota holds back, over every pool (AcceleratorPool)."""
        return sum(p.quota_held_accelerators for p in self.accelerator_pools)


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """One member cluster as the scheduler sees it in a snapshot."""

    name: str
    region: str
    state: ClusterState = ClusterState.READY
    labels: tuple[tuple[str, str], ...] = ()
    capacity: ClusterCapacity = field(default_factory=ClusterCapacity)

    def with_capacity(self, capacity: ClusterCapacity) -> ClusterInfo:
        """This cluster with another capacity (see AcceleratorPool.with_state)."""
        return ClusterInfo(self.name, self.region, self.state, self.labels, capacity)

    @property
    def price_per_accelerator_hour(self) -> float | None:
        labels = dict(self.labels)
        raw = labels.get(PRICE_LABEL, labels.get(_OLD_PRICE_LABEL))
        return parse_price(raw) if raw is not None else None


def left_out_text(left_out: Iterable[tuple[str, str, int]]) -> str:
    """A capacity's left-out devices (ClusterCapacity.left_out) in one line, "nvidia.com/gpu 8 unlabelled, ...", or ""
    for none: the words `federator get clusters -o wide` (LEFT OUT) and a MemberCluster's status.leftOut (its
    Left-Out column) both show, so the two views of why a cluster offers less than its nodes hold read alike."""
    return ", ".join(f"{resource} {devices} {reason}" for resource, reason, devices in left_out)
