"""Test helpers shared across the tree (importable as `support`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
T = TypeVar("T")


def eventually(fn: Callable[[], T], *, timeout: float = 30.0, what: str = "condition") -> T:
    """Poll until fn returns something truthy; the machine may be loaded, so deadlines are generous."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - a server restarting refuses connections for a while
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
