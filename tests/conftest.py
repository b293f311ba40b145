"""Shared fixtures. Helpers live in `support` and `builders` (importable from any test)."""

from __future__ import annotations

from pathlib import Path

import pytest

import federator.scheduler

from support import EXAMPLES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the compiled build (`make test`'s second pass), skip the tests that observe the placement
    core by patching one of its module attributes: compiled code calls its own functions directly."""
    if not federator.scheduler.COMPILED:
        return
    skip = pytest.mark.skip(reason="patches a module attribute that compiled code does not look up")
    for item in items:
        if item.get_closest_marker("interpreted"):
            item.add_marker(skip)


@pytest.fixture
def examples() -> Path:
    return EXAMPLES
