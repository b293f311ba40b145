"""How long usage records are kept: `federator serve --usage-retention`, 90 days by default.

Nothing else bounded the `usage` table: finished jobs are removed (server/retention.py), but each placement
that ran left a record for ever, about 420 bytes of the --db file per job (outside SRE soak: 0.2 MB to
15.2 MB over 41k records while the job list stayed flat; the chart's 1 Gi volume full in ~3.3 days). About
540 bytes since 0.14.0 keeps each record's region and vendor (accounting/store.py).

A record is deleted once its *placement* ended longer ago than the retention; every record of a running
placement stays however old it is, the sizes it had before an in-place resize included (store.py `prune`;
outside billing QA F2), so `federator usage` over the last retention is exact, and so is "since it started" for
a placement still running. Off the event loop: each batch is one small
DELETE on a worker thread, and the loop runs between batches; the store's lock, which the meter's writes on the
loop wait for, is held for one batch only. Kubernetes mode too: its usage records live in --db as well
(accounting/store.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from federator.accounting.store import SqliteUsageStore
from federator.store.errors import StoreError

log = logging.getLogger("federator.accounting.retention")
DEFAULT_USAGE_RETENTION = 90 * 24 * 3600.0  # a quarter: last month's and last quarter's invoices still add up
SWEEP_SECONDS = 60.0
PRUNE_BATCH = 500  # records per DELETE: a few milliseconds of the store's lock


@dataclass(frozen=True, slots=True)
class UsageRetention:
    """`federator serve --usage-retention`: seconds after a record ended that it is deleted; 0 keeps all."""

    seconds: float = DEFAULT_USAGE_RETENTION

    def __post_init__(self) -> None:
        if not (self.seconds >= 0 and self.seconds != float("inf")):
            raise ValueError(f"--usage-retention: must be 0 (keep forever) or more seconds, got {self.seconds!r}")

    @property
    def keeps_all(self) -> bool:
        return self.seconds == 0


class UsagePruner:
    """Deletes usage records past the retention every SWEEP_SECONDS (`run`), PRUNE_BATCH at a time."""

    def __init__(self, store: SqliteUsageStore, retention: UsageRetention, *, clock: Callable[[], float],
                 on_pruned: Callable[[int], None] = lambda _n: None, batch: int = PRUNE_BATCH) -> None:
        self.store = store
        self.retention = retention
        self.clock = clock
        self.on_pruned = on_pruned
        self.batch = batch
        self.pruned = 0

    async def sweep(self) -> int:
        """One pass: every record past the retention, batch by batch; how many went. A store that refuses a
        delete (a full or replaced disk) stops the pass; the next sweep tries again."""
        if self.retention.keeps_all:
            return 0
        cutoff = self.clock() - self.retention.seconds
        gone = 0
        while True:
            try:
                n = await asyncio.to_thread(self.store.prune, ended_before=cutoff, batch=self.batch)
            except (sqlite3.Error, StoreError) as exc:
                log.warning("usage records past --usage-retention not deleted (%s); tried again at the next sweep",
                            exc)
                break
            gone += n
            if n:
                self.on_pruned(n)
            if n < self.batch:
                break
        if gone:
            self.pruned += gone
            log.info("deleted %d usage records that ended more than --usage-retention %gs ago", gone,
                     self.retention.seconds)
        return gone

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # a bug here must not stop the sweeps, nor anything else
                log.exception("deleting old usage records failed")
            await asyncio.sleep(SWEEP_SECONDS)


__all__ = ["DEFAULT_USAGE_RETENTION", "PRUNE_BATCH", "UsagePruner", "UsageRetention"]
