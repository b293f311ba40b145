"""A placement on a partition pool (MIG, Ascend vNPU) counts at what it holds: its partitions at their worth.

A 1g.10gb partition of an 80 GB GPU is worth 125m of the device (the pool's unit_milli). Asked by name with a
count of 1, 0.11.0 counted it against the queue's quota and fair share as a whole GPU, eight times its share, so a
queue with a quota of one GPU ran one such replica where it holds room for eight. A fraction takes a partition to
itself, so a 300m replica on a 500m partition holds (and counts) 500m: nobody else can use the rest. Whole
devices count what was asked, as before. Jobs are parsed from the YAML a user writes.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from federator.jobfile_loading import parse_job_documents
from federator.model import MILLI, AcceleratorPool, JobId, JobSpec, ReasonCode, placement_held_milli
from federator.scheduler import Scheduler, Snapshot
from federator.scheduler.config import QueueConfig, Quota, SchedulerConfig
from federator.scheduler.fairshare import FleetPools, FleetPoolsMemo, QueueUsage, accelerator_dim, pool_kind
from federator.scheduler.framework import Allocation
from federator.server.scheduling import new_placements

from builders import cluster, pool, request

H100 = "NVIDIA-H100-80GB-HBM3"
MIG_1G, MIG_3G, MIG_7G = f"{H100}-MIG-1g.10gb", f"{H100}-MIG-3g.40gb", f"{H100}-MIG-7g.80gb"


def partitions(model: str, *, free: int, unit: int) -> AcceleratorPool:
    profile = model.rsplit("-MIG-", 1)[1]
    return replace(pool(model, nodes=1, free=free, gpus_per_node=max(free, 1)), sharing="MIG", unit_milli=unit,
                   resource_name=f"nvidia.com/mig-{profile}")


def whole(free: int = 8) -> AcceleratorPool:
    return replace(pool(H100, nodes=1, free=free), sharing="None", resource_name="nvidia.com/gpu")


def spec(name: str, body: str, *, kind: str = "training") -> JobSpec:
    (s,) = parse_job_documents(f"apiVersion: federator.io/v1alpha1\nkind: FederatedJob\nmetadata: {{name: {name}}}\n"
                               f"spec: {{kind: {kind}, resources: {{cpu: '1', memory: 1Gi{body}")
    return s


def by_name(name: str, replicas: int, *, kind: str = "training", model: str = MIG_1G) -> JobSpec:
    return spec(name, f"}}, replicas: {replicas}, accelerators: [{{model: {model}, count: 1}}]}}", kind=kind)


def quota_of_one_gpu() -> SchedulerConfig:
    return SchedulerConfig(queues={"default": QueueConfig(quota=Quota(accelerator_milli={"H100": MILLI}))})


def allocations(result, specs: dict[str, JobSpec]) -> list[Allocation]:  # type: ignore[no-untyped-def]
    """What the cycle's decisions hold once placed, as the server hands them to the next cycle."""
    return [Allocation(JobId(d.job_id), specs[d.job_id].queue, 0, False, a.cluster, a.accelerator_model, a.replicas,
                       replace(specs[d.job_id].resources, accelerator_milli=a.accelerator_milli),
                       unit_milli=a.unit_milli)
            for d in result.decisions for a in d.assignments]


def held_by_queue(clusters: list, running: list[Allocation]) -> int:  # type: ignore[type-arg]
    usage = QueueUsage(SchedulerConfig(), Snapshot.of(clusters), running)
    return sum(v for d, v in usage.used["default"].items() if d.startswith(accelerator_dim("")))


def held_by_placements(result, specs: dict[str, JobSpec]) -> int:  # type: ignore[no-untyped-def]
    """What the placements the decisions become hold (the bill's and ACCELERATORS' count)."""
    return sum(placement_held_milli(p, specs[d.job_id]) for d in result.decisions
               for p in new_placements(JobId(d.job_id), 1, d.assignments))


