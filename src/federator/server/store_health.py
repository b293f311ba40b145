"""What an SRE sees of a SQLite store that refuses writes (a full disk): the same signals as Kubernetes mode.

Why: with the disk under --db full, a cycle's placements waited in memory, unsent, and agents' updates were
owed (server/unwritten_cycle.py, store/group_commit.py), while `federator_store_unwritten_jobs` and
`federator_store_write_errors_total` said 0: they were fed by the Kubernetes store alone. Scheduling stopped
with nothing but WARNING lines to show it, and FederatorJobsPendingTooLong fired four hours later (outside
operator QA). Now both are fed in SQLite mode too, so FederatorStoreWritesFailing fires after 5 minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from federator.store.errors import StoreFileGone, StoreUnavailable, WriteFailure

if TYPE_CHECKING:
    from federator.metrics import Metrics
    from federator.server.federator import Federator


def unwritten(fed: Federator) -> Callable[[], dict[str, int]]:
    """Jobs whose newest state the disk has not taken: the waiting cycle's and the owed updates (a gauge)."""
    def read() -> dict[str, int]:
        waiting = fed.cycles.unwritten
        n = fed.journal.owed + (len(waiting.changed) if waiting is not None else 0)
        return {WriteFailure.UNAVAILABLE.value: n} if n else {}
    return read


def count_errors(metrics: Metrics) -> Callable[[BaseException], None]:
    """Counts each write the SQLite store refused, by reason (a full disk or an I/O error: unavailable; the --db
    file deleted or replaced under it: file_gone)."""
    def counted(exc: BaseException) -> None:
        reason = WriteFailure.FILE_GONE if isinstance(exc, StoreFileGone) else \
            WriteFailure.UNAVAILABLE if isinstance(exc, StoreUnavailable) else WriteFailure.OTHER
        metrics.store_write_errors.labels(reason.value).inc()
    return counted


__all__ = ["count_errors", "unwritten"]
