"""Shared fixtures. Helpers live in `support` and `builders` (importable from any test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import EXAMPLES


@pytest.fixture
def examples() -> Path:
    return EXAMPLES