@pytest.mark.parametrize(("body", "fleet", "model", "unit", "held"), [
    pytest.param("}, replicas: 8, accelerators: [{model: NVIDIA-H100-80GB-HBM3-MIG-1g.10gb, count: 1}]}",
                 [partitions(MIG_1G, free=16, unit=125)], MIG_1G, 125, 1000, id="by-name: eight 1g.10gb hold one GPU"),
    pytest.param(", nvidia.com/gpu: 1}, replicas: 2, acceleratorModels: [MIG-3g.40gb]}",
                 [partitions(MIG_3G, free=4, unit=500)], MIG_3G, 500, 1000, id="by-name, one-count form"),
    pytest.param(", nvidia.com/gpu: 300m}, replicas: 2, acceleratorModels: [H100]}",
                 [partitions(MIG_3G, free=4, unit=500)], MIG_3G, 500, 1000,
                 id="a 300m fraction holds the 500m partition it takes"),
    pytest.param(", nvidia.com/gpu: 2}, replicas: 2, acceleratorModels: [H100]}", [whole()], H100, 0, 4000,
                 id="whole devices: what was asked"),
])
def test_a_placement_holds_its_partitions_at_their_worth(body: str, fleet: list[AcceleratorPool], model: str,
                                                         unit: int, held: int) -> None:
    s = spec("job", body)
    clusters = [cluster("m", "r", *fleet)]
    result = Scheduler().schedule(Snapshot.of(clusters), [request(s)])
    (d,) = result.decisions
    assert [(a.accelerator_model, a.unit_milli) for a in d.assignments] == [(model, unit)]
    assert held_by_placements(result, {"job": s}) == held  # the bill and ACCELERATORS
    assert held_by_queue(clusters, allocations(result, {"job": s})) == held  # quotas and fair share


@pytest.mark.parametrize("kind", ["training", "inference"])
def test_a_quota_of_one_gpu_runs_eight_1g_10gb_replicas_asked_by_name_not_one(kind: str) -> None:
    clusters = [cluster("m", "r", partitions(MIG_1G, free=16, unit=125))]
    cfg = quota_of_one_gpu()
    eight = by_name("eight", 8, kind=kind)
    result = Scheduler(cfg).schedule(Snapshot.of(clusters), [request(eight)])
    assert [(d.job_id, sum(a.replicas for a in d.assignments)) for d in result.decisions] == [("eight", 8)]
    # With those eight running, the queue holds its whole quota: a ninth partition waits for it, though 8 are free.
    running = allocations(result, {"eight": eight})
    ninth = Scheduler(cfg).schedule(Snapshot.of([cluster("m", "r", partitions(MIG_1G, free=8, unit=125))]),
                                    [request(by_name("ninth", 1, kind=kind))], running=running)
    assert not ninth.decisions
    reason = ninth.pending["ninth"]
    assert reason.code is ReasonCode.QUOTA_EXCEEDED
    assert "1 accelerators, too few left: the job needs 0.125" in reason.message


def test_nine_1g_10gb_replicas_are_more_than_a_quota_of_one_gpu() -> None:
    clusters = [cluster("m", "r", partitions(MIG_1G, free=16, unit=125))]
    result = Scheduler(quota_of_one_gpu()).schedule(Snapshot.of(clusters), [request(by_name("nine", 9))])
    assert not result.decisions
    assert "the job needs 1.125" in result.pending["nine"].message


def test_a_fraction_is_charged_the_partition_it_would_take_so_the_quota_is_never_passed() -> None:
    # 3 x 300m asks 0.9 of a quota of 1, but each takes a 500m partition: it would hold 1.5.
    clusters = [cluster("m", "r", partitions(MIG_3G, free=4, unit=500))]
    three = spec("three", ", nvidia.com/gpu: 300m}, replicas: 3, acceleratorModels: [H100]}")
    result = Scheduler(quota_of_one_gpu()).schedule(Snapshot.of(clusters), [request(three)])
    assert not result.decisions
    assert result.pending["three"].code is ReasonCode.QUOTA_EXCEEDED
    two = spec("two", ", nvidia.com/gpu: 300m}, replicas: 2, acceleratorModels: [H100]}")
    assert Scheduler(quota_of_one_gpu()).schedule(Snapshot.of(clusters), [request(two)]).decisions


