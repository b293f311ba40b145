"""Where quarantines are kept across a restart, and the writer that keeps them there off the event loop.

Why: a quarantine (server/quarantine.py) held in memory only was gone after any restart (an upgrade, a
failover, a crash), and a black-hole member then drew every tenant's next jobs again until it had failed enough
of them to be quarantined once more. A quarantine is kept where the operators' cordons are: the `quarantines`
table of the SQLite file (store/quarantines.py), or in Kubernetes mode an annotation of the cluster's
MemberCluster (backends/kube/quarantines.py). The pending blames and the failure counts stay in memory: they are
evidence on its way, and a restart costs only the time to gather it again.

A quarantine holds in memory at once (new work must stop now, not after a disk or an API server answers); its
write follows, off the event loop (a SQLite fsync, a MemberCluster patch to an API server that may be slow).
Writes are serialized and coalesced, each cluster's newest change last; one that fails is logged and tried again
every `retry_seconds` until it is written or a newer change of that cluster replaces it. A crash between the
change and its write loses that change: the cluster is then as the store last held it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

from federator.model.quarantine import Held
from federator.store.errors import StoreError

log = logging.getLogger("federator.server")

RETRY_SECONDS = 5.0
"""A quarantine write that failed is tried again this often."""


class QuarantineStore(Protocol):
    """Where quarantines are kept: the SQLite file (store/quarantines.py) or the MemberClusters
    (backends/kube/quarantines.py). `until` is Unix seconds (the federator's clock, steady_clock.py)."""

    def put(self, cluster: str, held: Held | None) -> None:
        """Keep `held` for `cluster`, or forget the cluster's (None); raise StoreError if it could not be kept."""

    def load(self) -> Mapping[str, Held]: ...


class QuarantineWrites:
    """The changes not written yet, newest per cluster, and the one task that writes them (see the module
    docstring). Without a store nothing is kept."""

    def __init__(self, *, retry_seconds: float = RETRY_SECONDS) -> None:
        self.store: QuarantineStore | None = None
        self.retry_seconds = retry_seconds
        self._due: dict[str, Held | None] = {}
        self._task: asyncio.Task[None] | None = None
        self._waiting = False  # the task sleeps before trying a failed write again
        self._closing = False

    @property
    def due(self) -> int:
        """Changes not written yet."""
        return len(self._due)

    def put(self, cluster: str, held: Held | None) -> None:
        """Keep `held` for `cluster` (None: forget it), written soon; a newer change not yet written replaces it."""
        if self.store is None:
            return
        self._due.pop(cluster, None)  # re-inserted last: written after the changes made before it
        self._due[cluster] = held
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop to keep free (a tool, a test): written at once
            self._write_once()
            return
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())

    async def close(self) -> None:
        """Write what is due, once each (at stop: one that fails is logged and not tried again)."""
        self._closing = True
        task = self._task
        if task is not None:
            if self._waiting:  # between tries: nothing is being written
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for _ in range(len(self._due) if self.store is not None else 0):
            await self._write_next()

    async def _drain(self) -> None:
        while self._due and not self._closing:
            if not await self._write_next():
                self._waiting = True
                try:
                    await asyncio.sleep(self.retry_seconds)
                finally:
                    self._waiting = False

    async def _write_next(self) -> bool:
        """Write the oldest change due; False (and it stays due, unless a newer one replaced it) if it failed."""
        assert self.store is not None
        cluster, held = next(iter(self._due.items()))
        del self._due[cluster]
        try:
            await asyncio.to_thread(self.store.put, cluster, held)
        except StoreError as exc:
            self._failed(cluster, held, exc)
            return False
        return True

    def _write_once(self) -> None:
        assert self.store is not None
        for cluster, held in list(self._due.items()):
            del self._due[cluster]
            try:
                self.store.put(cluster, held)
            except StoreError as exc:
                self._failed(cluster, held, exc)

    def _failed(self, cluster: str, held: Held | None, exc: StoreError) -> None:
        self._due.setdefault(cluster, held)  # a newer change made meanwhile wins
        what = "its quarantine" if held is not None else "the end of its quarantine"
        log.warning("cluster %s: %s not kept yet (%s); tried again every %gs while this federator runs (a restart "
                    "before then finds the cluster as last kept)", cluster, what, exc, self.retry_seconds)


__all__ = ["RETRY_SECONDS", "QuarantineStore", "QuarantineWrites"]
