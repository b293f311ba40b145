"""`federator usage --cluster X` reads one cluster's records from the `usage_cluster` index (accounting/store.py).

Before 0.11.0 the usage call read every record of its window and dropped the other clusters' in Python (1.2 s for a
year of 200,000 records), and asking whether any record names a cluster (a typo'd `--cluster`,
server/usage_names.py) scanned the whole table: docs/benchmarks.md. The plans SQLite chooses for the statements the
store really runs are checked here, and a file an older release wrote gets the index when it is opened.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from federator.accounting import SqliteUsageStore, UsageRecord

# The usage table as 0.10.0 made it: its two indexes, no usage_cluster.
OLD_TABLE = ("CREATE TABLE usage (placement_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, queue TEXT NOT NULL, "
             "user TEXT NOT NULL, namespace TEXT NOT NULL, cluster TEXT NOT NULL, provider TEXT NOT NULL, "
             "model TEXT NOT NULL, accelerators_milli INTEGER NOT NULL, start REAL NOT NULL, end_time REAL)")


def record(i: int, cluster: str, *, start: float, end: float | None) -> UsageRecord:
    return UsageRecord(placement_id=f"j{i}.g1.{cluster}", job_id=f"j{i}", queue="q", user="u", namespace="ns",
                       cluster=cluster, provider=f"p-{cluster}", model="m", accelerators_milli=1000, start=start,
                       end=end)


def filled(path: Path) -> SqliteUsageStore:
    store = SqliteUsageStore(path)
    store.put([record(i, f"c{i % 4}", start=100.0 * i, end=100.0 * i + 250 if i % 7 else None) for i in range(400)])
    return store


def plans_of(store: SqliteUsageStore, path: Path, ask: object) -> list[list[str]]:
    """The query plan of each statement the store ran for `ask()` (read back with its parameters bound)."""
    ran: list[str] = []
    store._db.set_trace_callback(ran.append)
    try:
        ask()  # type: ignore[operator]
    finally:
        store._db.set_trace_callback(None)
    with sqlite3.connect(path) as db:
        return [[row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in ran if "FROM usage" in sql]


def test_one_clusters_records_and_whether_a_cluster_has_any_are_read_from_the_cluster_index(tmp_path: Path) -> None:
    path = tmp_path / "fed.db"
    store = filled(path)
    asked = {
        "query": lambda: store.query(since=5_000.0, until=30_000.0, cluster="c1"),
        "has_records": lambda: store.has_records("c-typo"),
        "has_records by provider": lambda: store.has_records("c1", provider="p-gone"),
    }
    for name, ask in asked.items():
        (plan,) = plans_of(store, path, ask)
        assert any("INDEX usage_cluster (cluster=?" in step for step in plan), (name, plan)
        assert not any(step.startswith("SCAN") for step in plan), (name, plan)
    store.close()


def test_a_clusters_window_is_what_the_window_holds_of_that_cluster(tmp_path: Path) -> None:
    store = filled(tmp_path / "fed.db")
    window = store.query(since=5_000.0, until=30_000.0)
    for cluster in ("c0", "c1", "c3", "nowhere"):
        mine = store.query(since=5_000.0, until=30_000.0, cluster=cluster)
        assert mine == [r for r in window if r.cluster == cluster]
    assert len(store.query(since=5_000.0, until=30_000.0, cluster="c1")) > 50  # open and closed, both counted
    assert store.has_records("c2") and not store.has_records("c-typo")
    assert store.has_records("c2", provider="p-c2") and not store.has_records("c2", provider="p-c1")
    store.close()


def test_a_file_without_the_cluster_index_gets_it_when_opened_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "fed.db"
    with sqlite3.connect(path) as db:
        db.execute(OLD_TABLE)
        db.execute("CREATE INDEX usage_window ON usage (start, end_time)")
        db.execute("INSERT INTO usage VALUES ('j1.g1.c', 'j1', 'q', 'u', 'ns', 'east-1', 'p', 'm', 1000, 10.0, 20.0)")
    db.close()
    store = SqliteUsageStore(path)
    assert [r.placement_id for r in store.query(since=0.0, until=100.0, cluster="east-1")] == ["j1.g1.c"]
    store.close()
    with sqlite3.connect(path) as db:
        made = db.execute("SELECT sql FROM sqlite_master WHERE name = 'usage_cluster'").fetchone()
    db.close()
    assert made == ("CREATE INDEX usage_cluster ON usage (cluster, start)",)
