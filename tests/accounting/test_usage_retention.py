"""Usage records past --usage-retention are deleted in small batches, off the event loop; running ones stay.

Outside SRE soak (finding 2): the usage table grew ~420 bytes a job for ever (0.2 MB -> 15.2 MB over 41k
records) while finished jobs were trimmed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from federator.accounting import SqliteUsageStore, UsageRecord
from federator.accounting.retention import DEFAULT_USAGE_RETENTION, UsagePruner, UsageRetention
from federator.accounting.store import PRUNE_SQL
from federator.cli import build_parser
from federator.cli.serve import _usage_retention

DAY = 86_400.0
NOW = 1_000 * DAY


def record(i: int, *, start: float, end: float | None) -> UsageRecord:
    return UsageRecord(placement_id=f"j{i}.g1.c", job_id=f"j{i}", queue="q", user="u", namespace="ns", cluster="c",
                       provider="p", model="m", accelerators_milli=1000, start=start, end=end)


def rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM usage").fetchone()[0])


def test_records_that_ended_past_the_retention_go_in_batches_and_the_rest_stay(tmp_path: Path) -> None:
    store = SqliteUsageStore(tmp_path / "fed.db")
    old = [record(i, start=NOW - 40 * DAY, end=NOW - 31 * DAY) for i in range(1_050)]
    recent = [record(2_000 + i, start=NOW - 40 * DAY, end=NOW - 29 * DAY) for i in range(5)]
    running = [record(3_000, start=NOW - 400 * DAY, end=None)]  # running for a year: its record is current usage
    store.put(old + recent + running)
    pruned: list[int] = []
    pruner = UsagePruner(store, UsageRetention(30 * DAY), clock=lambda: NOW, on_pruned=pruned.append, batch=100)

    assert asyncio.run(pruner.sweep()) == 1_050
    assert pruned == [100] * 10 + [50]  # one small DELETE at a time: the loop runs between them
    left = store.query(since=0, until=NOW + 1)
    assert sorted(r.placement_id for r in left) == sorted(r.placement_id for r in recent + running)
    assert [r.placement_id for r in store.open_records()] == ["j3000.g1.c"]
    assert asyncio.run(pruner.sweep()) == 0
    store.close()
    assert rows(tmp_path / "fed.db") == 6


def test_a_retention_of_zero_keeps_every_record(tmp_path: Path) -> None:
    store = SqliteUsageStore(tmp_path / "fed.db")
    store.put([record(i, start=1.0, end=2.0) for i in range(10)])
    assert asyncio.run(UsagePruner(store, UsageRetention(0), clock=lambda: NOW).sweep()) == 0
    store.close()
    assert rows(tmp_path / "fed.db") == 10


def test_a_store_that_refuses_the_delete_is_tried_again_next_sweep(tmp_path: Path) -> None:
    store = SqliteUsageStore(tmp_path / "fed.db")
    store.put([record(i, start=1.0, end=2.0) for i in range(10)])
    pruner = UsagePruner(store, UsageRetention(DAY), clock=lambda: NOW)
    store.close()  # every call now fails as a full or replaced disk would
    assert asyncio.run(pruner.sweep()) == 0
    reopened = SqliteUsageStore(tmp_path / "fed.db")
    assert asyncio.run(UsagePruner(reopened, UsageRetention(DAY), clock=lambda: NOW).sweep()) == 10
    reopened.close()


@pytest.mark.parametrize(("argv", "seconds"), [
    pytest.param([], DEFAULT_USAGE_RETENTION, id="default-90-days"),
    pytest.param(["--usage-retention", "0"], 0.0, id="zero-keeps-all"),
    pytest.param(["--usage-retention", "3600"], 3600.0, id="an-hour"),
])
def test_the_serve_flag_sets_the_retention(argv: list[str], seconds: float) -> None:
    args = build_parser().parse_args(["serve", *argv])
    assert _usage_retention(args) == UsageRetention(seconds)


@pytest.mark.parametrize("value", ["-1", "inf", "nan"])
def test_a_bad_retention_is_refused_naming_the_flag(value: str) -> None:
    args = build_parser().parse_args(["serve", "--usage-retention", value])
    with pytest.raises(ValueError, match="--usage-retention"):
        _usage_retention(args)


def test_the_file_levels_off_pages_freed_by_pruning_are_reused(tmp_path: Path) -> None:
    """SQLite does not shrink a file after a delete; what operators.md promises is that it stops growing."""
    path = tmp_path / "fed.db"
    store = SqliteUsageStore(path)

    def day(n: int) -> int:
        store.put([record(n * 10_000 + i, start=n * DAY, end=n * DAY + 60) for i in range(3_000)])
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size

    first = day(1)
    for n in range(2, 6):  # a retention of one day: each day's records replace the last but one's
        asyncio.run(UsagePruner(store, UsageRetention(DAY), clock=lambda n=n: n * DAY + 30).sweep())
        size = day(n)
    assert rows(path) == 6_000
    assert size <= 2.3 * first  # two days of records, not five
    store.close()


def segment(pid: str, *, start: float, end: float) -> UsageRecord:
    """What the meter keeps of a placement's size before an in-place resize (meter.py `_resized`)."""
    return UsageRecord(placement_id=f"{pid}#resized-{end:.0f}", job_id="chat", queue="serving", user="admin",
                       namespace="ns", cluster="c", provider="p", model="m", accelerators_milli=2000, start=start,
                       end=end)


