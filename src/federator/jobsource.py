"""Where job documents are read from: a file, or standard input when the file is `-` (`submit -f -`).

Why a module: a job file is read in two places of one submit (jobfile_loading.load_job_files, and the CLI's
second look at what the file wrote, cli/written_form.py), and standard input can be read only once; a generated
stream of jobs (`sed ... | federator submit -f -`, kubectl's habit) was refused as a file named `-` (outside QA,
HPC H9). Both read through here: stdin once per process, its text kept, and named `<stdin>` wherever a file's
name is said.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import BinaryIO

from federator.yamltext import utf8_problem

STDIN = Path("-")
"""The file name that means standard input, as kubectl and most tools take it."""
STDIN_NAME = "<stdin>"


class TooLarge(ValueError):
    """A job source past the limit: `size` bytes (a file), or more than the limit (stdin, read no further)."""

    def __init__(self, size: int, *, exact: bool) -> None:
        super().__init__(f"{size} bytes")
        self.size = size
        self.exact = exact


def is_stdin(path: Path) -> bool:
    return path == STDIN


def source_name(path: Path) -> str:
    """How a job source is named in messages: the file's path, or `<stdin>`."""
    return STDIN_NAME if is_stdin(path) else str(path)


def read_job_text(path: Path, *, limit: int) -> str:
    """A job source as UTF-8 text: OSError as reading raises it, TooLarge past `limit` bytes, ValueError
    (`yamltext.utf8_problem`) for bytes that are not UTF-8."""
    if is_stdin(path):
        data = _stdin_bytes(sys.stdin.buffer, limit)
        if len(data) > limit:
            raise TooLarge(limit, exact=False)
    else:
        size = path.stat().st_size
        if size > limit:
            raise TooLarge(size, exact=True)
        data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(utf8_problem(data, exc)) from None


@cache
def _stdin_bytes(stream: BinaryIO, limit: int) -> bytes:
    """Standard input, read once (up to one byte past `limit`, to tell that it is too long) and kept."""
    return stream.read(limit + 1)
