"""The jobs the store refused to `GroupCommit.write_or_owe`, owed until a write of them lands.

Why a module of its own: `write_or_owe` takes state the federator has already acted on (an agent's word that a
placement ran or ended, a job's message), so a write the store refuses (a full disk) cannot be an error the caller
undoes: the jobs are owed instead, and each turn of the federator's loop `pay`s them, writing the live jobs as they
stand then, so a later write never lays an old state over a newer one. A `pay` that fails leaves them owed. Either
failure is said once per outage (a full disk refuses every write, and every turn would say so again).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from federator.model import Job, JobId

log = logging.getLogger("federator.store")


class OwedJobs:
    """The owed live jobs, by id; under the group commit's lock (`cv`, re-entrant), which it shares."""

    def __init__(self, cv: threading.Condition) -> None:
        self._cv = cv
        self._jobs: dict[JobId, Job] = {}
        self._paying = False  # a `pay` write is queued or being written
        self.failing = False  # the last write of owed jobs failed: not said again until the store takes one

    def __len__(self) -> int:
        with self._cv:
            return len(self._jobs)

    def owe_after(self, live: list[Job], exc: BaseException) -> None:
        """A write_or_owe's write failed: its jobs are owed, said once per outage."""
        with self._cv:
            said, self.failing = self.failing, True
        if not said:
            log.warning("%d jobs not stored (%s); kept, and written once the store takes writes", len(live), exc)
        self._owe(live)

    def to_pay(self) -> list[Job]:
        """The owed jobs, taken to be written (none while a `pay` write of them is on its way)."""
        with self._cv:
            if not self._jobs or self._paying:
                return []
            live = list(self._jobs.values())
            self._jobs.clear()
            self._paying = True
            return live

    def paid(self, live: list[Job], error: BaseException | None) -> None:
        """The `pay` write of `live` is done: owed again if it failed (an error for which writing again can help).
        The owed are live jobs, so writing one later writes its newest state, never an old one over a newer."""
        with self._cv:
            self._paying = False
            self.failing = error is not None
            if error is None:
                return
            for job in live:
                self._jobs.setdefault(job.job_id, job)

    def forget(self, job_ids: Iterable[JobId]) -> None:
        """These jobs are removed from the store: owed no more."""
        with self._cv:
            for job_id in job_ids:
                self._jobs.pop(job_id, None)

    def _owe(self, live: list[Job]) -> None:
        with self._cv:
            for job in live:
                self._jobs[job.job_id] = job


__all__ = ["OwedJobs"]