def test_near_its_quota_a_fraction_takes_a_small_partition_not_the_big_one_it_might_have() -> None:
    # Half the quota is held. A 100m replica could take a 7g.80gb (all of a GPU: past the quota) or a 1g.10gb
    # (125m: within it). Charged the dearest, it would wait; the dearer pool is left out of its choice instead.
    fleet = [partitions(MIG_7G, free=1, unit=1000), partitions(MIG_1G, free=1, unit=125)]
    held = [Allocation(JobId("held"), "default", 0, False, "m", H100, 1, spec("held", ", nvidia.com/gpu: 500m}}")
                       .resources)]
    small = spec("small", ", nvidia.com/gpu: 100m}, acceleratorModels: [H100]}")
    result = Scheduler(quota_of_one_gpu()).schedule(Snapshot.of([cluster("m", "r", *fleet, whole(0))]),
                                                    [request(small)], running=held)
    assert [a.accelerator_model for d in result.decisions for a in d.assignments] == [MIG_1G]
    # With the small partition taken, it waits for one (never past the quota on the free 7g.80gb), and says why.
    full = [partitions(MIG_7G, free=1, unit=1000), partitions(MIG_1G, free=0, unit=125)]
    waits = Scheduler(quota_of_one_gpu()).schedule(Snapshot.of([cluster("m", "r", *full, whole(0))]),
                                                   [request(small)], running=held)
    assert not waits.decisions
    assert waits.pending["small"].code is ReasonCode.INSUFFICIENT_ACCELERATORS
    assert f"partitions worth more than 0.125 a replica left out ({MIG_7G})" in waits.pending["small"].message


def test_a_placement_stored_by_0_11_0_counts_at_the_worth_its_pool_reports() -> None:
    # No worth recorded (unit_milli 0): the scheduler reads the fleet's pool of that model, so a queue's quota is
    # right at once after an upgrade; the bill keeps what 0.11.0 recorded (tests/accounting).
    clusters = [cluster("m", "r", partitions(MIG_1G, free=8, unit=125))]
    asked = replace(by_name("old", 8).resources, accelerator_milli=MILLI)  # the placement's count: 1 partition
    old = Allocation(JobId("old"), "default", 0, False, "m", MIG_1G, 8, asked)
    assert held_by_queue(clusters, [old]) == 1000


@pytest.mark.parametrize("where", ["in a new report of the same member", "on a new member"])
def test_a_partition_pool_that_appears_between_two_cycles_is_weighed_in_the_next(where: str) -> None:
    """The scheduler keeps what the quota check reads of the fleet's pools from one cycle to the next
    (fairshare.FleetPoolsMemo): a pool that appears between two cycles is weighed in the next one, not forgotten
    for the kinds the fleet had before."""
    held = [Allocation(JobId("held"), "default", 0, False, "m", H100, 1, spec("held", ", nvidia.com/gpu: 500m}}")
                       .resources)]
    small = request(spec("small", ", nvidia.com/gpu: 100m}, acceleratorModels: [H100]}"))
    scheduler = Scheduler(quota_of_one_gpu())
    member = cluster("m", "r", partitions(MIG_7G, free=1, unit=1000), whole(0))
    first = scheduler.schedule(Snapshot.of([member]), [small], running=held)
    assert not first.decisions  # on a 7g.80gb partition it would hold a whole GPU: past the quota, half of it held
    small_pool = partitions(MIG_1G, free=1, unit=125)
    fleet = ([cluster("m", "r", partitions(MIG_7G, free=1, unit=1000), small_pool, whole(0))] if "same" in where
             else [member, cluster("n", "r", small_pool)])
    second = scheduler.schedule(Snapshot.of(fleet), [small], running=held)
    assert [a.accelerator_model for d in second.decisions for a in d.assignments] == [MIG_1G]


def test_the_kept_pools_are_what_the_fleet_s_pools_say_as_members_join_report_and_leave() -> None:
    ascend = replace(pool("Ascend910B3", nodes=1), family="Ascend910B", vendor="huawei")
    a = cluster("a", "r", whole(), ascend)
    steps = [
        [a],
        [a, cluster("b", "r", partitions(MIG_1G, free=2, unit=125))],  # a member joins, with partitions
        [a, cluster("b", "r", partitions(MIG_1G, free=1, unit=125))],  # its next report: new pools, the same kinds
        [a, cluster("b", "r", partitions(MIG_1G, free=1, unit=125), partitions(MIG_3G, free=1, unit=500))],
        [cluster("b", "r", partitions(MIG_3G, free=1, unit=500))],  # a leaves, b's 1g.10gb pool goes
        [a],
        [a],
    ]
    memo = FleetPoolsMemo()
    for clusters in steps:
        snapshot = Snapshot.of(clusters)
        kept = memo(snapshot)
        fresh = FleetPools.of(p for c in snapshot.clusters for p in c.capacity.accelerator_pools)
        assert list(kept.families.items()) == list(fresh.families.items())
        assert list(kept.fleet_models.items()) == list(fresh.fleet_models.items())
        assert list(kept.units.items()) == list(fresh.units.items())
        assert [pool_kind(p) for p in kept.kinds] == [pool_kind(p) for p in fresh.kinds]
