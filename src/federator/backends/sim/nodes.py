"""A set of simulated nodes: binds replicas to nodes and accelerators, and reports a resource model.

Pure and synchronous, so the asyncio agent backend and the discrete-event
simulator share it. Each accelerator of a node is tracked in milli-devices, so
fractional replicas (accelerator sharing) pack onto shared accelerators. Nodes are indexed by
whole free accelerators and shared accelerators by free milli-devices, so a best-fit bind costs
about the same with ten nodes or ten thousand.

`fit` chooses the node: "fgd" (the default: the node and GPUs where the
expected fragmentation under recent requests grows least, `fgd.py`), "best"
(fewest free GPUs that suffice), or the "first" / "random" baselines the
quality benchmarks compare against.

A pool (the nodes of one model) shares its accelerators as the fleet file says (`sharing`, fleet.py) and
binds only what that serves, as a member of that kind does: TimeSlicing or MPS fractions only, None whole
accelerators only, MIG one partition per replica of at most its `unitMilli` (or one per accelerator asked).
The capacity report says it (AcceleratorPool.sharing, unit_milli), so the federator sends it nothing else.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from federator.backends.sim.fgd import DemandLearner, FgdIndex, Workload
from federator.backends.sim.fleet import NodeSpec
from federator.backends.sim.pool_names import pool_kind
from federator.model import MILLI, WORKLOAD_KINDS, AcceleratorPool, ClusterCapacity, Resources
from federator.model.cluster import SHARING_MIG, sharing_serves
from federator.model.node_room import node_room_of
from federator.model.pool_room import one_node_room, room_classes
from federator.scheduler.framework import model_matches

FITS = ("fgd", "best", "first", "random")


@dataclass(slots=True)
class _Node:
    spec: NodeSpec
    free_cpu_milli: int
    free_memory_bytes: int
    used: list[int]  # milli-devices in use on each accelerator of the node
    whole_free: int = 0

    @property
    def free_accelerators(self) -> int:
        return self.whole_free

    @property
    def model(self) -> str:
        return self.spec.accelerator_model


@dataclass(frozen=True, slots=True)
class _Bound:
    node: int
    slots: tuple[int, ...]
    milli: int  # per slot
    cpu_milli: int
    memory_bytes: int


@dataclass(slots=True)
class NodeSet:
    """Nodes of one simulated cluster and which replicas sit where."""

    nodes: list[_Node]
    fit: str = "fgd"
    seed: int = 0
    bound: dict[str, list[_Bound]] = field(default_factory=dict)  # placement -> where its replicas sit
    _by_free: dict[str, list[dict[int, None]]] = field(default_factory=dict)  # model -> [whole free] -> nodes
    _shared: dict[str, dict[int, dict[tuple[int, int], None]]] = field(default_factory=dict)  # model -> free
    _of_model: dict[str, list[int]] = field(default_factory=dict)
    _sharing: dict[str, tuple[str, int]] = field(default_factory=dict)  # model -> (sharing, unit milli) as said
    _rng: random.Random = field(default_factory=random.Random)
    _cpu_free: int = 0
    _mem_free: int = 0
    _fgd: FgdIndex | None = None
    _learner: DemandLearner | None = None
    _learns: bool = True  # False: the learner is shared and fed by its owner (the simulator), not by binds
    _learned: int = 0  # the learner version the FGD index was built at
    # capacity()'s pool per model, dropped when a replica comes or goes on a node of that model: a bind moves
    # one model's pool, so a cluster of four models rebuilds one, not four (a national replay asks every
    # changed cluster's capacity each cycle: outside planners' QA P13)
    _pools: dict[str, AcceleratorPool] = field(default_factory=dict)

    @classmethod
    def of(cls, specs: Iterable[NodeSpec], *, fit: str = "fgd", seed: int = 0,
           workload: Workload | None = None, learner: DemandLearner | None = None) -> NodeSet:
        """Nodes from specs. With fit "fgd", `workload` is FGD's target workload; without one the
        set learns it from the requests it is asked to bind (the recent requests), or, given a
        `learner`, from what its owner feeds that learner (the simulator feeds one learner the work
        offered to the whole federation, so every cluster binds for the fleet's workload, as the
        node-level FGD baseline does, not for the slice the federator happened to route to it)."""
        if fit not in FITS:
            raise ValueError(f"fit: must be one of {', '.join(FITS)}, got {fit!r}")
        nodes = [
            _Node(
                s,
                s.cpu_milli - s.busy_cpu_milli,
                s.memory_bytes - s.busy_memory_bytes,
                [MILLI] * s.busy_accelerators + [0] * (s.accelerators - s.busy_accelerators),
                s.accelerators - s.busy_accelerators,
            )
            for s in specs
        ]
        out = cls(nodes, fit=fit, seed=seed, _rng=random.Random(seed))
        for i, n in enumerate(nodes):
            model = n.spec.accelerator_model
            out._of_model.setdefault(model, []).append(i)
            if model and n.spec.sharing:
                out._sharing.setdefault(model, (n.spec.sharing, n.spec.unit_milli))
            out._cpu_free += n.free_cpu_milli
            out._mem_free += n.free_memory_bytes
            if model:
                out._bucket(model, n.whole_free)[i] = None
        if fit == "fgd":
            if workload is None:
                out._learner = learner if learner is not None else DemandLearner()
                out._learns = learner is None
                out._learned = out._learner.version
                workload = out._learner.workload(out.models(), model_matches) if out._learner.count else Workload()
            out._fgd = FgdIndex(out.nodes, workload)
        return out

    def models(self) -> list[str]:
        """GPU models of the set's nodes, in node order of first appearance."""
        return [m for m in self._of_model if m]

    # -- binding ----------------------------------------------------------

    def bind(self, key: str, *, replicas: int, resources: Resources, accelerator_model: str,
             wanted: tuple[str, ...] = (), parts: tuple[tuple[int, Resources], ...] = ()) -> str | None:
        """Bind every replica or none. Returns why not, or None.

        `parts`: (pods, per-pod resources) of a gang of unequal pod sets, bound set by set under `key` instead of
        `replicas` x `resources` (model/pod_sets.py).

        `wanted` is the job's own list of accepted models (() = any): FGD learns the recent
        requests from it. `accelerator_model` may be "*" to let the node policy choose among the
        models `wanted` accepts (node-level baselines over one cluster).
        """
        if key in self.bound:
            return None
        if parts:
            held: list[_Bound] = []
            for pods, each in parts:
                why = self.bind(key, replicas=pods, resources=each, accelerator_model=accelerator_model, wanted=wanted)
                if why is not None:
                    for b in reversed(held):
                        self._give(b)
                    return why
                held += self.bound.pop(key)
            self.bound[key] = held
            return None
        self._observe(resources, wanted)
        models = self._accepted(wanted) if accelerator_model == "*" else [accelerator_model]
        if resources.accelerator_milli:
            shared = self._shared_as(resources, models)
            if isinstance(shared, str):
                return f"{replicas} x {resources.accelerator_milli}m accelerator on {'|'.join(models)}: {shared}"
            resources, models = shared
        taken: list[_Bound] = []
        for _ in range(replicas):
            spot = self._choose_among(resources, models)
            if spot is None:
                for b in reversed(taken):
                    self._give(b)
                what = f"{resources.accelerator_milli}m accelerator" if resources.accelerator_milli else "CPU"
                return (f"{replicas} x ({what}, {resources.cpu_milli}m CPU, {resources.memory_bytes} bytes) on "
                        f"{'|'.join(models) or 'CPU'} nodes do not fit")
            node, slots = spot
            milli = MILLI if resources.accelerator_milli % MILLI == 0 else resources.accelerator_milli
            b = _Bound(node, slots, milli, resources.cpu_milli, resources.memory_bytes)
            self._take(b)
            taken.append(b)
        self.bound[key] = taken
        return None

    def _shared_as(self, r: Resources, models: list[str]) -> tuple[Resources, list[str]] | str:
        """The request as the pools of `models` bind it, and those of them that serve it (their `sharing`); why
        none does when none does. A MIG partition is taken whole: a fraction of at most its worth takes one.
        Among several models (a node-level baseline's "*"), a fraction leaves MIG pools out: it cannot be a
        partition on one and a fraction on another."""
        fractional = r.accelerator_milli % MILLI != 0
        serving = [m for m in models if sharing_serves(*self._sharing.get(m, ("", 0)), r.accelerator_milli)
                   and not (fractional and len(models) > 1 and self._sharing.get(m, ("", 0))[0] == SHARING_MIG)]
        if not serving:
            said = {self._sharing.get(m, ("", 0)) for m in models}
            return "; ".join(sorted(_serves_only(sharing, unit) for sharing, unit in said))
        if fractional and self._sharing.get(serving[0], ("", 0))[0] == SHARING_MIG:
            r = replace(r, accelerator_milli=MILLI)  # one partition, whole
        return r, serving

    def nodes_of(self, key: str) -> tuple[tuple[str, int], ...]:
        """(node name, replicas there) of a bound placement, in node order: what the agent says as JobUpdate.nodes."""
        on: dict[int, int] = {}
        for b in self.bound.get(key, []):
            on[b.node] = on.get(b.node, 0) + 1
        return tuple((self.nodes[i].spec.name, n) for i, n in sorted(on.items()))

    def shrink(self, key: str, replicas: int) -> None:
        """Keep the first `replicas` replicas of a bound placement and free the others' room."""
        taken = self.bound.get(key)
        if taken is None or not 0 < replicas < len(taken):
            return
        for b in reversed(taken[replicas:]):
            self._give(b)
        self.bound[key] = taken[:replicas]

    def unbind(self, key: str) -> None:
        for b in reversed(self.bound.pop(key, [])):
            self._give(b)

    def _observe(self, r: Resources, wanted: tuple[str, ...]) -> None:
        learner = self._learner
        if learner is None or self._fgd is None:
            return
        if self._learns:
            learner.observe(r, wanted)
        if learner.version != self._learned:
            self._learned = learner.version
            self._fgd = FgdIndex(self.nodes, learner.workload(self.models(), model_matches))

    def _accepted(self, wanted: tuple[str, ...]) -> list[str]:
        models = self.models()
        if not wanted:
            return models
        return [m for m in models if any(model_matches(w, m) for w in wanted)]

    def _choose_among(self, r: Resources, models: list[str]) -> tuple[int, tuple[int, ...]] | None:
        if r.accelerator_milli and not models:
            return None
        if r.accelerator_milli == 0 or len(models) == 1:
            return self._choose(r, models[0] if models else "")
        if self.fit == "fgd" and self._fgd is not None:
            return self._fgd.choose(r, models)
        if self.fit in ("first", "random"):
            accept = set(models)
            if self.fit == "random":  # a few random draws find a spot cheaply until the fleet is nearly full
                for i in self._rng.choices(range(len(self.nodes)), k=32):
                    if self.nodes[i].model in accept:
                        got = next(self._spots(i, r), None)
                        if got is not None:
                            return got
            spots = (s for i, n in enumerate(self.nodes) if n.model in accept
                     for s in self._spots(i, r))
            if self.fit == "first":
                return next(spots, None)
            found = list(spots)
            return self._rng.choice(found) if found else None
        best: tuple[tuple[int, int], tuple[int, tuple[int, ...]]] | None = None
        for m in models:  # best fit across models: the fullest GPU (fraction) or node (whole GPUs)
            spot = self._choose(r, m)
            if spot is not None:
                n = self.nodes[spot[0]]
                key = (MILLI - n.used[spot[1][0]], 0) if r.is_fractional_accelerator else (n.whole_free, 0)
                if best is None or key < best[0]:
                    best = (key, spot)
        return best[1] if best else None

    def _fits_host(self, n: _Node, r: Resources) -> bool:
        return n.free_cpu_milli >= r.cpu_milli and n.free_memory_bytes >= r.memory_bytes

    def _choose(self, r: Resources, model: str) -> tuple[int, tuple[int, ...]] | None:
        if r.accelerator_milli == 0:
            return self._choose_cpu(r)
        if model not in self._of_model:
            return None
        whole = r.accelerator_milli % MILLI == 0
        g = r.accelerator_milli // MILLI
        if self.fit == "fgd" and self._fgd is not None:
            return self._fgd.choose(r, (model,))
        if self.fit != "best":
            spots = self._scan(r, model)
            if self.fit == "first":
                return next(spots, None)
            found = list(spots)
            return self._rng.choice(found) if found else None
        nodes = self.nodes
        if not whole:
            shared = self._shared.get(model, {})
            for free in sorted(shared):
                if free < r.accelerator_milli:
                    continue
                for i, slot in shared[free]:
                    if self._fits_host(nodes[i], r):
                        return i, (slot,)
            g = 1
        buckets = self._by_free[model]
        for k in range(g, len(buckets)):
            for i in buckets[k]:
                n = nodes[i]
                if self._fits_host(n, r):
                    return i, self._free_slots(n, g)
        return None

    def _scan(self, r: Resources, model: str) -> Iterator[tuple[int, tuple[int, ...]]]:
        """Every spot in node order (the first-fit and random-fit baselines)."""
        for i in self._of_model.get(model, []):
            yield from self._spots(i, r)

    def _spots(self, i: int, r: Resources) -> Iterator[tuple[int, tuple[int, ...]]]:
        """Node `i`'s first spot for one replica of `r`, if it has one."""
        n = self.nodes[i]
        if r.accelerator_milli % MILLI == 0:
            if n.whole_free >= r.accelerator_milli // MILLI and self._fits_host(n, r):
                yield i, self._free_slots(n, r.accelerator_milli // MILLI)
        elif self._fits_host(n, r):
            slot = next((s for s, u in enumerate(n.used) if MILLI - u >= r.accelerator_milli), None)
            if slot is not None:
                yield i, (slot,)

    def _choose_cpu(self, r: Resources) -> tuple[int, tuple[int, ...]] | None:
        if self.fit in ("first", "random"):
            spots = [i for i, n in enumerate(self.nodes) if self._fits_host(n, r)]
            if not spots:
                return None
            return (spots[0] if self.fit == "first" else self._rng.choice(spots)), ()
        for i in self._of_model.get(
            "", []
        ):  # CPU-only nodes first, then accelerator nodes with the fewest free accelerators
            if self._fits_host(self.nodes[i], r):
                return i, ()
        if self.fit == "fgd" and self._fgd is not None:  # ... or, with FGD, that strand the fewest GPUs
            return self._fgd.choose(r, self.models())
        depth = max((len(b) for b in self._by_free.values()), default=0)
        for k in range(depth):
            for buckets in self._by_free.values():
                if k < len(buckets):
                    for i in buckets[k]:
                        if self._fits_host(self.nodes[i], r):
                            return i, ()
        return None

    @staticmethod
    def _free_slots(n: _Node, g: int) -> tuple[int, ...]:
        return tuple([s for s, u in enumerate(n.used) if u == 0][:g])

    def _bucket(self, model: str, k: int) -> dict[int, None]:
        buckets = self._by_free.setdefault(model, [{} for _ in range(9)])
        while len(buckets) <= k:
            buckets.append({})
        return buckets[k]

    def _set_used(self, i: int, slot: int, used: int) -> None:
        n = self.nodes[i]
        model = n.spec.accelerator_model
        old = n.used[slot]
        shared = self._shared.setdefault(model, {})
        if 0 < old < MILLI:
            spots = shared[MILLI - old]
            del spots[(i, slot)]
            if not spots:
                del shared[MILLI - old]
        if 0 < used < MILLI:
            shared.setdefault(MILLI - used, {})[(i, slot)] = None
        n.used[slot] = used

    def _move(self, i: int, old_free: int, new_free: int) -> None:
        model = self.nodes[i].spec.accelerator_model
        if model and old_free != new_free:
            del self._bucket(model, old_free)[i]
            self._bucket(model, new_free)[i] = None

    def _take(self, b: _Bound) -> None:
        n = self.nodes[b.node]
        self._pools.pop(n.spec.accelerator_model, None)
        before = n.whole_free
        for s in b.slots:
            if n.used[s] == 0:
                n.whole_free -= 1
            self._set_used(b.node, s, n.used[s] + b.milli)
        self._move(b.node, before, n.whole_free)
        n.free_cpu_milli -= b.cpu_milli
        n.free_memory_bytes -= b.memory_bytes
        self._cpu_free -= b.cpu_milli
        self._mem_free -= b.memory_bytes
        if self._fgd is not None and n.model:
            self._fgd.update(b.node)

    def _give(self, b: _Bound) -> None:
        n = self.nodes[b.node]
        self._pools.pop(n.spec.accelerator_model, None)
        before = n.whole_free
        for s in b.slots:
            self._set_used(b.node, s, n.used[s] - b.milli)
            if n.used[s] == 0:
                n.whole_free += 1
        self._move(b.node, before, n.whole_free)
        n.free_cpu_milli += b.cpu_milli
        n.free_memory_bytes += b.memory_bytes
        self._cpu_free += b.cpu_milli
        self._mem_free += b.memory_bytes
        if self._fgd is not None and n.model:
            self._fgd.update(b.node)

    # -- reporting --------------------------------------------------------

    def accelerator_milli_used(self, *, model: str | None = None) -> int:
        """Milli whole devices allocated (busy accelerators included): the simulator's ground truth, in the live
        federator's unit (`model.sharing.accelerator_milli_of`): a taken MIG partition or vNPU counts its worth
        (`unitMilli`), not a whole device, so a full pool of 1g.10gb partitions is full, not 12.5 % used.
        `model`: of that accelerator model's nodes only (the simulator's per-model figures)."""
        return sum(sum(n.used) * _worth(n.spec) // MILLI for n in self._nodes_of(model))

    def accelerator_milli_total(self, *, model: str | None = None) -> int:
        """Milli whole devices installed, a partition at its worth: 56 1g.10gb partitions are 7 devices, as
        `get clusters`, federator_cluster_accelerators and `federator usage` count them. `model`: of that
        accelerator model's nodes only."""
        return sum(n.spec.accelerators * _worth(n.spec) for n in self._nodes_of(model))

    def _nodes_of(self, model: str | None) -> Iterator[_Node]:
        """Every node (None), or those of one accelerator model (none for a model the set has not)."""
        if model is None:
            return iter(self.nodes)
        return (self.nodes[i] for i in self._of_model.get(model, ()))

    def _room(self, node: int) -> tuple[int, int]:
        n = self.nodes[node]
        return n.free_cpu_milli, n.free_memory_bytes

    def capacity(self, *, sequence: int = 0) -> ClusterCapacity:
        pools = []
        for model in sorted(self._by_free):
            cached = self._pools.get(model)
            if cached is not None:
                pools.append(cached)
                continue
            idx = self._of_model.get(model, [])
            total = sum(self.nodes[i].spec.accelerators for i in idx)
            hist = [len(b) for b in self._by_free[model]]
            shared = tuple(sorted((f, len(s)) for f, s in self._shared.get(model, {}).items() if s))
            room = [one_node_room(self._room(i) for i in bucket) for bucket in self._by_free[model]]
            shared_room = tuple(sorted(
                (f, *one_node_room(self._room(i) for i, _ in spots))
                for f, spots in self._shared.get(model, {}).items() if spots))
            classes = room_classes(
                ((free, *self._room(i)) for free, bucket in enumerate(self._by_free[model]) for i in bucket),
                ((f, *self._room(i)) for f, spots in self._shared.get(model, {}).items() for i, _ in spots))
            kind = pool_kind(model, self.nodes[idx[0]].spec.vendor if idx else "")  # a vNPU pool as a member says it
            sharing, unit_milli = self._sharing.get(model, ("", 0))
            pools.append(AcceleratorPool(model, tuple(hist), total, total, shared, tuple(room), shared_room,
                                         vendor=kind.vendor,
                                         memory_mib=(self.nodes[idx[0]].spec.accelerator_memory_mib if idx else 0)
                                         or kind.memory_mib,
                                         resource_name=kind.resource_name, family=kind.family,
                                         sharing=sharing, unit_milli=unit_milli, room_classes=classes,
                                         largest_node_accelerators=max(
                                             (self.nodes[i].spec.accelerators for i in idx), default=0)))
            self._pools[model] = pools[-1]
        return ClusterCapacity(
            accelerator_pools=tuple(pools),
            cpu_milli_allocatable=sum(n.spec.cpu_milli for n in self.nodes),
            cpu_milli_free=self._cpu_free,
            memory_bytes_allocatable=sum(n.spec.memory_bytes for n in self.nodes),
            memory_bytes_free=self._mem_free,
            node_cpu_milli_free_max=max((n.free_cpu_milli for n in self.nodes), default=0),
            node_memory_bytes_free_max=max((n.free_memory_bytes for n in self.nodes), default=0),
            largest_node_cpu_milli=max((n.spec.cpu_milli for n in self.nodes), default=0),
            largest_node_memory_bytes=max((n.spec.memory_bytes for n in self.nodes), default=0),
            sequence=sequence,
            placement_ids=frozenset(self.bound),
            workload_kinds=WORKLOAD_KINDS,  # a simulated cluster runs any kind's pod sets
            node_room=node_room_of((n.free_cpu_milli, n.free_memory_bytes) for n in self.nodes),
        )


def _worth(spec: NodeSpec) -> int:
    """What one of a node's accelerators is worth in milli whole devices: a partition (sharing MIG) its
    `unitMilli`, any other device 1000. A partition's slot is taken whole (MILLI used), never in part."""
    return spec.unit_milli if spec.sharing == SHARING_MIG and spec.unit_milli > 0 else MILLI


def _serves_only(sharing: str, unit_milli: int) -> str:
    """What a pool that shares as `sharing` runs, in a refusal's words."""
    if sharing == SHARING_MIG:
        return f"its accelerators are MIG partitions of {unit_milli}m, each for one replica of at most that"
    if sharing in ("TimeSlicing", "MPS"):
        return f"its accelerators are shared by {sharing}, which runs fractions only (such as 500m)"
    return f"its accelerators are not shared (sharing {sharing or 'not said'}): whole accelerators only"
