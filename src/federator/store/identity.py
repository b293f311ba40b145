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
                log.error("%s", self.message(now))
        return now

    def message(self, state: FileState) -> str:
        if state is FileState.WAL_LOST:
            return (f"the {self.what} file {self.path} was {state.value} while the federator ran: what it held was "
                    "copied into the file (a checkpoint), and nothing more is stored, since SQLite would keep "
                    "writing to a -wal no start reads; restart the federator, which makes a new one "
                    "(docs/operators.md)")
        return (f"the {self.what} file {self.path} was {state.value} while the federator ran: nothing is stored "
                "from now on; stop the federator, put back the right file (or restore a backup made with "
                "`federator backup`) with no -wal or -shm file beside it, and start it (docs/operators.md)")

    def check(self) -> None:
        """StoreFileGone unless the path still names the file this store writes."""
        state = self.state()
        if state is not FileState.SAME:
            raise StoreFileGone(self.message(state))


def identity(path: Path, *, what: str, say: bool = True) -> FileIdentity | None:
    """The identity of an open store's file; None for ':memory:' (tests), which has no path to lose."""
    return None if str(path) == ":memory:" else FileIdentity(path, what=what, say=say)


__all__ = ["FileIdentity", "FileState", "identity"]
