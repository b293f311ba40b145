"""What goes wrong with the job store, as one line an operator or a client can act on.

Why a type of our own rather than sqlite3's: a caller must tell "the disk is full, nothing was
written" (retryable: the client hears UNAVAILABLE) from a bug, and a start must stop with a line
naming the file and the row, not a traceback from deep inside the decoder.
"""

from __future__ import annotations


class StoreError(Exception):
    """The job store cannot be used as asked; the message is one line and names the cause."""


class StoreInUse(StoreError):
    """Another federator holds the store's lock: two schedulers must never book from one file."""


class StoreUnreadable(StoreError):
    """The file cannot be loaded as this version's job store (a corrupt row, an unknown schema)."""


class StoreUnavailable(StoreError):
    """A write failed (the disk is full, an I/O error) and was rolled back: nothing of it is stored."""


class StoreRefused(StoreError):
    """The store would not take some jobs for what they are, not for want of itself (the Kubernetes API
    server answered a FederatedJob's create with 403, 404 or 422; not 409, an object of that name that is
    not the job's, which may yet go away): writing them again cannot help, so they
    are not kept for a retry. The other jobs of the same write are stored."""

    def __init__(self, message: str, job_ids: frozenset[str]) -> None:
        super().__init__(message)
        self.job_ids = job_ids


__all__ = ["StoreError", "StoreInUse", "StoreRefused", "StoreUnavailable", "StoreUnreadable"]
