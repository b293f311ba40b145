"""What goes wrong with the job store, as one line an operator or a client can act on.

Why a type of our own rather than sqlite3's: a caller must tell "the disk is full, nothing was
written" (retryable: the client hears UNAVAILABLE) from a bug, and a start must stop with a line
naming the file and the row, not a traceback from deep inside the decoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class StoreError(Exception):
    """The job store cannot be used as asked; the message is one line and names the cause."""


class StoreInUse(StoreError):
    """Another federator holds the store's lock: two schedulers must never book from one file."""


class StoreUnreadable(StoreError):
    """The file cannot be loaded as this version's job store (a corrupt row, an unknown schema)."""


class StoreDamaged(StoreUnreadable):
    """SQLite's own check finds the file damaged (pages overwritten, a torn copy): a restore's case, not a row's
    (store/integrity.py)."""


class StoreUnavailable(StoreError):
    """A write failed (the disk is full, an I/O error) and was rolled back: nothing of it is stored."""


class StoreFileGone(StoreUnavailable):
    """The --db path no longer names the file the store has open (deleted or replaced while it ran): writes are
    refused, not sent to a file no start will read (store/identity.py)."""


class StoreRefused(StoreError):
    """The store would not take some jobs for what they are, not for want of itself (the Kubernetes API
    server answered a FederatedJob's create with 403, 404 or 422, or an object that is not the job's holds
    its name: `NameTaken`): writing them again cannot help, so they are not kept for a retry. The other
    jobs of the same write are stored.

    One write may refuse several jobs for different reasons (two Submits into two missing namespaces):
    `each` holds every job's own refusal, so that each writer hears about its own job (`about`)."""

    def __init__(self, message: str, job_ids: frozenset[str], *,
                 each: Mapping[str, StoreRefused] | None = None) -> None:
        super().__init__(message)
        self.job_ids = job_ids
        self.each: dict[str, StoreRefused] = dict(each or {})

    @classmethod
    def of(cls, refusals: list[StoreRefused]) -> StoreRefused:
        """One error for a write that refused these jobs (one refusal each); the first names the cause."""
        if len(refusals) == 1:
            return refusals[0]
        each = {job_id: r for r in refusals for job_id in r.job_ids}
        return StoreRefused(f"{len(each)} jobs refused; the first: {refusals[0]}", frozenset(each), each=each)

    def about(self, job_ids: Iterable[str]) -> StoreRefused | None:
        """What a writer of `job_ids` hears: None if none of them was refused, the refusal of its job if it
        wrote one that was, else this whole error."""
        mine = [j for j in job_ids if j in self.job_ids]
        if not mine:
            return None
        if len(mine) == 1 and mine[0] in self.each:
            return self.each[mine[0]]
        return self


class NameTaken(StoreRefused):
    """A job's name is held in the store by something that is not the job (Kubernetes: a FederatedJob of that
    name that this job did not make, such as a finished job's object, which keeps the name until deleted).
    The gRPC Submit answers ALREADY_EXISTS. `holder` is the job id the object carries ("" if none), so the
    edge can tell the caller only what it may see."""

    def __init__(self, message: str, job_ids: frozenset[str], *, holder: str = "", vague: str = "") -> None:
        super().__init__(message, job_ids)
        self.holder = holder
        self.vague = vague or message


class WriteFailure(StrEnum):
    """Why the store did not take a write, as a bounded metric label (`federator_store_write_errors_total`)."""

    FORBIDDEN = "forbidden"  # 401/403: the federator's credentials or RBAC (an operator's fix)
    INVALID = "invalid"  # 400/422: the object does not validate (an old CRD, say)
    CONFLICT = "conflict"  # 409: another object holds the name
    UNAVAILABLE = "unavailable"  # no answer, 429, 5xx: the store is away
    FILE_GONE = "file_gone"  # SQLite: the --db file was deleted or replaced under the federator (store/identity.py)
    OTHER = "other"  # anything else (404 of a namespace, say)


__all__ = ["NameTaken", "StoreDamaged", "StoreError", "StoreFileGone", "StoreInUse", "StoreRefused", "StoreUnavailable",
           "StoreUnreadable", "WriteFailure"]
