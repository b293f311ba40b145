"""One federator per job store: an exclusive lock on a file next to the database, held while the store is open.

Why: two `federator serve` on one --db both accepted jobs (two active jobs of one name) and both
scheduled (two federators booking the same clusters). SQLite's own locks only serialise
transactions; they do not say "this file has an owner".

Why `flock` on a sidecar (`<db>.lock`) and not on the database: the kernel releases a flock when
its holder dies, SIGKILL included, so a restart after a crash is never blocked by a stale lock;
and closing a descriptor of the database file itself would drop the POSIX locks SQLite holds on it.
A flock belongs to the open file, not the process: a second store opened on the same file in one
process is refused too, and a store closed properly lets the next one open.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from federator.store.errors import StoreInUse


class StoreLock:
    """Held from `acquire` to `release` (or the process's end); it holds our pid for the message of the refused."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = db.with_name(db.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            by = f"pid {holder}" if holder else f"see {self.path}"
            raise StoreInUse(f"--db {self.db} is in use by another federator ({by})") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the file stays: a lock is its flock, never its existence
            self._fd = None


def held(db: Path) -> bool:
    """Whether a federator holds `db`'s lock now: a look that writes nothing (no `<db>.lock` is made, none is
    taken), for a reader such as `federator backup` that must tell a live store's `-wal` from a stale one."""
    try:
        fd = os.open(db.with_name(db.name + ".lock"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # no lock file: no federator ran on it here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock, if taken
    return False


def _holder(fd: int) -> str:
    """The pid the holder wrote, or "" (it may be writing it right now)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


__all__ = ["StoreLock", "held"]
