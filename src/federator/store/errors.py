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


__all__ = ["StoreError", "StoreInUse", "StoreUnavailable", "StoreUnreadable"]
