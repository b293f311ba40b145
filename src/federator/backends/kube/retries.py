"""Status writes the API server did not take, held for a retry that backs off per job.

Why: a FederatedJob status write refused for what it is (403: the federator's RBAC lacks
`federatedjobs/status`; 422: the status does not validate against the installed CRD) was retried on
every flush, about once a second, for every such job, with a warning each time: a log line per job per
second that buried the one that mattered, and requests that could not work. Now:

- each held job's retry waits, doubling from FIRST_DELAY_SECONDS to MAX_DELAY_SECONDS;
- a newer state of a held job is written at once (`put` asks for it): a 422 may not recur for the next state;
- the log says it once per job and reason (`Outcome.say`), again when the reason changes or after
  RESAY_SECONDS;
- `counts()` says how many jobs' newest state is held, by reason: the gauge
  `federator_store_unwritten_jobs`, on which FederatorStoreWritesFailing fires;
- a retry that works clears the job (and says so once).

Pure bookkeeping over a clock the caller passes: no I/O, so tests drive it with a fake clock.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from federator.backends.kube.api import KubeError
from federator.model import Job, JobId
from federator.store.errors import WriteFailure

FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 60.0
RESAY_SECONDS = 600.0  # a job still failing for the same reason is said again after this long


def unavailable(error: KubeError) -> bool:
    """The API server did not take a request for want of itself, not for what was asked: no answer (a timeout, a
    refused connection), 429, or a 5xx. Sending the same again later may work."""
    return error.status == 0 or error.status == 429 or error.status >= 500


def failure_of(error: KubeError) -> WriteFailure:
    """The bounded reason of an API server's answer (status 0: no answer at all)."""
    if unavailable(error):
        return WriteFailure.UNAVAILABLE
    status = error.status
    if status in (401, 403):
        return WriteFailure.FORBIDDEN
    if status in (400, 422):
        return WriteFailure.INVALID
    if status == 409:
        return WriteFailure.CONFLICT
    return WriteFailure.OTHER


@dataclass(frozen=True, slots=True)
class Held:
    """A job whose newest state the store could not write, and when to try again."""

    job: Job
    reason: WriteFailure
    failures: int  # in a row
    delay: float  # seconds between this failure and the retry
    due: float  # the clock's time of the retry
    said_at: float  # the clock's time the log last said this job fails for this reason


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one failure changed: the job's record, and whether the log should say it (`say`)."""

    held: Held
    say: bool


class RetryBook:
    """The held jobs of a store. Changed by the store's writer (under its lock); read by scrapes (`counts`)."""

    def __init__(self, *, first: float = FIRST_DELAY_SECONDS, cap: float = MAX_DELAY_SECONDS,
                 resay: float = RESAY_SECONDS) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"retry delays: need 0 < first <= cap, got first={first}, cap={cap}")
        self.first = first
        self.cap = cap
        self.resay = resay
        self._held: dict[JobId, Held] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def due(self, now: float) -> list[Job]:
        """The held jobs whose retry is due."""
        with self._lock:
            return [h.job for h in self._held.values() if h.due <= now]

    def jobs(self) -> list[Job]:
        """Every held job, due or not (a last try before the store closes)."""
        with self._lock:
            return [h.job for h in self._held.values()]

    def failed(self, job: Job, reason: WriteFailure, now: float) -> Outcome:
        """Hold `job` (its newest state) for a retry: after `first` seconds, or twice the last wait (at most
        `cap`) if it was failing already."""
        with self._lock:
            before = self._held.get(job.job_id)
            delay = self.first if before is None else min(before.delay * 2, self.cap)
            say = before is None or before.reason is not reason or now - before.said_at >= self.resay
            said_at = now if say or before is None else before.said_at
            held = Held(job, reason, 1 if before is None else before.failures + 1, delay, now + delay, said_at)
            self._held[job.job_id] = held
        return Outcome(held, say)

    def clear(self, job_id: JobId) -> Held | None:
        """The job's state was written, or is no longer this store's to keep: its record, if it was held."""
        with self._lock:
            return self._held.pop(job_id, None)

    def counts(self) -> dict[WriteFailure, int]:
        """How many jobs are held, by the reason of their last failure."""
        with self._lock:
            return dict(Counter(h.reason for h in self._held.values()))


__all__ = ["FIRST_DELAY_SECONDS", "MAX_DELAY_SECONDS", "RESAY_SECONDS", "Held", "Outcome", "RetryBook",
           "failure_of", "unavailable"]
