"""Maintenance windows as the cordons hold and store them (server/maintenance_windows.py): the SQLite file of a
0.13.0 federator gains the window's columns and its reader still reads the file; which request replaces a window."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from server_support import Clock, join
from test_drains import federator
from test_rebalancing import chat

from federator.model import JobPhase
from federator.model.cordon import Cordon, Drain
from federator.server.cordons import Cordons
from federator.store.cordons import SqliteCordonStore

WINDOW = Cordon("admin", 10.0, "switch firmware", window_from=100.0, window_until=200.0)


def test_a_0_13_file_gains_the_window_columns_and_a_0_13_reader_still_reads_it(tmp_path: Path) -> None:
    db = tmp_path / "fed.db"
    old = sqlite3.connect(db)  # the cordons table as 0.13.0 leaves it: made, then the drain columns added
    old.execute("CREATE TABLE cordons (cluster TEXT PRIMARY KEY, by_whom TEXT NOT NULL, at REAL NOT NULL, "
                "reason TEXT NOT NULL)")
    for column, kind in (("drain_by", "TEXT"), ("drain_at", "REAL"), ("drain_reason", "TEXT"),
                         ("drain_surge_seconds", "REAL")):
        old.execute(f"ALTER TABLE cordons ADD COLUMN {column} {kind}")
    old.execute("INSERT INTO cordons VALUES ('a', 'admin', 5.0, 'investigating', 'ops', 6.0, 'swap', 900.0)")
    old.commit()
    old.close()

    store = SqliteCordonStore(db)
    assert store.load() == {"a": Cordon("admin", 5.0, "investigating", Drain("ops", 6.0, "swap", 900.0))}
    store.put("b", WINDOW)
    assert store.load()["b"] == WINDOW
    store.close()
    assert SqliteCordonStore(db).load()["b"] == WINDOW  # a restart keeps it

    # 0.13.0's reader names its columns: it reads the window as a cordon in force now, with no end (a rollback,
    # which operators.md "Upgrading to 0.14.0" states), and its re-cordon writes the row without the window.
    reader = sqlite3.connect(db)
    rows = reader.execute("SELECT cluster, by_whom, at, reason, drain_by, drain_at, drain_reason, "
                          "drain_surge_seconds FROM cordons ORDER BY cluster").fetchall()
    assert rows == [("a", "admin", 5.0, "investigating", "ops", 6.0, "swap", 900.0),
                    ("b", "admin", 10.0, "switch firmware", None, None, None, None)]
    reader.execute("INSERT OR REPLACE INTO cordons (cluster, by_whom, at, reason, drain_by, drain_at, drain_reason, "
                   "drain_surge_seconds) VALUES ('b', 'admin', 11.0, '', NULL, NULL, NULL, NULL)")
    reader.commit()
    reader.close()
    assert SqliteCordonStore(db).load()["b"] == Cordon("admin", 11.0, "")


def test_a_window_counts_as_a_cordon_only_while_in_force() -> None:
    now = [50.0]
    cordons = Cordons(clock=lambda: now[0])
    assert asyncio.run(cordons.cordon("a", WINDOW))
    assert (cordons.names(), cordons.since(), cordons.ahead()) == (frozenset(), {}, {"a": 100.0})
    now[0] = 100.0
    assert (cordons.names(), cordons.since(), cordons.ahead()) == (frozenset({"a"}), {"a": 100.0}, {})
    now[0] = 199.0
    assert asyncio.run(cordons.end_windows()) == [] and cordons.get("a") == WINDOW
    now[0] = 200.0
    assert cordons.names() == frozenset()
    released: list[str] = []
    cordons.on_release = released.append
    assert asyncio.run(cordons.end_windows()) == ["a"] and cordons.get("a") is None and released == ["a"]


def test_a_window_is_replaced_by_another_or_a_cordon_now_and_a_cordon_now_stays() -> None:
    now = [50.0]
    cordons = Cordons(clock=lambda: now[0])
    assert asyncio.run(cordons.cordon("a", WINDOW))
    assert not asyncio.run(cordons.cordon("a", WINDOW))  # a retried call
    moved = Cordon("admin", 11.0, "moved", window_from=300.0, window_until=400.0)
    assert asyncio.run(cordons.cordon("a", moved)) and cordons.get("a") == moved
    assert asyncio.run(cordons.cordon("a", Cordon("admin", 12.0, "now")))
    assert cordons.names() == frozenset({"a"})
    assert not asyncio.run(cordons.cordon("a", WINDOW))  # a cordon in force stays: uncordon first
    assert cordons.get("a") == Cordon("admin", 12.0, "now")


def test_a_drain_makes_a_window_a_cordon_now_with_no_end() -> None:
    cordons = Cordons(clock=lambda: 50.0)
    assert asyncio.run(cordons.cordon("a", WINDOW))
    drain = Drain("ops", 60.0, "now")
    changed, held = asyncio.run(cordons.drain("a", drain))
    assert changed and held == Cordon("ops", 60.0, "now", drain) and cordons.names() == frozenset({"a"})


def test_a_drains_surge_does_not_go_to_a_cluster_whose_window_the_job_would_cross(tmp_path: Path) -> None:
    """The surge (server/drain_surge.py) asks the scheduler besides the cycle: it too is told the windows ahead, so
    a serving job with no run bound is not surged onto east-1 the day before its maintenance."""
    clock = Clock()
    fed, store = federator(tmp_path / "fed.db", clock)
    west = join(fed, "west-1", region="west")
    job = fed.submit(chat(replicas=1, preferred=("west",)))
    fed.schedule_once()
    [old] = job.placements
    fed.acked(west, old.placement_id)
    fed.job_update(west, old.placement_id, JobPhase.RUNNING, "1 of 1 replicas running")
    join(fed, "east-1", region="east")
    window = Cordon("admin", clock.now, "switch", window_from=clock.now + 86_400, window_until=clock.now + 90_000)
    assert asyncio.run(fed.cordons.cordon("east-1", window))
    asyncio.run(fed.cordons.drain("west-1", Drain("admin", clock.now, "hardware swap")))
    fed.drains.turn()
    assert [p.cluster for p in job.placements] == ["west-1"]  # no surge to east-1: it serves on where it is
    assert asyncio.run(fed.cordons.uncordon("east-1")) is not None  # the window cancelled: the surge goes there
    fed.drains.turn()
    assert sorted(p.cluster for p in job.placements) == ["east-1", "west-1"]
    store.close()
    fed.store.close()
