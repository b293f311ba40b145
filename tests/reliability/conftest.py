"""Real federator and agent processes on loopback, with short leases, for fault tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from reliability_support import FAST, TWIN_FLEET

from federator.cli.get import list_clusters
from federator.local import LocalFederation

from support import eventually


@pytest.fixture
def twin_fleet(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(TWIN_FLEET))
    return path


@pytest.fixture
def federation_factory(tmp_path: Path, twin_fleet: Path) -> Iterator[Callable[..., LocalFederation]]:
    started: list[LocalFederation] = []

    def make(*serve_args: str, agents: tuple[str, ...] = ("a-1", "b-1"), fleet: Path | None = None,
             agent_args: dict[str, list[str]] | None = None, tls: bool = True) -> LocalFederation:
        fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet or twin_fleet, serve_args=[*FAST, *serve_args],
                              tls=tls)
        started.append(fed)
        fed.start_server()
        for name in agents:
            fed.start_agent(name, *(agent_args or {}).get(name, []))
        eventually(lambda: sum(c["state"] == "Ready" and c["capacity"] is not None
                               for c in list_clusters(fed.client)) == len(agents),
                   timeout=60, what=f"{len(agents)} agents to report")
        return fed

    yield make
    for fed in started:
        fed.stop()
