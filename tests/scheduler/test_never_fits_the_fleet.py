"""`NeverRunnable.FLEET`: a pending job no member cluster could hold even empty is judged never runnable as the
fleet stands, apart from one that waits for room (outside SRE QA, F11: 16 x 8 H100 where the largest H100 cluster
has 8 nodes of 8 waited "no node with 8 free" for good and kept FederatorJobsPendingTooLong firing)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scenarios import A100, H100, cycle, running, spec, with_quota

from federator.model import AcceleratorAlternative, ClusterState, JobKind, NeverRunnable, ReasonCode

from builders import cluster, pool

INF = JobKind.INFERENCE
# At most 8 nodes x 8 H100 per cluster, as in the SRE's fleet.
FLEET = [cluster("west-1", "west", pool(H100, nodes=8)), cluster("east-2", "east", pool(H100, nodes=4)),
         cluster("central-1", "central", pool(A100, nodes=8))]
FULL = [cluster("west-1", "west", pool(H100, nodes=8, free=0)), cluster("east-2", "east", pool(H100, nodes=4, free=0)),
        cluster("central-1", "central", pool(A100, nodes=8, free=0))]
BUSY = [cluster("west-1", "west", pool(H100, nodes=8, free=0)), cluster("east-2", "east", pool(H100, nodes=4, free=2))]


def test_a_gang_larger_than_every_cluster_is_never_with_the_largest_cluster_named() -> None:
    reason = cycle(FLEET, [spec("big", gpus=8, replicas=16, models=("H100",), queue="qa-tenant")]).pending["big"]
    assert reason.never is NeverRunnable.FLEET, reason
    assert reason.message.startswith("no member cluster could hold 16 x 8 H100 even empty (the largest, west-1, "
                                     f"has 64 {H100} on 8 nodes, room for 8): it can never run as the fleet stands")
    assert reason.code is ReasonCode.GANG_DOES_NOT_FIT  # the cycle's own code, and its detail after "Now:"
    assert "Now: " in reason.message and "west-1 fits 8 of 16 replicas" in reason.message


def test_a_gang_that_fits_an_empty_cluster_waits_on_a_busy_fleet() -> None:
    reason = cycle(BUSY, [spec("fits", gpus=8, replicas=8, models=("H100",))]).pending["fits"]
    assert reason.never is None, reason
    assert "never" not in reason.message


@pytest.mark.parametrize(("job", "clusters", "never"), [
    pytest.param(spec("g", gpus=8, replicas=8, models=("H100",)), BUSY, False, id="gang-as-large-as-a-cluster"),
    pytest.param(spec("g", gpus=4, replicas=17, models=("H100",)), FLEET, True, id="gang-over-the-devices"),
    pytest.param(spec("g", gpus=8, replicas=9), FLEET, True, id="gang-of-any-model-over-every-pool"),
    pytest.param(spec("s", kind=INF, gpus=8, replicas=13, models=("H100",)), FLEET, True,
                 id="spread-over-the-whole-fleet"),
    pytest.param(spec("s", kind=INF, gpus=8, replicas=12, models=("H100",)), BUSY, False,
                 id="spread-as-large-as-the-fleet-waits"),
    pytest.param(spec("s", kind=INF, gpus=1, replicas=2, models=("H100",), min_regions=3), FLEET, True,
                 id="min-regions-over-the-regions-with-the-model"),
    pytest.param(spec("s", kind=INF, gpus=1, replicas=3, min_regions=3), FULL, False,
                 id="min-regions-of-any-model-waits"),
    pytest.param(spec("b", gpus=8, replicas=2, models=("B200",)), FLEET, False, id="a-model-no-member-has-waits"),
    pytest.param(spec("c", cpu=5000), FLEET, False, id="no-accelerators-not-judged"),
    pytest.param(spec("g", gpus=8, replicas=16, models=("H100",)),
                 [*FLEET, cluster("big", "r", pool(H100, nodes=16), state=ClusterState.CORDONED)], False,
                 id="a-cordoned-clusters-shape-counts"),
    pytest.param(spec("g", gpus=8, replicas=16, models=("H100",)),
                 [*FLEET, cluster("big", "r", pool(H100, nodes=16, free=0), state=ClusterState.LOST)], False,
                 id="a-lost-clusters-last-report-counts"),
    pytest.param(replace(spec("alt", replicas=16), accelerators=(AcceleratorAlternative(8000, "H100"),
                                                                 AcceleratorAlternative(8000, "A100"))),
                 [*FLEET, cluster("a100s", "r", pool(A100, nodes=16, free=0))], False,
                 id="one-alternative-fits-an-empty-cluster"),
    pytest.param(replace(spec("alt", replicas=16), accelerators=(AcceleratorAlternative(8000, "H100"),
                                                                 AcceleratorAlternative(8000, "A100"))),
                 FLEET, True, id="no-alternative-fits"),
])
def test_never_fits_the_fleet(job, clusters, never) -> None:  # type: ignore[no-untyped-def]
    reason = cycle(clusters, [job]).pending[job.name]
    assert (reason.never is NeverRunnable.FLEET) is never, reason


def test_the_min_regions_reason_names_the_regions_that_have_the_model() -> None:
    job = spec("s", kind=INF, gpus=1, replicas=2, models=("H100",), min_regions=3)
    reason = cycle(FLEET, [job]).pending["s"]
    assert reason.message.startswith("minRegions is 3, but only 2 regions have a member cluster that could hold a "
                                     "replica of H100 even empty (east, west)"), reason


def test_a_quota_never_stays_the_quotas() -> None:
    job = spec("big", gpus=8, replicas=16, models=("H100",), queue="research")
    reason = cycle(FLEET, [job], config=with_quota("research", gpus={"H100": 48})).pending["big"]
    assert reason.never is NeverRunnable.QUOTA, reason


def test_a_never_fitting_gang_stops_no_one() -> None:
    victim = replace(spec("victim", gpus=8, replicas=8, models=("H100",), priority=-1), preemptible=True)
    job = spec("big", gpus=8, replicas=16, models=("H100",), priority=10)
    result = cycle(FLEET, [job], allocations=[running(victim, "west-1")])
    assert result.preemptions == () and result.pending["big"].never is NeverRunnable.FLEET


def sized(p, largest: int):  # type: ignore[no-untyped-def]
    """A pool whose agent says its largest node has `largest` devices installed."""
    return replace(p, largest_node_accelerators=largest)


NODES_OF_8 = [cluster("west-1", "west", sized(pool(H100, nodes=8), 8)),
              cluster("east-2", "east", sized(pool(H100, nodes=4, free=0), 8))]


def test_a_replica_larger_than_every_node_is_never_with_the_largest_node_named() -> None:
    """16 H100 in one replica where every node has 8: the pools hold 64 and 32, so by their totals alone it would
    fit, and it waited "no node with 16 free" for good (stop 49's leftover: the report had no node sizes)."""
    reason = cycle(NODES_OF_8, [spec("wide", gpus=16, models=("H100",))]).pending["wide"]
    assert reason.never is NeverRunnable.FLEET, reason
    assert reason.message.startswith("no node of any member cluster could hold one replica of 16 H100 even empty "
                                     f"(the largest, on east-2, has 8 {H100}): it can never run"), reason


@pytest.mark.parametrize(("clusters", "job"), [
    pytest.param([cluster("west-1", "west", sized(pool(H100, nodes=8, free=0), 8))],
                 spec("fits", gpus=8, models=("H100",)), id="a-replica-the-size-of-a-busy-node"),
    pytest.param([cluster("west-1", "west", pool(H100, nodes=8))], spec("wide", gpus=16, models=("H100",)),
                 id="node-size-not-said"),
    pytest.param([*NODES_OF_8, cluster("old", "r", pool(H100, nodes=2, free=0))], spec("wide", gpus=16),
                 id="one-pool-does-not-say"),
    pytest.param([*NODES_OF_8, cluster("big", "r", sized(pool(H100, nodes=1, gpus_per_node=16, free=0), 16))],
                 spec("wide", gpus=16), id="a-busy-node-large-enough"),
])
def test_a_replica_a_node_could_hold_or_that_no_report_rules_out_waits(  # type: ignore[no-untyped-def]
        clusters, job) -> None:
    assert cycle(clusters, [job]).pending[job.name].never is None
