"""A Partitioned cluster whose agent is heard is not Lost: --lost-after counts from its last message.

Found by outside WAN QA (W1): an agent re-syncing 2,303 placements over a 40 kbit/s link was heard all along (its
JobUpdates), but a cluster becomes Ready only with the report that ends a re-sync, and Partitioned -> Lost counted
from when it was Partitioned: `Lost after 30.8s Partitioned` / `Lost (0s without a message)`, every job there
placed again while its agent ran them. An agent saying it cannot reach its member's API is heard too, and stays
the exception: Lost --lost-after after it said so (server/member_health.py).
"""

from __future__ import annotations

from server_support import LEASE, LOST_AFTER, Clock, MemoryStore, join, make, spec

from federator.model import ClusterState, JobPhase
from federator.server.federator import Federator
from federator.server.job_message import cluster_note
from federator.server.orders import LaunchOrder


def _running(fed: Federator, name: str, cluster: str) -> str:
    job = fed.submit(spec(name))
    fed.schedule_once()
    (p,) = job.placements
    rec = fed.clusters[cluster]
    assert p.cluster == cluster
    while not rec.outbox.empty():
        assert isinstance(rec.outbox.get_nowait(), LaunchOrder)
    fed.acked(rec, p.placement_id)
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "running")
    return p.placement_id


def test_an_agent_heard_while_partitioned_keeps_its_cluster_from_lost_until_it_is_silent_for_lost_after() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    home = join(fed, "slow-1")
    placement = _running(fed, "train", "slow-1")
    job = next(iter(fed.jobs.values()))

    clock.now += LEASE + 1  # its report is stuck behind a saturated uplink: no message for a lease
    fed.check_leases()
    assert home.state is ClusterState.PARTITIONED

    # A re-sync going slowly: a JobUpdate every few seconds, for three times --lost-after, no closing report yet.
    for _ in range(int(3 * LOST_AFTER / 5)):
        clock.now += 5
        fed.job_update(home, placement, JobPhase.RUNNING, "resync")
        fed.check_leases()
        assert home.state is ClusterState.PARTITIONED, home.state
    assert job.phase is JobPhase.RUNNING and job.placements[0].placement_id == placement  # not re-placed
    assert fed.metrics.registry.get_sample_value("federator_placement_retries_total",
                                                 {"reason": "ClusterNotReady"}) in (None, 0.0)
    assert "(60 s on)" in cluster_note(home, lost_after=LOST_AFTER, keep=False)

    clock.now += LOST_AFTER - 1  # then silent: not yet --lost-after since its last message
    fed.check_leases()
    assert home.state is ClusterState.PARTITIONED
    clock.now += 2
    fed.check_leases()
    assert home.state is ClusterState.LOST and job.phase is JobPhase.PENDING  # placed again


def test_a_cluster_whose_agent_says_its_member_is_unreachable_is_still_lost_after_lost_after() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    home = join(fed, "dark-1")
    _running(fed, "serve", "dark-1")
    for _ in range(int(LOST_AFTER / 5) + 2):  # reports every 5 s, each saying the API does not answer
        clock.now += 5
        fed.report(home, home.capacity, unreachable="dial tcp 10.0.0.1:6443: i/o timeout")
        fed.check_leases()
    assert home.state is ClusterState.LOST
