"""Where usage records live: a `usage` table in a SQLite file, so `federator usage` survives restarts.

The federator's `--db` file holds it (next to the jobs table, its own
connection). In Kubernetes mode jobs live in FederatedJobs, and the usage
table still goes to `--db`: mount a volume there to keep it across pod
restarts (the chart's `usage.persistence`). A record is written when its
placement starts running (open, `end` NULL) and again when it ends.

Closed records of placements that ended longer ago than `federator serve --usage-retention` are deleted
(`prune`, driven by accounting/retention.py), a small batch per call: the placement's record is found by the
primary key, so retention by the placement's end needed no new index. SQLite does not shrink the file after a
delete: the pages freed are reused by later records, so the file levels off at about one retention's worth of
records.

The indexes: the primary key (a placement's record), `usage_window` (start, end_time: a window's records, and
retention's candidates) and, from 0.11.0, `usage_cluster` (cluster, start): `federator usage --cluster X` read
every record of the window and dropped the other clusters' in Python (1.2 s for a year of 200,000 records), and
asking whether any record names a cluster (server/usage_names.py, asked for a typo'd `--cluster`) scanned the
whole table. The index is made when a store opens a file without it (IF NOT EXISTS, within schema version 3: a
release before 0.11.0 keeps it up to date on its inserts and deletes like any index, and never needs it), once,
about a second per million records (docs/benchmarks.md).

Each record's region and vendor (0.14.0: `federator usage --by region|vendor`) are a table of their own,
`usage_where` (placement_id, region, vendor), written with the record and read with it (a LEFT JOIN on the
primary key), not columns of `usage`: 0.13.0 and older insert a record's values without naming the columns, so
on a `usage` table with two more columns every insert of a rolled-back federator failed and its usage was not
recorded. They never read `usage_where`, and run on a 0.14.0 file unharmed: their records read without a region
and vendor (as those of before the upgrade do; `records.known_where`), and the rows of the records their
retention deleted stay until 0.14.0's retention finds them (`prune`, a slice of the table a pass). The table is
made when a store opens a file without it, empty: nothing to migrate, so an upgrade is instant whatever the
records. WITHOUT ROWID: the id is kept once, not in the row and again in its index; a record takes about 285
bytes of the file where it took 225 (docs/operators.md, "Sizing the volume and pruning usage").
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import astuple
from pathlib import Path

from federator.accounting.records import UsageRecord
from federator.store.identity import identity
from federator.store.sqlite import close_sqlite, open_sqlite

_COLUMNS = ("placement_id", "job_id", "queue", "user", "namespace", "cluster", "provider", "model",
            "accelerators_milli", "start", "end_time")
_SELECT = (f"SELECT {', '.join('usage.' + c for c in _COLUMNS)}, coalesce(w.region, ''), coalesce(w.vendor, '') "
           "FROM usage LEFT JOIN usage_where AS w ON w.placement_id = usage.placement_id")
"""A record with its region and vendor ("" for a record written without: before 0.14.0, or by a rollback)."""

SEGMENT_MARK = "#"
"""A record id past this mark is a segment of the placement named before it (`PID#resized-<t>`, meter.py)."""
# True when the placement of record `seg` has no record still open or ended at or after the cutoff (the third
# parameter): the segment's own record for a placement never resized, else the placement's current record.
_PLACEMENT_ENDED = (
    "NOT EXISTS (SELECT 1 FROM usage AS cur WHERE cur.placement_id = CASE "
    f"WHEN instr(seg.placement_id, '{SEGMENT_MARK}') > 0 "
    f"THEN substr(seg.placement_id, 1, instr(seg.placement_id, '{SEGMENT_MARK}') - 1) "
    "ELSE seg.placement_id END AND (cur.end_time IS NULL OR cur.end_time >= ?))")
PRUNE_SQL = ("DELETE FROM usage WHERE rowid IN (SELECT rowid FROM usage AS seg WHERE start < ? AND end_time IS NOT "
             f"NULL AND end_time < ? AND {_PLACEMENT_ENDED} LIMIT ?) RETURNING placement_id")
"""Parameters: the cutoff three times, the batch."""


ORPHAN_SLICE = 5_000
"""Region rows a retention pass looks at for records gone (`_sweep_orphans`)."""


class SqliteUsageStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        # NORMAL in WAL mode: a commit is in the OS before put returns (a killed process loses nothing) but is
        # not fsynced on the event loop; a power cut may lose the last moments of records, never corrupt them.
        self._db = open_sqlite(path, synchronous="NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS usage (placement_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, "
            "queue TEXT NOT NULL, user TEXT NOT NULL, namespace TEXT NOT NULL, cluster TEXT NOT NULL, "
            "provider TEXT NOT NULL, model TEXT NOT NULL, accelerators_milli INTEGER NOT NULL, "
            "start REAL NOT NULL, end_time REAL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS usage_window ON usage (start, end_time)")
        self._db.execute("CREATE INDEX IF NOT EXISTS usage_cluster ON usage (cluster, start)")
        self._db.execute("CREATE TABLE IF NOT EXISTS usage_where (placement_id TEXT PRIMARY KEY, "
                         "region TEXT NOT NULL, vendor TEXT NOT NULL) WITHOUT ROWID")
        # The last moment the meter counted on this file (`seen`): in Kubernetes mode a replica's records of a
        # term as leader end there when it leads again and their placements are gone (accounting/meter.py `load`).
        self._db.execute("CREATE TABLE IF NOT EXISTS meter_seen (id INTEGER PRIMARY KEY CHECK (id = 0), "
                         "at REAL NOT NULL)")
        # Records stop (kept by the meter) if the path stops naming this file: store/identity.py. Quiet: the job
        # store says it, and the meter's warning carries the cause in Kubernetes mode, where --db is usage only.
        self.file = identity(path, what="usage records", say=False)
        self._orphans_after = ""  # `_sweep_orphans` looks at the region rows after this id next

    def put(self, records: list[UsageRecord]) -> None:
        if not records:
            return
        with self._lock:
            if self.file is not None:
                self.file.check()
            rows = [astuple(r) for r in records]
            n = len(_COLUMNS)
            self._db.execute("BEGIN")
            try:
                self._db.executemany(f"INSERT OR REPLACE INTO usage ({', '.join(_COLUMNS)}) VALUES "
                                     f"({', '.join('?' * n)})", [row[:n] for row in rows])
                self._db.executemany("INSERT OR REPLACE INTO usage_where VALUES (?, ?, ?)",
                                     [(r.placement_id, r.region, r.vendor) for r in records])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def see(self, at: float) -> None:
        """The meter counted up to `at` (its tick): kept as the last moment it knew its open records running."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meter_seen VALUES (0, ?)", (at,))

    def seen(self) -> float:
        """The last `see` (0: none, a file written before 0.16.0 or never ticked)."""
        with self._lock:
            row = self._db.execute("SELECT at FROM meter_seen WHERE id = 0").fetchone()
        return float(row[0]) if row else 0.0

    def prune(self, *, ended_before: float, batch: int) -> int:
        """Delete at most `batch` closed records of placements that ended before `ended_before`; how many went.

        By the *placement's* end, not the record's: a placement resized in place (accounting/meter.py
        `_resized`) keeps its earlier size under `PID#resized-<t>`, closed at the resize, while `PID` stays open
        (or closes later). Such a segment stays while its placement runs, and until the placement's own record
        ended before the cutoff (outside billing QA F2: retention deleted the 2-replica part of a serving job
        still running, so "since it started" lost it). Open records are never deleted. A small batch holds the
        lock (which `put`, on the event loop, waits for) a few milliseconds at most; the caller calls again until
        fewer than `batch` go."""
        with self._lock:
            if self.file is not None:
                self.file.check()
            # start < cutoff walks the usage_window index (start, end_time): a record that ended before the
            # cutoff started before it too. The placement's record is one look-up of the primary key per
            # candidate (test_usage_retention checks the plan), none for a placement never resized.
            gone = [pid for (pid,) in self._db.execute(PRUNE_SQL, (ended_before, ended_before, ended_before,
                                                                     batch)).fetchall()]
            for i in range(0, len(gone), 500):
                part = gone[i:i + 500]
                self._db.execute(f"DELETE FROM usage_where WHERE placement_id IN ({', '.join('?' * len(part))})",
                                 part)
            if len(gone) < batch:  # the end of a sweep: a slice of the region rows looked at for records gone
                self._sweep_orphans()
            return len(gone)

    def _sweep_orphans(self) -> None:
        """Delete the region rows of records a rolled-back release's retention deleted (module docstring), looking
        at ORPHAN_SLICE of them a call, in id order, round and round: a few milliseconds under the lock, where one
        look at the whole table held it a second per million records."""
        rows = self._db.execute(
            "SELECT w.placement_id, usage.placement_id IS NULL FROM usage_where AS w LEFT JOIN usage ON "
            "usage.placement_id = w.placement_id WHERE w.placement_id > ? ORDER BY w.placement_id LIMIT ?",
            (self._orphans_after, ORPHAN_SLICE)).fetchall()
        orphans = [pid for pid, orphan in rows if orphan]
        for i in range(0, len(orphans), 500):
            part = orphans[i:i + 500]
            self._db.execute(f"DELETE FROM usage_where WHERE placement_id IN ({', '.join('?' * len(part))})", part)
        self._orphans_after = rows[-1][0] if len(rows) == ORPHAN_SLICE else ""

    def open_records(self) -> list[UsageRecord]:
        with self._lock:
            rows = self._db.execute(f"{_SELECT} WHERE end_time IS NULL").fetchall()
        return [UsageRecord(*row) for row in rows]

    def closed_records(self, placement_ids: Iterable[str]) -> list[UsageRecord]:
        """The closed records of these placements, if any (by the primary key, 500 at a time)."""
        ids, rows = list(placement_ids), []
        with self._lock:
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                rows += self._db.execute(
                    f"{_SELECT} WHERE end_time IS NOT NULL AND usage.placement_id IN "
                    f"({', '.join('?' * len(part))})", part).fetchall()
        return [UsageRecord(*row) for row in rows]

    def has_records(self, cluster: str, *, provider: str | None = None) -> bool:
        """Whether any record kept is of `cluster` (and billed to `provider`, when given), whenever it ran: a look-up
        of the `usage_cluster` index (then, with `provider`, of the cluster's records until one is billed there)."""
        sql, args = "SELECT 1 FROM usage WHERE cluster = ?", [cluster]
        if provider is not None:
            sql, args = sql + " AND provider = ?", [cluster, provider]
        with self._lock:
            return self._db.execute(sql + " LIMIT 1", args).fetchone() is not None

    def query(self, *, since: float, until: float, cluster: str = "", places: bool = False) -> list[UsageRecord]:
        """Records that overlap [since, until); of `cluster` alone, when given (read from `usage_cluster`). With
        `places`, their region and vendor too (else ""): a look-up of `usage_where` per record, which made one
        cluster's year of 4,000 records 39.6 ms where it is 16.6 (bench/usage_cluster.py, 200,000 records), so
        only a grouping by region or vendor asks for it."""
        args: list[object]
        where, args = "start < ? AND (end_time IS NULL OR end_time > ?)", [until, since]
        if cluster:
            where, args = "cluster = ? AND " + where, [cluster, until, since]
        select = _SELECT if places else f"SELECT {', '.join(_COLUMNS)}, '', '' FROM usage"
        with self._lock:
            rows = self._db.execute(f"{select} WHERE {where} ORDER BY start", args).fetchall()
        return [UsageRecord(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            close_sqlite(self._db, self.file)


__all__ = ["ORPHAN_SLICE", "PRUNE_SQL", "SEGMENT_MARK", "SqliteUsageStore"]
