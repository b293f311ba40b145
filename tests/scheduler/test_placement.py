"""Placement scenarios: fractional accelerators, spread constraints, latency budgets, scorers, why pending."""

from __future__ import annotations

import dataclasses

import pytest
from scenarios import A100, H100, L40S, cycle, n_h100_nodes, placed, spec

from federator.model import AcceleratorPool, ClusterState, JobKind, ReasonCode
from federator.scheduler import SchedulerConfig

from builders import cluster, pool

INF = JobKind.INFERENCE
LATENCY = {("east", "central"): 40, ("east", "west"): 120, ("central", "west"): 70}


# -- fractional accelerators ----------------------------------------------------------


def test_fractional_replicas_share_one_gpu() -> None:
    c = cluster("c", "r", pool(L40S, nodes=1, gpus_per_node=4, free=4))
    result = cycle([c], [spec("a", kind=INF, gpus=0.5), spec("b", kind=INF, gpus=0.5), spec("c", kind=INF, gpus=0.3)])
    assert len(result.decisions) == 3
    after = result.snapshot.clusters[0].capacity.pool(L40S)
    assert after is not None
    assert after.nodes_by_free[2] == 1  # two accelerators used: one shared by a and b, one holding c
    assert after.shared_devices == ((700, 1),)
    assert after.free_milli == 4000 - 1300


def test_a_fraction_prefers_the_cluster_with_a_shared_gpu_that_fits() -> None:
    shared = cluster("shared", "r", AcceleratorPool(L40S, (0, 0, 0, 1, 0), 4, 4, ((500, 1),)))
    fresh = cluster("fresh", "r", pool(L40S, nodes=1, gpus_per_node=4, free=4))
    result = cycle([fresh, shared], [spec("half", kind=INF, gpus=0.5)])
    assert placed(result) == {"half": {"shared": 1}}


def test_fractions_of_one_inference_job_pack_before_spreading() -> None:
    c = cluster("c", "r", pool(L40S, nodes=1, gpus_per_node=1, free=1))
    result = cycle([c], [spec("svc", kind=INF, replicas=4, gpus=0.25)])
    assert placed(result) == {"svc": {"c": 4}}
    assert result.snapshot.clusters[0].capacity.pool(L40S).free_milli == 0  # type: ignore[union-attr]


def test_no_gpu_with_room_for_a_fraction_is_the_reason() -> None:
    c = cluster("c", "r", AcceleratorPool(L40S, (1, 0), 1, 1, ((200, 1),)))
    result = cycle([c], [spec("big-fraction", kind=INF, gpus=0.5)])
    assert result.pending["big-fraction"].code is ReasonCode.INSUFFICIENT_ACCELERATORS
    assert "500m free" in result.pending["big-fraction"].message


# -- spreading ------------------------------------------------------------------


def test_min_regions_spreads_replicas_over_regions() -> None:
    cs = [n_h100_nodes(4, "east-1", "east"), n_h100_nodes(4, "east-2", "east"), n_h100_nodes(4, "west-1", "west")]
    result = cycle(cs, [spec("svc", kind=INF, replicas=4, gpus=1, min_regions=2)])
    regions = {"east-1": "east", "east-2": "east", "west-1": "west"}
    got = placed(result)["svc"]
    assert sum(got.values()) == 4 and {regions[c] for c in got} == {"east", "west"}


def test_min_regions_not_met_is_the_reason() -> None:
    cs = [n_h100_nodes(4, "east-1", "east"), n_h100_nodes(4, "east-2", "east")]
    result = cycle(cs, [spec("svc", kind=INF, replicas=4, gpus=1, min_regions=2)])
    reason = result.pending["svc"]
    assert reason.code is ReasonCode.REGION_UNAVAILABLE and "span 2 regions" in reason.message


def test_min_regions_not_met_names_the_cordoned_cluster_of_the_missing_region() -> None:
    """A span that fails because an operator cordoned the only cluster of a region says so."""
    west = dataclasses.replace(n_h100_nodes(4, "west-1", "west"), state=ClusterState.CORDONED)
    cs = [n_h100_nodes(4, "east-1", "east"), n_h100_nodes(4, "east-2", "east"), west]
    reason = cycle(cs, [spec("svc", kind=INF, replicas=4, gpus=1, min_regions=2)]).pending["svc"]
    assert reason.code is ReasonCode.REGION_UNAVAILABLE
    assert reason.message.endswith("; west: west-1 is Cordoned")


def test_min_regions_not_met_says_why_each_missing_regions_clusters_cannot_host_one() -> None:
    """Outside QA (ML user, F9): "only 1 can host one now (west)" did not say that east had no such model."""
    a100 = cluster("east-1", "east", pool(A100, nodes=4, free=8))
    cs = [a100, n_h100_nodes(4, "west-1", "west")]
    reason = cycle(cs, [spec("svc", kind=INF, replicas=4, gpus=1, min_regions=2, models=(H100,))]).pending["svc"]
    assert reason.code is ReasonCode.REGION_UNAVAILABLE
    tail = reason.message.split("; ", 2)[-1]
    assert tail.startswith("east: east-1") and H100 in tail, reason.message


@pytest.mark.parametrize(
    ("budget", "expected"),
    [(0, {"west-1"}), (50, {"central-1"}), (200, {"west-1"})],
    ids=["no-budget-cheapest", "budget-keeps-it-near", "generous-budget-cheapest"],
)
def test_latency_budget_is_a_hard_bound(budget: int, expected: set[str]) -> None:
    cs = [n_h100_nodes(2, "central-1", "central", price=4.0), n_h100_nodes(2, "west-1", "west", price=1.0)]
    cfg = SchedulerConfig(region_latency_ms=LATENCY, score_weights={"Price": 1})
    kw = {"user_region": "east", "max_latency_ms": budget} if budget else {}
    result = cycle(cs, [spec("svc", kind=INF, gpus=1, **kw)], config=cfg)
    assert set(placed(result)["svc"]) == expected


def test_no_region_within_the_budget_is_the_reason() -> None:
    cfg = SchedulerConfig(region_latency_ms=LATENCY)
    result = cycle([n_h100_nodes(2, "west-1", "west")],
                   [spec("svc", kind=INF, gpus=1, user_region="east", max_latency_ms=50)], config=cfg)
    reason = result.pending["svc"]
    assert reason.code is ReasonCode.LATENCY_BUDGET and "120ms from east, budget 50ms" in reason.message


def test_locality_prefers_the_region_nearest_the_users() -> None:
    cs = [n_h100_nodes(2, "central-1", "central"), n_h100_nodes(2, "west-1", "west")]
    cfg = SchedulerConfig(region_latency_ms=LATENCY, score_weights={"Locality": 1})
    result = cycle(cs, [spec("svc", kind=INF, gpus=1, user_region="east")], config=cfg)
    assert placed(result) == {"svc": {"central-1": 1}}


# -- scorers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"LeastFragmentation": 1}, "tight"),  # 2 free on a node: a 2-accelerator job fills it exactly
        ({"LeastAllocated": 1}, "roomy"),
        ({}, "roomy"),  # no scores: first fit by name
    ],
    ids=["least-fragmentation-packs", "least-allocated-spreads", "first-fit"],
)
def test_scorers_rank_clusters(weights: dict[str, int], expected: str) -> None:
    tight = cluster("tight", "r1", pool(H100, nodes=1, free=2, extra={0: 3}))
    roomy = cluster("roomy", "r2", pool(H100, nodes=4, free=8))
    result = cycle([tight, roomy], [spec("j", gpus=2)], config=SchedulerConfig(score_weights=weights))
    assert placed(result) == {"j": {expected: 1}}


def test_least_fragmentation_keeps_whole_nodes_for_the_big_gang() -> None:
    a = cluster("a", "r1", pool(H100, nodes=2, free=8))
    b = cluster("b", "r2", pool(H100, nodes=1, free=8, extra={4: 1}))
    specs = [spec("small", gpus=4), spec("gang", gpus=8, replicas=2)]
    packed = cycle([a, b], specs, config=SchedulerConfig(score_weights={"LeastFragmentation": 1}))
    assert placed(packed) == {"small": {"b": 1}, "gang": {"a": 2}}
    spread = cycle([a, b], specs, config=SchedulerConfig(score_weights={"LeastAllocated": 1}))
    assert "gang" in spread.pending  # spreading broke the only two whole nodes


def test_random_fit_baseline_is_deterministic() -> None:
    cs = [n_h100_nodes(2, f"c{i}", f"r{i}") for i in range(5)]
    cfg = SchedulerConfig(score_weights={"RandomFit": 1})
    specs = [spec(f"j{i}", gpus=1) for i in range(10)]
    assert placed(cycle(cs, specs, config=cfg)) == placed(cycle(cs, specs, config=cfg))


# -- why pending ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clusters", "job", "code", "words"),
    [
        ([n_h100_nodes(3, "a"), n_h100_nodes(3, "b")], spec("g", gpus=8, replicas=4), ReasonCode.GANG_DOES_NOT_FIT,
         "a fits 3 of 4 replicas x 8"),
        ([cluster("a", "r", pool(H100, nodes=4, free=4))], spec("g", gpus=8), ReasonCode.INSUFFICIENT_ACCELERATORS,
         "a has no node with 8 free"),
        ([cluster("a", "r", pool(A100, nodes=4))], spec("g", gpus=8, models=("H100",)),
         ReasonCode.ACCELERATOR_UNAVAILABLE, "a has no H100 nodes"),
        ([cluster("a", "r", pool(H100, nodes=4), cpu=16)], spec("g", gpus=8, cpu=32), ReasonCode.INSUFFICIENT_CPU,
         "a has 16 CPUs free"),
        ([], spec("g", gpus=8), ReasonCode.NO_CLUSTERS, "no member cluster"),
        ([cluster("a", "r", dataclasses.replace(pool(H100, nodes=4), largest_node_accelerators=8))],
         spec("g", gpus=9), ReasonCode.INSUFFICIENT_ACCELERATORS,
         f"a has no node with 9 free {H100} accelerators (its largest node has 8 installed; a replica is one pod "
         "on one node)"),
    ],
    ids=["gang-too-big", "no-node-with-8", "model-missing", "cpu", "no-clusters", "replica-over-every-node"],
)
def test_every_pending_job_says_why(clusters: list, job: object, code: ReasonCode, words: str) -> None:
    result = cycle(clusters, [job])  # type: ignore[list-item]
    reason = result.pending["g"]
    assert reason.code is code and words in reason.message


def _kueue_member(name: str, *, free_nodes: int, held: int) -> object:
    """Three nodes of 8 free A100 behind a ClusterQueue that admits `free_nodes` x 8: the agent reports the rest
    held by quota (backends/kube/kueue_quota.py), not free."""
    quota = dataclasses.replace(pool(A100, nodes=free_nodes, extra={0: 3 - free_nodes}), quota_held_accelerators=held)
    return cluster(name, "r", quota)


@pytest.mark.parametrize(("free_nodes", "held", "code", "words"), [
    (1, 16, ReasonCode.GANG_DOES_NOT_FIT,
     f"member-b fits 1 of 2 replicas x 8 {A100} accelerators (16 more free held back by the member's own queue "
     f"quota)"),
    (0, 24, ReasonCode.INSUFFICIENT_ACCELERATORS,
     f"member-b has no node with 8 free {A100} accelerators (24 more free held back by the member's own queue "
     f"quota)"),
], ids=["gang-over-the-quota", "no-quota-left"])
def test_a_reason_says_when_the_members_own_quota_holds_free_accelerators_back(
        free_nodes: int, held: int, code: ReasonCode, words: str) -> None:
    """The test bed's member-b: 24 free A100 in `kubectl get nodes`, a ClusterQueue of 8 GPUs. The user is told
    that the quota, not the nodes, keeps the gang off it."""
    result = cycle([_kueue_member("member-b", free_nodes=free_nodes, held=held)], [spec("g", gpus=8, replicas=2)])
    reason = result.pending["g"]
    assert reason.code is code and words in reason.message, reason.message


def test_a_reason_names_no_quota_where_none_holds_anything_back() -> None:
    result = cycle([_kueue_member("member-b", free_nodes=1, held=0)], [spec("g", gpus=8, replicas=2)])
    assert result.pending["g"].message.endswith(f"member-b fits 1 of 2 replicas x 8 {A100} accelerators")


@pytest.mark.parametrize(("members", "words"), [
    (["member-b"], "only 8 of 12 replicas fit across the one cluster with room (member-b) (16 more free held "
                   "back by the member's own queue quota)"),
    (["member-b", "member-c"], "only 16 of 20 replicas fit across 2 clusters (32 more free held back by the "
                               "members' own queue quotas)"),
], ids=["one-member", "two-members"])
def test_a_spread_job_short_of_room_is_told_of_the_quota_held_back(members: list[str], words: str) -> None:
    result = cycle([_kueue_member(m, free_nodes=1, held=16) for m in members],
                   [spec("g", kind=JobKind.INFERENCE, gpus=1, replicas=8 * len(members) + 4)])
    reason = result.pending["g"]
    assert reason.code is ReasonCode.INSUFFICIENT_ACCELERATORS and reason.message == words, reason.message


def test_an_unplaceable_shape_is_decided_once_per_cycle() -> None:
    specs = [spec(f"g{i}", gpus=8, replicas=4) for i in range(1000)]
    result = cycle([n_h100_nodes(3, "a")], specs)
    assert len({r.message for r in result.pending.values()}) == 1 and len(result.pending) == 1000
