"""The foundation's placement decisions, as scenario tables over built snapshots."""

from __future__ import annotations

import pytest

from federator.model import ClusterState, JobKind, ReasonCode
from federator.scheduler import Scheduler, Snapshot, model_matches

from builders import cluster, job, pool, request

H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
L40S = "NVIDIA-L40S"


@pytest.mark.parametrize(
    ("requested", "actual", "matches"),
    [("H100", H100, True), ("h100", H100, True), ("A100", A100, True), ("A10", A100, False),
     ("A100-SXM4-80GB", A100, True), ("SXM4-A100", A100, False), ("L40S", L40S, True), ("L40", L40S, False)],
)
def test_accelerator_model_matching(requested: str, actual: str, matches: bool) -> None:
    assert model_matches(requested, actual) is matches


def place(clusters: list, *specs):  # type: ignore[no-untyped-def]
    return Scheduler().schedule(Snapshot.of(clusters), [request(s, at=i) for i, s in enumerate(specs)])


def test_gang_goes_whole_to_the_one_cluster_that_fits() -> None:
    busy = cluster("east-1", "east", pool(H100, nodes=8, free=2))  # 16 free H100 but no node with 8
    idle = cluster("west-1", "west", pool(H100, nodes=4, free=8))
    result = place([busy, idle], job("gang", replicas=4, gpus=8, models=("H100",)))
    (decision,) = result.decisions
    (a,) = decision.assignments
    assert (a.cluster, a.replicas, a.accelerator_model) == ("west-1", 4, H100)


def test_gang_never_splits_across_clusters() -> None:
    a = cluster("a", "r1", pool(H100, nodes=3, free=8))
    b = cluster("b", "r2", pool(H100, nodes=3, free=8))
    result = place([a, b], job("gang", replicas=4, gpus=8, models=("H100",)))
    assert not result.decisions
    reason = result.pending["gang"]
    assert reason.code is ReasonCode.GANG_DOES_NOT_FIT
    assert "fits 3 of 4 replicas" in reason.message and "0/2 clusters fit" in reason.message


def test_replicas_share_a_node_when_it_has_room() -> None:
    c = cluster("c", "r", pool(H100, nodes=2, free=8))
    result = place([c], job("small", replicas=4, gpus=4, models=("H100",)))
    assert result.decisions[0].assignments[0].replicas == 4
    after = result.snapshot.clusters[0].capacity.pool(H100)
    assert after is not None and after.free_accelerators == 0


def test_reservations_within_a_cycle_prevent_double_booking() -> None:
    c = cluster("c", "r", pool(H100, nodes=4, free=8))
    result = place([c], job("first", replicas=4, gpus=8), job("second", replicas=1, gpus=8))
    assert [d.job_id for d in result.decisions] == ["first"]
    assert result.pending["second"].code is ReasonCode.INSUFFICIENT_ACCELERATORS


def test_accelerator_model_filter_names_the_missing_model() -> None:
    c = cluster("central-1", "central", pool(A100, nodes=4))
    result = place([c], job("h", replicas=1, gpus=8, models=("H100",)))
    reason = result.pending["h"]
    assert reason.code is ReasonCode.ACCELERATOR_UNAVAILABLE
    assert "central-1 has no H100 nodes" in reason.message


def test_any_of_several_models_leaves_the_scarcer_pool_to_jobs_that_need_it() -> None:
    # Both fit a node exactly; the plentiful model is taken, so an A100-only job still finds its node.
    c = cluster("c", "r", pool(H100, nodes=8, free=8), pool(A100, nodes=1, free=8))
    result = place([c], job("j", replicas=1, gpus=8, models=("H100", "A100")), job("a", gpus=8, models=("A100",)))
    assert [d.assignments[0].accelerator_model for d in result.decisions] == [H100, A100]


