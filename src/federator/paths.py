"""Folders for the files the federator writes (its SQLite file, the audit log)."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def output_problem(flag: str, path: Path | None) -> str | None:
    """Why a file a flag names cannot be written (its folder is missing, not a folder, or not writable), or None:
    said before the work whose result it would hold, not after."""
    if path is None:
        return None
    folder = path.parent
    if not folder.is_dir():
        return f"{flag}: {path}: the folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"{flag}: {path}: the folder {folder} is not writable"
    return None


def make_dir(folder: Path) -> None:
    """Create `folder` if need be. One that is a file is NotADirectoryError naming it: mkdir's own error, "File
    exists", names no problem a user could see."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(folder))
    folder.mkdir(parents=True, exist_ok=True)


def make_parent(path: Path) -> None:
    """Create `path`'s folder if need be (`make_dir`)."""
    make_dir(path.parent)
