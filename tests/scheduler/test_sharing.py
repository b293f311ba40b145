"""Pools say how members share devices; fractional replicas go only where devices are shared."""

from __future__ import annotations

from dataclasses import replace

import pytest

from federator.model import JobKind, ReasonCode
from federator.scheduler import Scheduler, SchedulerConfig, Snapshot, fragmentation

from builders import cluster, job, pool, request

H100 = "NVIDIA-H100-80GB-HBM3"
MIG_1G = "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"
MIG_3G = "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb"
L4_SHARED = "NVIDIA-L4-SHARED"


def place(clusters: list, *specs):  # type: ignore[no-untyped-def]
    return Scheduler().schedule(Snapshot.of(clusters), [request(s, at=i) for i, s in enumerate(specs)])


def whole(model: str, nodes: int = 1):  # type: ignore[no-untyped-def]
    return replace(pool(model, nodes=nodes), sharing="None")


def mig(model: str, partitions: int, unit: int):  # type: ignore[no-untyped-def]
    return replace(pool(model, nodes=1, free=partitions, gpus_per_node=partitions), sharing="MIG", unit_milli=unit)


def half(name: str = "half", replicas: int = 1):  # type: ignore[no-untyped-def]
    return job(name, kind=JobKind.INFERENCE, replicas=replicas, gpus=0.5)


def test_a_fraction_skips_a_member_with_only_whole_devices_for_one_that_shares() -> None:
    result = place([cluster("plain", "r", whole(H100)),
                    cluster("shared", "r", replace(pool(L4_SHARED, nodes=1, free=4, gpus_per_node=4),
                                                   sharing="TimeSlicing"))], half())
    (decision,) = result.decisions
    assert [(a.cluster, a.accelerator_model) for a in decision.assignments] == [("shared", L4_SHARED)]


def test_a_fraction_takes_a_mig_partition_big_enough_one_replica_per_partition() -> None:
    c = cluster("mig", "r", mig(MIG_1G, 14, 125), mig(MIG_3G, 2, 500))
    result = place([c], half(replicas=2))
    (decision,) = result.decisions
    assert [(a.accelerator_model, a.replicas) for a in decision.assignments] == [(MIG_3G, 2)]
    assert place([c], half(replicas=3)).pending["half"].code is not ReasonCode.SHARING_UNAVAILABLE


def test_no_member_shares_devices_the_job_stays_pending_naming_what_is_missing() -> None:
    result = place([cluster("a", "r", whole(H100)), cluster("b", "r", whole(H100, nodes=2))], half())
    reason = result.pending["half"]
    assert reason.code is ReasonCode.SHARING_UNAVAILABLE
    assert "offers no shared or MIG device for a 500m replica" in reason.message
    assert f"{H100} (None)" in reason.message


def test_whole_devices_never_go_to_a_time_sliced_pool() -> None:
    ts = replace(pool(L4_SHARED, nodes=1, free=4, gpus_per_node=4), sharing="TimeSlicing")
    reason = place([cluster("shared", "r", ts)], job("one", gpus=1)).pending["one"]
    assert reason.code is ReasonCode.SHARING_UNAVAILABLE and "only shares, not whole devices" in reason.message


@pytest.mark.parametrize(("sharing", "milli", "serves"), [
    ("", 500, True), ("", 2000, True), ("None", 500, False), ("None", 1000, True), ("HAMi", 300, True),
    ("HAMi", 2000, True), ("TimeSlicing", 500, True), ("MPS", 1000, False), ("MIG", 500, True),
    ("MIG", 501, False), ("MIG", 1000, True),
], ids=lambda v: str(v))
def test_which_shapes_a_pool_serves(sharing: str, milli: int, serves: bool) -> None:
    p = replace(pool(H100, nodes=1), sharing=sharing, unit_milli=500 if sharing == "MIG" else 0)
    assert p.serves(milli) is serves
    assert (p.replica_capacity(milli) > 0) is serves


def test_pools_that_say_nothing_serve_both_as_before() -> None:
    result = place([cluster("sim", "r", pool(H100, nodes=1))], half())
    assert [a.cluster for a in result.decisions[0].assignments] == ["sim"]


def test_whole_h100s_are_not_mig_partitions_of_h100s_unless_the_job_names_the_profile() -> None:
    c = cluster("mig", "r", mig(MIG_1G, 14, 125))
    assert place([c], job("eight", gpus=8, models=("H100",))).pending["eight"].code is ReasonCode.SHARING_UNAVAILABLE
    (decision,) = place([c], job("parts", gpus=2, models=("MIG-1g.10gb",))).decisions
    assert [(a.cluster, a.replicas) for a in decision.assignments] == [("mig", 1)]


@pytest.mark.parametrize("config", [None, SchedulerConfig(score_weights={"LeastFragmentation": 2}),
                                    SchedulerConfig(score_weights={"Scarcity": 4})],
                         ids=["default", "best-fit", "no-packer"])
def test_a_small_fraction_takes_the_smallest_mig_partition_and_leaves_the_big_ones(
        config: SchedulerConfig | None) -> None:
    """Outside QA, V11: with every 1g.10gb (125m) free, 100m replicas took 3g.40gb (500m) partitions, and a
    400m job that only those serve then waited. Each packer (and the tie between pools without one) fills
    the partition a fraction takes as tightly as it can."""
    c = cluster("mig", "r", mig(MIG_1G, 14, 125), mig(MIG_3G, 4, 500))
    small = job("small", kind=JobKind.INFERENCE, replicas=3, gpus=0.1, models=("H100",))
    big = job("big", kind=JobKind.INFERENCE, replicas=2, gpus=0.4, models=("H100",))
    result = (Scheduler(config) if config else Scheduler()).schedule(
        Snapshot.of([c]), [request(small, at=0), request(big, at=1)])
    assert not result.pending
    placed = {d.job_id: [(a.accelerator_model, a.replicas) for a in d.assignments] for d in result.decisions}
    assert placed == {"small": [(MIG_1G, 3)], "big": [(MIG_3G, 2)]}


def test_a_fraction_on_a_mig_partition_strands_the_rest_of_it() -> None:
    one_g, three_g = mig(MIG_1G, 14, 125), mig(MIG_3G, 4, 500)
    assert fragmentation.partition_waste(one_g, 100) == pytest.approx(0.25)
    assert fragmentation.partition_waste(three_g, 100) == pytest.approx(4.0)
    assert fragmentation.partition_waste(three_g, 500) == 0.0
    assert fragmentation.partition_waste(three_g, 1000) == 0.0  # a whole device's ask: partitions per device
    assert fragmentation.partition_waste(replace(three_g, sharing="TimeSlicing"), 100) == 0.0
