"""Folders for the files the federator writes (its SQLite file, the audit log)."""

from __future__ import annotations

import errno
from pathlib import Path


def make_parent(path: Path) -> None:
    """Create `path`'s folder if need be. A parent that is a file is NotADirectoryError naming it: mkdir's own
    error, "File exists", names no problem a user could see."""
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path.parent))
    path.parent.mkdir(parents=True, exist_ok=True)
