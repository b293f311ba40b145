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


def hosts(c, cpus: int, memory_gib: int):  # type: ignore[no-untyped-def]
    """A cluster whose agent says its largest node has `cpus` CPUs and `memory_gib` GiB allocatable (and no more
    free on one node)."""
    cap, cpu, memory = c.capacity, cpus * 1000, memory_gib * 2**30
    return c.with_capacity(replace(cap, largest_node_cpu_milli=cpu, largest_node_memory_bytes=memory,
                                   node_cpu_milli_free_max=min(cap.node_cpu_milli_free_max, cpu),
                                   node_memory_bytes_free_max=min(cap.node_memory_bytes_free_max, memory)))


# Nodes of 96 CPUs and 1 TiB, as the HPC centre's fleet (outside HPC QA, H2); one cluster's accelerators all busy
HPC = [hosts(cluster("west-1", "west", pool(H100, nodes=8)), 96, 1024),
       hosts(cluster("east-2", "east", pool(A100, nodes=4, free=0)), 64, 512)]


@pytest.mark.parametrize(("job", "code", "start"), [
    pytest.param(spec("mem", gpus=1, memory_gib=4096), ReasonCode.INSUFFICIENT_MEMORY,
                 "no node of any member cluster has the 4Ti memory one replica asks, even empty (the most on one "
                 "node is 1Ti, on west-1): it can never run as the fleet stands", id="4Ti-on-1Ti-nodes"),
    pytest.param(spec("cpu", gpus=8, cpu=200, models=("H100",)), ReasonCode.INSUFFICIENT_CPU,
                 "no node of any member cluster has the 200 CPUs one replica asks, even empty (the most on one node is "
                 "96, on west-1)", id="200-CPUs-on-96-core-nodes"),
    pytest.param(spec("cpu-only", cpu=500), ReasonCode.INSUFFICIENT_CPU,
                 "no node of any member cluster has the 500 CPUs", id="cpu-only"),
    pytest.param(spec("a100", gpus=8, cpu=80, models=("A100",)), ReasonCode.INSUFFICIENT_CPU,
                 "no node of any member cluster has the 80 CPUs one replica asks, even empty (the most on one node is "
                 "64, on east-2)", id="only-the-pools-clusters-count"),
])
def test_a_replica_larger_than_every_nodes_host_is_never_with_its_code(  # type: ignore[no-untyped-def]
        job, code, start) -> None:
    """A CPU or memory ask no node of the fleet has (by its size, not its free room) can never run: it waited for
    good as "InsufficientAccelerators ... no node with room beside them", a reason that reads as busy."""
    reason = cycle(HPC, [job]).pending[job.name]
    assert reason.never is NeverRunnable.FLEET, reason
    assert reason.code is code, reason
    assert reason.message.startswith(start), reason


@pytest.mark.parametrize(("clusters", "job"), [
    pytest.param(HPC, spec("fits", gpus=8, cpu=96, memory_gib=1024, models=("H100",)), id="as-large-as-a-node"),
    pytest.param([*HPC, cluster("old", "r", pool(H100, nodes=1))], spec("big", gpus=1, cpu=200),
                 id="one-does-not-say"),
    pytest.param([*HPC, hosts(cluster("fat", "r", pool(H100, nodes=1, free=0)), 256, 4096)],
                 spec("big", gpus=1, cpu=200, memory_gib=4096), id="a-busy-fat-node"),
    pytest.param([*HPC, hosts(cluster("cpus", "r"), 256, 64)], spec("cpu-only", cpu=200),
                 id="cpu-only-on-a-cpu-node"),
])
def test_a_host_a_node_could_hold_or_that_no_report_rules_out_waits(  # type: ignore[no-untyped-def]
        clusters, job) -> None:
    reason = cycle(clusters, [job]).pending.get(job.name)  # placed (None), or waiting
    assert reason is None or reason.never is None, reason


def test_a_replica_short_of_cpu_on_one_member_and_of_memory_on_another_names_both() -> None:
    fleet = [hosts(cluster("cpus", "r"), 256, 256), hosts(cluster("mems", "r"), 64, 4096)]
    reason = cycle(fleet, [spec("both", cpu=128, memory_gib=1024)]).pending["both"]
    assert reason.never is NeverRunnable.FLEET and reason.code is ReasonCode.INSUFFICIENT_CPU, reason
    assert reason.message.startswith("no node of any member cluster has both the 128 CPUs and the 1Ti memory one "
                                     "replica asks, even empty (the most CPUs on one node are 256, on cpus; the most "
                                     "memory 4Ti, on mems)"), reason


def test_a_replica_with_accelerators_short_of_cpu_here_and_of_memory_there_names_the_pools_clusters_only() -> None:
    """The host check of a request for accelerators reads the clusters with a pool it accepts, each one's
    `host_short` as `rooms` found it: a roomy cluster of no such pool neither saves the job nor is named."""
    fleet = [hosts(cluster("cpus", "r", pool(H100, nodes=1)), 64, 4096),
             hosts(cluster("mems", "r", pool(A100, nodes=1)), 256, 256), hosts(cluster("plain", "r"), 512, 8192)]
    reason = cycle(fleet, [spec("both", gpus=1, cpu=128, memory_gib=1024)]).pending["both"]
    assert reason.never is NeverRunnable.FLEET and reason.code is ReasonCode.INSUFFICIENT_CPU, reason
    assert reason.message.startswith("no node of any member cluster has both the 128 CPUs and the 1Ti memory one "
                                     "replica asks, even empty (the most CPUs on one node are 256, on mems; the most "
                                     "memory 4Ti, on cpus)"), reason


def test_a_spread_jobs_replicas_count_none_on_a_cluster_whose_nodes_lack_their_cpu() -> None:
    """Eight H100 nodes whose hosts have 16 CPUs hold no replica asking 32: the fleet holds 1 of 2, never 9."""
    fleet = [hosts(cluster("small-hosts", "west", pool(H100, nodes=8)), 16, 1024),
             hosts(cluster("east-2", "east", pool(H100, nodes=1)), 96, 1024)]
    reason = cycle(fleet, [spec("s", kind=INF, gpus=8, cpu=32, replicas=2, models=("H100",))]).pending["s"]
    assert reason.never is NeverRunnable.FLEET, reason
    assert reason.message.startswith("the whole fleet could hold 1 of 2 replicas x 8 H100 even empty (the largest, "
                                     f"east-2, has 8 {H100} on 1 nodes)"), reason
