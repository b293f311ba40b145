"""An operator's cordon: no new work on the cluster until uncordoned, what it runs stays, kept across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from server_support import Clock, MemoryStore, capacity, join, make, spec

from federator.model import ClusterState, JobPhase
from federator.model.cordon import Cordon
from federator.security.authz import Submitter
from federator.server.blame import Blame
from federator.server.cordons import MAX_REASON, CordonError, Cordons, checked
from federator.server.quarantine import Quarantine, QuarantinePolicy
from federator.store.cordons import SqliteCordonStore
from federator.store.errors import StoreUnavailable


class FailingStore:
    def put(self, cluster: str, cordon: Cordon | None) -> None:
        raise StoreUnavailable("database or disk is full")

    def load(self) -> Mapping[str, Cordon]:
        return {}


def test_a_cordoned_cluster_takes_no_new_work_keeps_what_it_runs_and_takes_work_once_uncordoned() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    a = join(fed, "a")
    running = fed.submit(spec("running"))
    fed.schedule_once()
    assert [p.cluster for p in running.placements] == ["a"]

    assert asyncio.run(fed.cordons.cordon("a", Cordon("admin", clock.now, "driver upgrade")))
    fed.report(a, capacity(*(p.placement_id for p in running.placements)))  # still 8 free: a second node
    new = fed.submit(spec("new"))
    fed.schedule_once()
    assert new.phase is JobPhase.PENDING and new.pending_reason is not None
    assert "a is Cordoned" in new.pending_reason.message
    assert running.phase is JobPhase.PLACED and fed.clusters["a"].state is ClusterState.READY  # untouched
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_cluster_cordoned{cluster="a",region="r"} 1.0' in scrape
    assert f'federator_cluster_cordoned_since_timestamp_seconds{{cluster="a",region="r"}} {clock.now!r}' in scrape

    assert asyncio.run(fed.cordons.uncordon("a")) == Cordon("admin", clock.now, "driver upgrade")
    fed.schedule_once()
    assert [p.cluster for p in new.placements] == ["a"]
    assert 'federator_cluster_cordoned{cluster="a",region="r"} 0.0' in generate_latest(fed.metrics.registry).decode()


def test_a_cordon_outlives_a_restart_and_an_uncordon_does_too(tmp_path: Path) -> None:
    db = tmp_path / "fed.db"
    store = SqliteCordonStore(db)
    cordons = Cordons(store)
    assert asyncio.run(cordons.cordon("east-1", Cordon("admin", 1700000000.0, "investigating")))
    assert asyncio.run(cordons.cordon("west-1", Cordon("ops", 1700000001.0)))
    store.close()

    store = SqliteCordonStore(db)
    again = Cordons(store)
    assert again.held() == {"east-1": Cordon("admin", 1700000000.0, "investigating"),
                            "west-1": Cordon("ops", 1700000001.0, "")}
    assert asyncio.run(again.uncordon("east-1")) is not None
    store.close()
    assert Cordons(SqliteCordonStore(db)).names() == frozenset({"west-1"})
    # when it began, as stored: FederatorClusterCordonedLong counts from it across restarts (SRE re-test F7)
    assert Cordons(SqliteCordonStore(db)).since() == {"west-1": 1700000001.0}


def test_a_cordon_the_store_refuses_is_not_taken() -> None:
    cordons = Cordons(FailingStore())
    with pytest.raises(StoreUnavailable):
        asyncio.run(cordons.cordon("a", Cordon("admin", 0.0)))
    assert cordons.get("a") is None


def test_a_second_cordon_keeps_the_first_ones_words() -> None:
    cordons = Cordons()
    assert asyncio.run(cordons.cordon("a", Cordon("alice", 1.0, "first")))
    assert not asyncio.run(cordons.cordon("a", Cordon("bob", 2.0, "second")))
    assert cordons.get("a") == Cordon("alice", 1.0, "first")
    assert asyncio.run(cordons.uncordon("b")) is None


def test_a_read_from_before_this_federators_own_change_does_not_undo_it() -> None:
    """Kubernetes mode reads the MemberClusters' cordons every few seconds; a read that began before a
    `federator cordon` must not take the cordon away until the next read."""
    cordons = Cordons()
    read_at = cordons.changes
    asyncio.run(cordons.cordon("a", Cordon("admin", 1.0)))
    assert not cordons.sync({}, read_at=read_at)
    assert cordons.names() == frozenset({"a"})
    assert cordons.sync({"b": Cordon("kubectl", 2.0)}, read_at=cordons.changes)  # kubectl cordoned b, uncordoned a
    assert cordons.names() == frozenset({"b"})


@pytest.mark.parametrize(("cluster", "reason", "field"), [
    ("", "", "cluster"), ("East_1", "", "cluster"), ("a" * 64, "", "cluster"),
    ("east-1", "x" * (MAX_REASON + 1), "reason"), ("east-1", "two\nlines", "reason"),
])
def test_a_bad_request_names_its_field(cluster: str, reason: str, field: str) -> None:
    with pytest.raises(CordonError) as err:
        checked(cluster, reason)
    assert err.value.field == field and str(err.value).startswith(f"{field}: ")


def test_lifting_a_quarantine_ends_it_and_starts_its_count_afresh() -> None:
    ended: list[str] = []
    q = Quarantine(QuarantinePolicy(failures=2), ready=lambda: 4, on_end=ended.append)
    for owner in ("alice", "bob"):
        q.confirm(Blame("c", Submitter(user=owner), 10.0), 10.0)
    assert q.holding("c", 11.0) is not None
    assert q.lift("c") is not None and ended == ["c"]
    assert q.holding("c", 12.0) is None and q.lift("c") is None
