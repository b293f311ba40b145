"""Properties over random fleets and workloads: no cluster over-committed, no quota exceeded,
gangs all-or-nothing in one cluster, spread jobs all-or-nothing."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenarios import A100, H100, L40S, spec

from federator.model import AcceleratorPool, ClusterCapacity, ClusterInfo, JobId, JobKind
from federator.scheduler import (
    Allocation,
    PlacementRequest,
    QueueConfig,
    Quota,
    Scheduler,
    SchedulerConfig,
    Snapshot,
    model_matches,
)

MODELS = (H100, A100, L40S)
GiB = 2**30


@st.composite
def pools(draw: st.DrawFn, model: str) -> AcceleratorPool:
    hist = draw(st.lists(st.integers(0, 4), min_size=9, max_size=9))
    shared = draw(st.lists(st.tuples(st.integers(1, 999), st.integers(1, 3)), max_size=3, unique_by=lambda t: t[0]))
    nodes = sum(hist)
    return AcceleratorPool(model, tuple(hist), nodes * 8, nodes * 8, tuple(sorted(shared)))


@st.composite
def clusters(draw: st.DrawFn, i: int) -> ClusterInfo:
    models = draw(st.lists(st.sampled_from(MODELS), min_size=0, max_size=2, unique=True))
    cpu = draw(st.integers(0, 400)) * 1000
    mem = draw(st.integers(0, 4000)) * GiB
    cap = ClusterCapacity(accelerator_pools=tuple(draw(pools(m)) for m in models), cpu_milli_allocatable=cpu,
                          cpu_milli_free=cpu, memory_bytes_allocatable=mem, memory_bytes_free=mem,
                          node_cpu_milli_free_max=min(cpu, 128_000), node_memory_bytes_free_max=min(mem, 1024 * GiB))
    return ClusterInfo(f"c{i}", f"r{draw(st.integers(0, 2))}", capacity=cap)


gpu_sizes = st.sampled_from([0, 250, 500, 1000, 2000, 4000, 8000])


@st.composite
def jobs(draw: st.DrawFn, i: int) -> PlacementRequest:
    kind = draw(st.sampled_from([JobKind.TRAINING, JobKind.INFERENCE]))
    replicas = draw(st.integers(1, 6))
    gpus = draw(gpu_sizes) / 1000
    s = spec(f"j{i}", kind=kind, replicas=replicas, gpus=gpus, cpu=draw(st.integers(1, 64)),
             memory_gib=draw(st.integers(1, 256)), queue=draw(st.sampled_from(["a", "b", "c"])),
             priority=draw(st.integers(0, 2)),
             models=tuple(draw(st.lists(st.sampled_from(["H100", "A100", "L40S"]), max_size=2, unique=True)))
             if gpus else ())
    return PlacementRequest(JobId(s.name), s, replicas, float(i))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Snapshot, list[PlacementRequest], SchedulerConfig]:
    n = draw(st.integers(0, 5))
    snap = Snapshot.of([draw(clusters(i)) for i in range(n)])
    reqs = [draw(jobs(i)) for i in range(draw(st.integers(0, 25)))]
    quota = Quota(
        accelerator_milli={"H100": draw(st.integers(0, 64)) * 1000}, cpu_milli=draw(st.integers(0, 500)) * 1000
    )
    cfg = SchedulerConfig(queues={"a": QueueConfig(weight=1, quota=quota), "c": QueueConfig(weight=2)})
    return snap, reqs, cfg


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_placements_respect_capacity_quota_and_gangs(scenario: tuple) -> None:  # type: ignore[type-arg]
    snap, reqs, cfg = scenario
    result = Scheduler(cfg).schedule(snap, reqs)
    by_id = {r.job_id: r for r in reqs}
    before = {c.name: c.capacity for c in snap.clusters}
    used_gpu: dict[tuple[str, str], int] = defaultdict(int)
    used_cpu: dict[str, int] = defaultdict(int)
    used_mem: dict[str, int] = defaultdict(int)
    queue_h100: dict[str, int] = defaultdict(int)
    queue_cpu: dict[str, int] = defaultdict(int)
    assert set(result.pending) | {d.job_id for d in result.decisions} == set(by_id)
    for d in result.decisions:
        r = by_id[d.job_id]
        res = r.spec.resources
        assert sum(a.replicas for a in d.assignments) == r.replicas  # all or nothing
        if r.spec.kind is JobKind.TRAINING:
            assert len(d.assignments) == 1  # a gang lives in one cluster, on one model
        for a in d.assignments:
            used_cpu[a.cluster] += res.cpu_milli * a.replicas
            used_mem[a.cluster] += res.memory_bytes * a.replicas
            queue_cpu[r.spec.queue] += res.cpu_milli * a.replicas
            if res.accelerator_milli:
                assert a.accelerator_model
                assert not r.spec.accelerator_models or any(
                    model_matches(m, a.accelerator_model) for m in r.spec.accelerator_models
                )
                used_gpu[(a.cluster, a.accelerator_model)] += res.accelerator_milli * a.replicas
                if model_matches("H100", a.accelerator_model):
                    queue_h100[r.spec.queue] += res.accelerator_milli * a.replicas
    for name, cap in before.items():  # never over-committed
        assert used_cpu[name] <= cap.cpu_milli_free
        assert used_mem[name] <= cap.memory_bytes_free
        for p in cap.accelerator_pools:
            assert used_gpu[(name, p.accelerator_model)] <= p.free_milli
    after = {c.name: c.capacity for c in result.snapshot.clusters}
    for name, cap in after.items():
        assert cap.cpu_milli_free >= 0 and cap.memory_bytes_free >= 0
        for p in cap.accelerator_pools:
            assert min(p.nodes_by_free) >= 0 and all(0 < f < 1000 and n > 0 for f, n in p.shared_devices)
            assert (
                p.free_milli
                == before[name].pool(p.accelerator_model).free_milli - used_gpu[(name, p.accelerator_model)]
            )  # type: ignore[union-attr]
    quota = cfg.queue("a").quota
    assert queue_h100["a"] <= quota.accelerator_milli["H100"]  # no quota exceeded
    assert quota.cpu_milli is not None and queue_cpu["a"] <= quota.cpu_milli


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 3), st.floats(0, 1e5))
def test_preemption_frees_only_preemptible_work_within_the_cap(scenario: tuple, cap: int,  # type: ignore[type-arg]
                                                               now: float) -> None:
    snap, reqs, cfg = scenario
    cfg = SchedulerConfig(queues=cfg.queues, max_preemptions_per_cycle=cap)
    held = [r for r in reqs if r.accelerator_milli][:6]
    running = [
        Allocation(
            JobId(f"run-{r.job_id}"),
            r.spec.queue,
            r.spec.priority - 1,
            i % 2 == 0,
            snap.clusters[0].name,
            snap.clusters[0].capacity.accelerator_pools[0].accelerator_model,
            1,
            r.spec.resources,
        )
        for i, r in enumerate(held)
        if snap.clusters and snap.clusters[0].capacity.accelerator_pools
    ]
    result = Scheduler(cfg).schedule(snap, reqs, running=running, now=now)
    preemptible = {a.job_id for a in running if a.preemptible}
    victims = [p.job_id for p in result.preemptions]
    assert len(victims) == len(set(victims)) <= cap
    assert set(victims) <= preemptible
    for p in result.preemptions:
        assert p.preemptor in {d.job_id for d in result.decisions}
