"""A real local federation per test: `federator serve` and simulated agents as processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from federator.cli.get import list_clusters
from federator.local import LocalFederation

from support import EXAMPLES, eventually


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[LocalFederation]:
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml",
                          serve_args=["--report-interval", "0.5", "--cycle-interval", "0.2"])
    fed.start_server()
    for name in ("east-1", "central-1", "west-1"):
        fed.start_agent(name)
    try:
        eventually(lambda: sum(c["capacity"] is not None for c in list_clusters(fed.client)) == 3,
                   what="three agents to report")
        yield fed
    finally:
        fed.stop()
