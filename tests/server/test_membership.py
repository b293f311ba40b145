"""A restart expects back every member it remembers, not only those holding its placements (store/members.py).

The federator's own turn (`Federator.tick`) over a fake clock; the members live in a real SQLite file,
opened again as after SIGKILL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from server_support import LEASE, LOST_AFTER, Clock, MemoryStore, capacity, join, make, placed_on, spec

from federator.model import ClusterState
from federator.server.federator import Federator
from federator.store.members import Member, SqliteMemberStore

SETTLE = 10.0


def _tick(fed: Federator) -> object:
    async def main() -> object:
        got = await fed.tick()
        fed.cycles.close()
        return got
    return asyncio.run(main())


def _first_life(db: Path, store: MemoryStore, clock: Clock) -> None:
    """east-1 runs a job; west-1 joins and stays idle; then the federator dies with a backlog of four."""
    fed = make(store, clock, members=SqliteMemberStore(db))
    join(fed, "east-1", region="east")
    job = fed.submit(spec("on-east", gpus=8))
    _tick(fed)
    assert [p.cluster for p in job.placements] == ["east-1"]
    fed.connect(cluster="west-1", region="west", labels={"provider": "p2"})
    fed.report(fed.clusters["west-1"], capacity())
    _tick(fed)  # the loop's turn writes the members
    for i in range(4):
        fed.submit(spec(f"backlog-{i}", gpus=8))
    clock.now += 1


def test_an_idle_member_is_expected_back_and_shares_the_backlog(tmp_path: Path) -> None:
    db, store, clock = tmp_path / "federator.db", MemoryStore(), Clock()
    _first_life(db, store, clock)

    fed = make(store, clock, settle_seconds=SETTLE, members=SqliteMemberStore(db))
    west = fed.clusters["west-1"]  # known from the store alone: it held no placement
    assert (west.state, west.region, west.labels) == (ClusterState.PARTITIONED, "west", {"provider": "p2"})
    held = [p.placement_id for j in fed.jobs.values() for p in j.placements]
    join(fed, "east-1", *held, region="east")
    assert _tick(fed) is None  # west-1 is expected: the backlog waits rather than all going to east-1
    assert placed_on(fed, "backlog-") == {}
    join(fed, "west-1", region="west")
    assert _tick(fed) is not None
    assert placed_on(fed, "backlog-") == {"east-1": 2, "west-1": 2}


def test_a_lost_member_is_not_waited_for_by_the_next_restart(tmp_path: Path) -> None:
    db, clock = tmp_path / "federator.db", Clock()
    fed = make(MemoryStore(), clock, members=SqliteMemberStore(db))
    join(fed, "east-1", region="east")
    join(fed, "west-1", region="west")
    _tick(fed)
    fed.disconnect(fed.clusters["west-1"])  # taken out of the federation
    clock.now += LEASE + LOST_AFTER + 1
    join(fed, "east-1", region="east")  # east-1 keeps reporting
    _tick(fed)
    assert fed.clusters["west-1"].state is ClusterState.LOST
    lost_at = fed.clusters["west-1"].lost_at

    clock.now += 100
    again = make(MemoryStore(), clock, settle_seconds=SETTLE, members=SqliteMemberStore(db))
    # Remembered as Lost, since it went Lost (its alert and `get clusters` survive the restart; --forget-lost-after
    # counts from then), and not expected back
    assert (again.clusters["west-1"].state, again.clusters["west-1"].lost_at) == (ClusterState.LOST, lost_at)
    join(again, "east-1", region="east")
    assert _tick(again) is not None  # nothing else expected: no wait

    join(again, "west-1", region="west")  # it came back after all: remembered again
    _tick(again)
    third = make(MemoryStore(), clock, members=SqliteMemberStore(db))
    assert set(third.clusters) == {"east-1", "west-1"}


def test_a_member_is_written_once_per_change_not_per_report(tmp_path: Path) -> None:
    class Counting(SqliteMemberStore):
        writes: list[list[str]] = []

        def put(self, members: Iterable[Member], *, forget: Iterable[str] = ()) -> None:
            members = list(members)
            self.writes.append([m.name for m in members])
            super().put(members, forget=forget)

    clock = Clock()
    fed = make(MemoryStore(), clock, members=Counting(tmp_path / "f.db"))
    for name in ("a", "b", "c"):
        join(fed, name)
    _tick(fed)
    for _ in range(3):
        fed.report(fed.clusters["a"], capacity())
        _tick(fed)
    assert Counting.writes == [["a", "b", "c"]]  # three joins, one transaction; routine reports write nothing


def test_a_members_last_report_is_kept_every_30_seconds_batched_with_the_loops_write(tmp_path: Path) -> None:
    """Billing: a member never back after a restart is billed to its last report kept (server/silent_ends.py), so the
    time is kept, coarsely: a write per report per member was too dear. Three members reporting every 5 s for a
    minute are written twice, all three in one transaction each time, and a restart reads the time kept."""
    class Counting(SqliteMemberStore):
        writes: list[tuple[float, list[str]]] = []

        def put(self, members: Iterable[Member], *, forget: Iterable[str] = ()) -> None:
            members = list(members)
            self.writes.append((clock.now, [m.name for m in members]))
            super().put(members, forget=forget)

    clock = Clock()
    start = clock.now
    fed = make(MemoryStore(), clock, members=Counting(tmp_path / "f.db"))
    for name in ("a", "b", "c"):
        join(fed, name)
    _tick(fed)
    Counting.writes.clear()
    for _ in range(13):  # 0 to 60 s, a report of each every 5 s, the loop's turn after them
        clock.now += 5
        for name in ("a", "b", "c"):
            fed.report(fed.clusters[name], capacity())
        _tick(fed)
    assert Counting.writes == [(start + 30, ["a", "b", "c"]), (start + 60, ["a", "b", "c"])]
    fed.store.close()
    clock.now += 100
    again = make(MemoryStore(), clock, members=SqliteMemberStore(tmp_path / "f.db"))
    assert {name: rec.last_report_at for name, rec in again.clusters.items()} == dict.fromkeys("abc", start + 60)


def test_a_failed_write_is_kept_and_tried_again(tmp_path: Path) -> None:
    class Flaky(SqliteMemberStore):
        failures = 1

        def put(self, members: Iterable[Member], *, forget: Iterable[str] = ()) -> None:
            if Flaky.failures:
                Flaky.failures -= 1
                raise OSError(28, "No space left on device")
            super().put(members, forget=forget)

    clock = Clock()
    fed = make(MemoryStore(), clock, members=Flaky(tmp_path / "f.db"))
    join(fed, "east-1", region="east")
    assert _tick(fed) is not None  # the loop goes on
    assert [m.name for m in SqliteMemberStore(tmp_path / "f.db").load()] == []
    _tick(fed)
    assert [m.name for m in SqliteMemberStore(tmp_path / "f.db").load()] == ["east-1"]
