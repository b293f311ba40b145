"""A cluster Lost for --forget-lost-after with no placement there is forgotten (server/leases.py).

Before, a Lost cluster stayed until the federator restarted: in `get clusters`, in every scrape, in the
fleet's models Submit checks against, and in FederatorClusterLost, which fired for a retired cluster for ever.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import generate_latest
from server_support import LEASE, LOST_AFTER, Clock, MemoryStore, join, make, spec

from federator.model import ClusterState, JobPhase
from federator.server.clusters import FAILOVER_ANNOTATION
from federator.server.federator import Federator
from federator.store.members import SqliteMemberStore

FORGET = 3_600.0


def _lose(fed: Federator, clock: Clock, name: str) -> None:
    fed.disconnect(fed.clusters[name])
    clock.now += LEASE + 1
    fed.check_leases()  # Partitioned
    clock.now += LOST_AFTER + 1
    fed.check_leases()  # Lost
    assert fed.clusters[name].state is ClusterState.LOST


def _scrape(fed: Federator) -> str:
    return generate_latest(fed.metrics.registry).decode()


def _tick(fed: Federator) -> None:
    async def main() -> None:
        await fed.tick()
        fed.cycles.close()
    asyncio.run(main())


def test_a_lost_cluster_with_nothing_there_is_forgotten_after_the_grace_time(tmp_path: Path) -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, forget_lost_after=FORGET, members=SqliteMemberStore(tmp_path / "f.db"))
    join(fed, "retired")
    join(fed, "stays")
    _tick(fed)  # the members are written
    assert 'cluster="retired"' in _scrape(fed)
    _lose(fed, clock, "retired")

    clock.now += FORGET - 1
    fed.check_leases()
    assert "retired" in fed.clusters  # not yet
    clock.now += 2
    _tick(fed)

    assert set(fed.clusters) == {"stays"}
    scrape = _scrape(fed)
    assert 'cluster="retired"' not in scrape  # its state, capacity and per-cluster counters all went
    assert "federator_clusters_forgotten_total 1.0" in scrape
    assert [m.name for m in SqliteMemberStore(tmp_path / "f.db").load()] == ["stays"]  # no restart waits for it


def test_a_forgotten_clusters_models_leave_the_fleet() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, forget_lost_after=FORGET)
    join(fed, "only")
    assert fed.intake.fleet.models
    _lose(fed, clock, "only")
    clock.now += FORGET + 1
    fed.check_leases()
    assert not fed.intake.fleet.models


def test_a_cluster_holding_a_kept_jobs_placement_is_never_forgotten() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, forget_lost_after=FORGET)
    join(fed, "far")
    job = fed.submit(spec("patient", gpus=8, **{FAILOVER_ANNOTATION: "keep"}))
    fed.schedule_once()
    assert [p.cluster for p in job.placements] == ["far"]
    _lose(fed, clock, "far")
    clock.now += 10 * FORGET
    fed.check_leases()
    assert "far" in fed.clusters  # the kept job waits for it
    fed.cancel(job.job_id)
    assert job.phase is JobPhase.CANCELLED
    fed.check_leases()
    assert "far" not in fed.clusters  # nothing holds it now


def test_zero_never_forgets() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, forget_lost_after=0.0)
    join(fed, "old")
    _lose(fed, clock, "old")
    clock.now += 1e9
    fed.check_leases()
    assert fed.clusters["old"].state is ClusterState.LOST


def test_an_agent_that_comes_back_after_it_was_forgotten_joins_as_new_and_is_placed_on() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, forget_lost_after=FORGET)
    join(fed, "phoenix")
    _lose(fed, clock, "phoenix")
    clock.now += FORGET + 1
    fed.check_leases()
    assert "phoenix" not in fed.clusters
    join(fed, "phoenix")
    assert fed.clusters["phoenix"].state is ClusterState.READY
    job = fed.submit(spec("after", gpus=8))
    fed.schedule_once()
    assert [p.cluster for p in job.placements] == ["phoenix"]


def test_a_connected_agent_keeps_a_lost_cluster_known() -> None:
    """Lost with its agent back but not yet reported: the agent is re-syncing, so the cluster stays."""
    clock = Clock()
    fed = make(MemoryStore(), clock, forget_lost_after=FORGET)
    join(fed, "waking")
    _lose(fed, clock, "waking")
    fed.connect(cluster="waking", region="r", labels={})
    clock.now += FORGET + 1
    fed.check_leases()
    assert fed.clusters["waking"].connected
