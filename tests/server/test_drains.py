"""An admin's drain (server/drains.py): kept with the cordon, paced, waits for a disconnected agent, and goes on
after a restart with no job lost."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from server_support import Clock, MemoryStore, capacity, join, make, spec

from federator.model import JobPhase, ReasonCode
from federator.model.cordon import Cordon, Drain
from federator.model.state_words import state_words
from federator.server.cordons import Cordons
from federator.server.federator import Federator
from federator.server.orders import CancelOrder
from federator.store.cordons import SqliteCordonStore
from federator.store.sqlite import SqliteJobStore

DRAIN = Drain("admin", 1_000.0, "hardware swap")


def federator(db: Path, clock: Clock) -> tuple[Federator, SqliteCordonStore]:
    """A federator over the SQLite file `db`, its cordons kept beside its jobs, as `federator serve` makes it."""
    fed = Federator(store=SqliteJobStore(db), clock=clock, lease_seconds=10.0, lost_after_seconds=60.0)
    cordons = SqliteCordonStore(db)
    fed.cordons.attach(cordons)
    return fed, cordons


def cancels(fed: Federator, cluster: str) -> list[CancelOrder]:
    rec = fed.clusters[cluster]
    out = []
    while not rec.outbox.empty():
        order = rec.outbox.get_nowait()
        if isinstance(order, CancelOrder):
            out.append(order)
    return out


def test_a_drain_outlives_a_restart_mid_drain_waits_for_its_agent_and_loses_no_job(tmp_path: Path) -> None:
    db, clock = tmp_path / "fed.db", Clock()
    fed, store = federator(db, clock)
    a = join(fed, "a")
    ids = [fed.submit(spec(f"gang-{i}", replicas=1)).job_id for i in range(3)]
    fed.schedule_once()
    for job_id in ids:
        [p] = fed.jobs[job_id].placements
        assert p.cluster == "a"
        fed.acked(a, p.placement_id)
        fed.job_update(a, p.placement_id, JobPhase.RUNNING, "1 of 1 replicas running")
    changed, cordon = asyncio.run(fed.cordons.drain("a", DRAIN))
    assert changed and cordon == Cordon("admin", 1_000.0, "hardware swap", DRAIN)  # not cordoned before: the drain's
    fed.drains.batch = 1
    cancels(fed, "a")
    assert fed.drains.turn() == 1  # one a turn: paced
    [first] = [j for j in ids if fed.jobs[j].phase is JobPhase.PENDING]
    assert str(fed.jobs[first].pending_reason) == "Drained: cluster a drained by admin: hardware swap"
    assert [c.reason for c in cancels(fed, "a")] == ["superseded: cluster a drained by admin: hardware swap"]
    store.close()
    fed.store.close()  # the federator dies here, mid-drain

    clock.now += 30
    fed, store = federator(db, clock)
    assert fed.cordons.draining() == {"a": DRAIN}
    assert sorted(fed.jobs) == sorted(ids)  # every job, the same ids
    assert fed.jobs[first].phase is JobPhase.PENDING and fed.jobs[first].pending_reason is not None
    assert fed.jobs[first].pending_reason.code is ReasonCode.DRAINED
    left = [j.job_id for j in fed.drains.left("a")]
    assert sorted(left) == sorted(set(ids) - {first})
    assert fed.drains.turn() == 0  # its agent is not back: a placement it cannot be told to stop would run twice
    assert "is not connected" in fed.drains.waiting("a")
    assert 'federator_cluster_drain_jobs_left{cluster="a",region="r"} 2.0' in \
        generate_latest(fed.metrics.registry).decode()  # flat while it waits: FederatorDrainStalled
    assert [j.job_id for j in fed.drains.left("a")] == left

    a = fed.connect(cluster="a", region="r", labels={})
    fed.report(a, capacity(*(p.placement_id for j in left for p in fed.jobs[j].placements)))
    cancels(fed, "a")
    assert fed.drains.turn() == 2
    assert fed.drains.left("a") == []
    assert {c.placement_id for c in cancels(fed, "a")} == {f"{j}.g1.a" for j in left}
    assert all(fed.jobs[j].phase is JobPhase.PENDING for j in ids)
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_drained_placements_total{cluster="a"} 2.0' in scrape  # this process ended two
    assert 'federator_cluster_drain_jobs_left{cluster="a",region="r"} 0.0' in scrape

    fed.schedule_once()  # no room elsewhere yet: still Drained, the drain said first, then the wait
    reason = fed.jobs[first].pending_reason
    assert reason is not None and reason.code is ReasonCode.DRAINED, reason
    assert reason.message.startswith("cluster a drained by admin: hardware swap; then: "), reason
    join(fed, "b")
    fed.schedule_once()
    assert all([(p.cluster, p.generation) for p in fed.jobs[j].placements] == [("b", 2)] for j in ids)
    assert fed.drains.turn() == 0
    store.close()
    fed.store.close()


def test_a_drain_of_a_cordoned_cluster_keeps_the_cordons_words_and_one_uncordon_ends_both() -> None:
    cordons = Cordons()
    assert asyncio.run(cordons.cordon("a", Cordon("bob", 1.0, "driver upgrade")))
    changed, held = asyncio.run(cordons.drain("a", DRAIN))
    assert changed and held == Cordon("bob", 1.0, "driver upgrade", DRAIN)
    again, held = asyncio.run(cordons.drain("a", Drain("carol", 2.0, "other words")))
    assert not again and held.drain == DRAIN  # idempotent: the first drain's words stay
    assert not asyncio.run(cordons.cordon("a", Cordon("carol", 3.0)))  # a cordon keeps the drain
    assert cordons.draining() == {"a": DRAIN}
    assert asyncio.run(cordons.uncordon("a")) == Cordon("bob", 1.0, "driver upgrade", DRAIN)
    assert cordons.draining() == {} and cordons.names() == frozenset()


def test_an_admins_cordon_taken_over_from_a_providers_drain_outlives_a_restart(tmp_path: Path) -> None:
    """An admin's Cordon of a provider-drained cluster takes the cordon over (server/cordons.py `takes_over`), and
    the store keeps the admin's `by` across a restart: else the provider could Uncordon it after one."""
    db, clock = tmp_path / "fed.db", Clock()
    fed, store = federator(db, clock)
    provider = Drain("provider acme (cluster acme-1)", 1_000.0, "driver upgrade")
    assert asyncio.run(fed.cordons.drain("acme-1", provider))[0]
    admin = Cordon("admin", 2_000.0, "incident 12")
    assert asyncio.run(fed.cordons.cordon("acme-1", admin))  # changed: taken over
    assert not asyncio.run(fed.cordons.cordon("acme-1", Cordon("bob", 3_000.0, "later")))  # now an admin's
    assert not asyncio.run(fed.cordons.drain("acme-1", Drain("provider acme (cluster acme-2)", 4_000.0)))[0]
    store.close()
    fed.store.close()

    fed, store = federator(db, clock)
    assert fed.cordons.get("acme-1") == Cordon("admin", 2_000.0, "incident 12", provider)  # the drain goes on
    assert fed.cordons.draining() == {"acme-1": provider}
    store.close()
    fed.store.close()


