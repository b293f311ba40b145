"""`federator usage --cluster X` over a big usage table: what the store's reads for one cluster cost.

    python bench/usage_cluster.py --records 200000 --clusters 50

Builds a real usage store (accounting/store.py, a SQLite file in a temporary directory) with `--records` closed
records spread over `--clusters` clusters and a year, then times the reads a usage call with `--cluster` makes
(server/usage_service.py, server/usage_names.py): one cluster's records over the whole year and over one day, and
`has_records` for a name no record has (a typo'd `--cluster`: the store is asked whether anything ever ran there)
and for a provider's moved cluster. Prints the plan SQLite chose for each, and how long opening a file without
the cluster index takes (the index is built then, once).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from federator.accounting import SqliteUsageStore, UsageRecord

YEAR, DAY = 365 * 86400.0, 86400.0


def timed(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def fill(path: Path, records: int, clusters: int) -> None:
    store = SqliteUsageStore(path)
    batch = []
    for i in range(records):
        start = i * YEAR / records
        batch.append(UsageRecord(placement_id=f"p{i}", job_id=f"j{i}", queue=f"q{i % 20}", user=f"u{i % 300}",
                                 namespace="default", cluster=f"c{i % clusters}", provider=f"prov{i % clusters % 5}",
                                 model="H100", accelerators_milli=8000, start=start, end=start + 3600))
        if len(batch) == 5000:
            store.put(batch)
            batch = []
    store.put(batch)
    store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--clusters", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fed.db"
        fill(path, args.records, args.clusters)
        with sqlite3.connect(path) as db:  # a file as an older release left it: no cluster index
            db.execute("DROP INDEX IF EXISTS usage_cluster")
        t = time.perf_counter()
        store = SqliteUsageStore(path)
        opened = (time.perf_counter() - t) * 1000
        day = YEAR / 2
        cases: dict[str, Callable[[], object]] = {
            "one cluster, the whole year": lambda: store.query(since=0, until=YEAR, cluster="c7"),
            "one cluster, one day": lambda: store.query(since=day, until=day + DAY, cluster="c7"),
            "has_records, a name no record has": lambda: store.has_records("east-l"),
            "has_records, cluster billed to a provider": lambda: store.has_records("c7", provider="prov-gone"),
        }
        out = {"records": args.records, "clusters": args.clusters, "open_ms": round(opened, 1),
               "cases": {name: round(timed(fn, args.repeat), 3) for name, fn in cases.items()}}
        store.close()
        with sqlite3.connect(path) as db:
            out["plans"] = {
                "query": [r[3] for r in db.execute(
                    "EXPLAIN QUERY PLAN SELECT * FROM usage WHERE cluster = ? AND start < ? AND "
                    "(end_time IS NULL OR end_time > ?)", ("c7", YEAR, 0))],
                "has_records": [r[3] for r in db.execute(
                    "EXPLAIN QUERY PLAN SELECT 1 FROM usage WHERE cluster = ? AND provider = ? LIMIT 1",
                    ("c7", "p"))]}
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
