"""The --ready-file of `serve` and `agent`: the addresses a process bound (port 0 picks them), written as JSON
once it serves, for scripts and tests that start it. Checked before anything starts, so a path that cannot be
written is one line naming the flag rather than a traceback after the process has bound its ports."""

from __future__ import annotations

import json
from pathlib import Path

from federator.paths import output_problem


def ready_file_problem(path: Path | None) -> str | None:
    """Why `path` cannot be written (its folder is missing, not a folder, or not writable), or None."""
    return output_problem("--ready-file", path)


def write_ready_file(path: Path, doc: dict[str, object]) -> None:
    """Atomically: a reader sees the whole document or none."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)