def test_an_admins_drain_takes_a_providers_cordon_over_and_starts_a_drain_if_none_held() -> None:
    cordons = Cordons()
    by_provider = Cordon("cluster east-1", 1.0, "maintenance window")  # a federation-CA cluster's own, no drain
    assert asyncio.run(cordons.cordon("east-1", by_provider))
    assert not asyncio.run(cordons.cordon("east-1", Cordon("provider acme (cluster acme-1)", 2.0)))  # not over
    changed, held = asyncio.run(cordons.drain("east-1", DRAIN))
    assert changed and held == Cordon("admin", DRAIN.at, DRAIN.reason, DRAIN)
    assert cordons.draining() == {"east-1": DRAIN}


def test_the_cordon_table_of_an_older_federator_gains_the_drain_columns(tmp_path: Path) -> None:
    db = tmp_path / "fed.db"
    old = sqlite3.connect(db)
    old.execute("CREATE TABLE cordons (cluster TEXT PRIMARY KEY, by_whom TEXT NOT NULL, at REAL NOT NULL, "
                "reason TEXT NOT NULL)")
    old.execute("INSERT INTO cordons VALUES ('a', 'admin', 5.0, 'investigating')")
    old.commit()
    old.close()
    store = SqliteCordonStore(db)
    assert store.load() == {"a": Cordon("admin", 5.0, "investigating")}
    store.put("b", Cordon("bob", 6.0, "", DRAIN))
    assert store.load()["b"] == Cordon("bob", 6.0, "", DRAIN)
    store.close()


def test_state_words_say_draining_while_jobs_are_left_and_drained_after() -> None:
    assert state_words("Ready", cordoned=True, drain_jobs_left=3) == "Ready,Cordoned,Draining"
    assert state_words("Ready", cordoned=True, drain_jobs_left=0) == "Ready,Cordoned,Drained"
    assert state_words("Partitioned", cordoned=True, drain_jobs_left=1, unreachable=True) == \
        "Partitioned,Cordoned,Draining,APIUnreachable"
    assert state_words("Ready", cordoned=True) == "Ready,Cordoned"


def test_a_finished_drain_says_so_once_and_is_not_looked_through_again(caplog: pytest.LogCaptureFixture) -> None:
    """Every loop turn looked through every job for each drain held, for as long as it held (days, until an
    uncordon): a drain that found nothing left is done until another drain of the cluster."""
    fed = make(MemoryStore(), Clock())
    join(fed, "a")
    asyncio.run(fed.cordons.drain("a", DRAIN))
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        for _ in range(3):
            assert fed.drains.turn() == 0
        assert asyncio.run(fed.cordons.uncordon("a")) is not None
        fed.drains.turn()
        asyncio.run(fed.cordons.drain("a", Drain("bob", 2_000.0)))
        fed.drains.turn()
        fed.drains.turn()
    done = [r.getMessage() for r in caplog.records if "no federated job has a placement there" in r.getMessage()]
    assert done == ["cluster a drained: no federated job has a placement there; it takes no new work until "
                    "uncordoned"] * 2
