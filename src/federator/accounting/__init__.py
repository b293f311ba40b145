"""Usage accounting: accelerator-seconds per queue, user, namespace, cluster, provider, model, region and vendor.

A consumer of job state changes (`meter.attach`: the federator's journal shows it each), not a part of the
scheduler: records go to a SQLite table (`store.py`) and a Prometheus counter,
and `federator usage` reads them back through `UsageService` (`records.summarize`).
"""

from federator.accounting.meter import LABEL_LIMIT, MeteredGroupCommit, UsageMeter, attach
from federator.accounting.records import (
    MICRO,
    Dimension,
    UsageRecord,
    UsageReport,
    UsageRow,
    known_where,
    summarize,
)
from federator.accounting.store import SqliteUsageStore

__all__ = ["LABEL_LIMIT", "MICRO", "Dimension", "MeteredGroupCommit", "SqliteUsageStore", "UsageMeter",
           "UsageRecord", "UsageReport", "UsageRow", "attach", "known_where", "summarize"]
