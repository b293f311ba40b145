"""Whether the --db path still names the file a store has open.

Why: `rm fed.db` under a running federator left SQLite writing to the unlinked file through its open
descriptor, which works as before. 300 Submits were acknowledged and lost at the next start, with no log
line, metric or alert (outside SRE F1). A file replaced under it (`mv other.db fed.db`, a restore over a
running federator) is the same: the writes go to a file nobody will open again.

So each write first compares the path's device and inode with those of the file opened at start (one
`stat`, about a microsecond, against the millisecond of the fsync it precedes). While they differ the
store refuses writes (StoreUnavailable: a client hears UNAVAILABLE, "nothing was stored") and never
reopens the path on its own: a new file there is empty, or is someone else's. The fix is an operator's
(docs/operators.md, "The store file was deleted or replaced"). The federator says it once, as an ERROR, and
`federator_store_file_gone` shows it at every scrape, writes or not.
"""

from __future__ import annotations

import logging
import os
import threading
from enum import StrEnum
from pathlib import Path

from federator.store.errors import StoreFileGone

log = logging.getLogger("federator.store")


RUNBOOK = "docs/operators.md, 'The store file was deleted or replaced'"


def open_descriptor(file_id: tuple[int, int]) -> tuple[int, str] | None:
    """The lowest descriptor of this process open on the file of this (device, inode), with what /proc shows it
    as (`PATH (deleted)`, or the file's new name); None where there is no /proc/self/fd (not Linux) or none is.
    Matched by inode, not by name: a deleted file's name is gone, and a replaced one's names the new file."""
    try:
        fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    except (OSError, ValueError):
        return None
    for fd in fds:
        try:
            st = os.stat(f"/proc/self/fd/{fd}")
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == file_id:
            return fd, target
    return None


class FileState(StrEnum):
    SAME = "same"
    DELETED = "deleted"
    REPLACED = "replaced by another file"
    WAL_LOST = "left without its -wal file (deleted or replaced)"


class FileIdentity:
    """The device and inode of a store's file at open; `check` before every write. `say`: this store's
    refusal is the one logged (the job store's: the member and usage stores share the file and stay quiet)."""

    def __init__(self, path: Path, *, what: str = "job store", say: bool = True) -> None:
        self.path = path
        self.what = what
        self.say = say
        st = os.stat(path)
        self._id = (st.st_dev, st.st_ino)
        self.wal = Path(f"{path}-wal")
        self._wal_id: tuple[int, int] | None = None  # the -wal file SQLite writes, once it has made one
        self._lock = threading.Lock()
        self._last = FileState.SAME

    def _wal_state(self) -> FileState:
        """The -wal beside the file: SQLite keeps writing to the one it opened, so one deleted under a running
        federator took every write since the last checkpoint with it at the next crash, jobs acknowledged before
        the deletion too, without a word (outside QA, chaos F3)."""
        try:
            st = os.stat(self.wal)
        except FileNotFoundError:
            return FileState.SAME if self._wal_id is None else FileState.WAL_LOST
        if self._wal_id is None:
            self._wal_id = (st.st_dev, st.st_ino)
        return FileState.SAME if (st.st_dev, st.st_ino) == self._wal_id else FileState.WAL_LOST

    def state(self) -> FileState:
        """What the path names now; a change is logged once (an ERROR when lost, an INFO when it is back)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            now = FileState.DELETED
        else:
            now = FileState.SAME if (st.st_dev, st.st_ino) == self._id else FileState.REPLACED
            if now is FileState.SAME:
                now = self._wal_state()
        with self._lock:
            was, self._last = self._last, now
        if self.say and now is not was:
            if now is FileState.SAME:
                log.info("%s: %s names the file opened at start again; writes are taken again", self.what, self.path)
            else:
                log.error("%s", self.advice(now))
        return now

    def message(self, state: FileState) -> str:
        """What a refused write says (a client hears it in UNAVAILABLE): what happened, not the operator's steps,
        which name this process's descriptors (`advice`, in the ERROR)."""
        if state is FileState.WAL_LOST:
            return (f"the {self.what} file {self.path} was {state.value} while the federator ran: what it held was "
                    "copied into the file (a checkpoint), and nothing more is stored, since SQLite would keep "
                    "writing to a -wal no start reads; restart the federator, which makes a new one "
                    "(docs/operators.md)")
        return (f"the {self.what} file {self.path} was {state.value} while the federator ran: nothing is stored "
                f"from now on ({RUNBOOK})")

    def advice(self, state: FileState) -> str:
        """The ERROR's words: the runbook's steps with this process's pid and descriptors filled in, so they can
        be copied. The jobs acknowledged so far are only in the file this process holds open; "stop the federator
        and restore a backup", what this once said, closed that file for good and lost every job since the backup
        (outside QA F11)."""
        if state is FileState.WAL_LOST:
            return self.message(state)
        pid, name = os.getpid(), self.path.name
        head = (f"the {self.what} file {self.path} was {state.value} while the federator ran: nothing is stored from "
                f"now on. Keep the federator (pid {pid}) running: the jobs it acknowledged are only in the file it "
                "still holds open, and a restart closes it for good. If the file was only moved, move it back: "
                "writes resume. Otherwise save it now")
        db = open_descriptor(self._id)
        if db is None:
            return (f"{head}: this system has no /proc/{pid}/fd to copy it from (Linux has), so find the descriptor "
                    f"process {pid} holds on it (`lsof -p {pid}`) and copy the file and its -wal out; then follow "
                    f"{RUNBOOK}")
        wal = open_descriptor(self._wal_id) if self._wal_id is not None else None
        wal_from = f"/proc/{pid}/fd/{wal[0]}" if wal is not None else f"{self.path}-wal"
        return (f"{head} (it holds it as /proc/{pid}/fd/{db[0]} -> {db[1]}): `mkdir -p SAFE && cp /proc/{pid}/fd/"
                f"{db[0]} SAFE/{name} && cp {wal_from} SAFE/{name}-wal && federator backup --db SAFE/{name} --own-wal "
                f"--to SAFE/restored.db`; only then put SAFE/restored.db at --db, with no -wal or -shm beside it, and "
                f"restart the federator ({RUNBOOK})")

    def check(self) -> None:
        """StoreFileGone unless the path still names the file this store writes."""
        state = self.state()
        if state is not FileState.SAME:
            raise StoreFileGone(self.message(state))


def identity(path: Path, *, what: str, say: bool = True) -> FileIdentity | None:
    """The identity of an open store's file; None for ':memory:' (tests), which has no path to lose."""
    return None if str(path) == ":memory:" else FileIdentity(path, what=what, say=say)


__all__ = ["FileIdentity", "FileState", "identity", "open_descriptor"]