def test_a_resized_placement_keeps_its_earlier_sizes_while_it_runs_and_until_it_ended_past_the_retention(
        tmp_path: Path) -> None:
    """Outside billing QA F2: a serving job scaled 2 -> 1 replica kept running, and retention deleted its 2-replica
    segment (closed at the scale) while the placement ran on, so "since it started" lost it. Retention goes by
    the placement's end: every record of a placement stays while it runs, and until it ended past the retention."""
    store = SqliteUsageStore(tmp_path / "fed.db")
    running = UsageRecord(placement_id="chat.g1.c", job_id="chat", queue="serving", user="admin", namespace="ns",
                          cluster="c", provider="p", model="m", accelerators_milli=1000, start=NOW - 40 * DAY)
    ended_lately = replace(running, placement_id="late.g1.c", end=NOW - 1 * DAY)
    ended_long_ago = replace(running, placement_id="old.g1.c", start=NOW - 50 * DAY, end=NOW - 35 * DAY)
    store.put([running, segment("chat.g1.c", start=NOW - 45 * DAY, end=NOW - 40 * DAY),
               ended_lately, segment("late.g1.c", start=NOW - 45 * DAY, end=NOW - 40 * DAY),
               ended_long_ago, segment("old.g1.c", start=NOW - 60 * DAY, end=NOW - 50 * DAY),
               segment("gone.g1.c", start=NOW - 60 * DAY, end=NOW - 50 * DAY)])  # its placement's record pruned
    pruner = UsagePruner(store, UsageRetention(30 * DAY), clock=lambda: NOW, batch=1)

    assert asyncio.run(pruner.sweep()) == 3
    kept = sorted(r.placement_id for r in store.query(since=0, until=NOW + 1))
    assert kept == ["chat.g1.c", f"chat.g1.c#resized-{NOW - 40 * DAY:.0f}", "late.g1.c",
                    f"late.g1.c#resized-{NOW - 40 * DAY:.0f}"]

    store.put([replace(running, end=NOW - 31 * DAY)])  # the placement ends; past the retention, it all goes
    assert asyncio.run(pruner.sweep()) == 2
    assert sorted(r.placement_id for r in store.query(since=0, until=NOW + 1)) == kept[2:]
    store.close()


def test_pruning_looks_up_a_placements_record_by_its_key_not_by_a_scan(tmp_path: Path) -> None:
    """prune runs a batch at a time every minute over a table of a retention's worth of records: the candidate
    records come from the (start, end_time) index and each one's placement record from the primary key."""
    store = SqliteUsageStore(tmp_path / "fed.db")
    store.close()
    with sqlite3.connect(tmp_path / "fed.db") as db:
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {PRUNE_SQL}", (NOW, NOW, NOW, 500))]
    assert any("seg USING INDEX usage_window" in step for step in plan), plan
    assert any("cur USING INDEX sqlite_autoindex_usage_1 (placement_id=?)" in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan
