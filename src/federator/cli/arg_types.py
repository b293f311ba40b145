"""argparse types of the client commands: a number out of its bounds is refused naming the bounds and what was
given (at most 40 characters of it), as a usage error, never a traceback."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 3600, got {value[:40]!r}")
    return seconds


def whole(what: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`, refused as `expected WHAT from LOW to HIGH`."""
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = low - 1
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"expected {what} from {low} to {high}, got {value[:40]!r}")
        return n
    return parse


__all__ = ["seconds", "whole"]