def test_any_of_several_models_prefers_the_pool_it_fits_tightly() -> None:
    c = cluster("c", "r", pool(H100, nodes=8, free=8), pool(A100, nodes=1, free=2, extra={0: 1}))
    result = place([c], job("j", replicas=1, gpus=2, models=("H100", "A100")))
    assert (
        result.decisions[0].assignments[0].accelerator_model == A100
    )  # no fresh 8-accelerator node broken for 2 accelerators


@pytest.mark.parametrize(
    ("clusters", "expected"),
    [
        ([cluster("pricey", "east", pool(H100, nodes=4), price=4.0),
          cluster("cheap", "west", pool(H100, nodes=4), price=2.0)], "cheap"),
        ([cluster("loaded", "east", pool(H100, nodes=1, extra={0: 7})),
          cluster("idle", "west", pool(H100, nodes=8))], "idle"),
        ([cluster("near", "east", pool(H100, nodes=1, extra={0: 3}), price=4.0),
          cluster("far", "west", pool(H100, nodes=8), price=2.0)], "near"),
    ],
    ids=["cheapest-region", "least-loaded-region", "preferred-region-wins"],
)
def test_scoring(clusters: list, expected: str) -> None:
    regions = ("east",) if expected == "near" else ()
    result = place(clusters, job("j", replicas=1, gpus=8, regions=regions))
    assert result.decisions[0].assignments[0].cluster == expected


def test_inference_spreads_in_the_preferred_region_then_beyond() -> None:
    east = cluster("east-1", "east", pool(A100, nodes=1, free=1, extra={0: 3}))
    central = cluster("central-1", "central", pool(A100, nodes=4, free=8))
    result = place([east, central],
                   job("chat", kind=JobKind.INFERENCE, replicas=2, gpus=1, models=("A100",), regions=("east",)))
    got = {a.cluster: a.replicas for a in result.decisions[0].assignments}
    assert got == {"east-1": 1, "central-1": 1}


def test_inference_spreads_across_equal_clusters() -> None:
    cs = [cluster(f"c{i}", f"r{i}", pool(L40S, nodes=2, gpus_per_node=4, free=4)) for i in range(3)]
    result = place(cs, job("svc", kind=JobKind.INFERENCE, replicas=6, gpus=1))
    assert {a.cluster: a.replicas for a in result.decisions[0].assignments} == {"c0": 2, "c1": 2, "c2": 2}


def test_inference_is_all_or_nothing_per_cycle() -> None:
    c = cluster("c", "r", pool(L40S, nodes=1, gpus_per_node=4, free=4))
    result = place([c], job("svc", kind=JobKind.INFERENCE, replicas=5, gpus=1))
    assert not result.decisions
    assert "only 4 of 5 replicas fit" in result.pending["svc"].message
    assert result.snapshot.clusters[0].capacity.pool(L40S).free_accelerators == 4  # the aborted attempt leaked nothing


def test_cpu_only_job_checks_cpu_per_node_and_in_total() -> None:
    c = cluster("c", "r", cpu=64)
    ok = place([c], job("fits", replicas=2, cpu=32))
    assert ok.decisions
    too_big = place([c], job("wide", replicas=1, cpu=96))
    assert too_big.pending["wide"].code is ReasonCode.INSUFFICIENT_CPU


def test_partitioned_clusters_get_no_new_work() -> None:
    c = cluster("c", "r", pool(H100, nodes=4), state=ClusterState.PARTITIONED)
    result = place([c], job("j", gpus=8))
    assert result.pending["j"].code is ReasonCode.CLUSTER_NOT_READY


def test_no_clusters_is_its_own_reason() -> None:
    result = place([], job("j", gpus=1))
    assert result.pending["j"].code is ReasonCode.NO_CLUSTERS


def test_priority_orders_the_queue() -> None:
    c = cluster("c", "r", pool(H100, nodes=1))
    result = place([c], job("low", gpus=8, priority=0), job("high", gpus=8, priority=10))
    assert [d.job_id for d in result.decisions] == ["high"]
