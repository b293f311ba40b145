"""REPORT AGE of `federator get clusters` is the federator's own reckoning (outside SRE soak, finding 6).

After the host's clock stepped forward 40 s, the federator kept its steady clock (steady_clock.py) and the CLI
subtracted the reports' times from its own clock: every cluster showed a report age of about 40 s, every time,
as if every agent had gone silent, until the federator restarted. The server now says the age
(ClusterStatus.report_age_seconds).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cli_support import serving

from federator.cli import main
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, pool


def test_report_age_is_the_federators_when_its_clock_and_the_clients_differ(
        capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")), clock=lambda: time.time() - 40.0)
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool("NVIDIA-H100", nodes=2)).capacity)
    with serving(fed) as address:
        assert main(["get", "clusters", "--server", address, "--insecure"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    age = row.split()[-1]
    assert header.split()[-1] == "AGE" and age.endswith("s") and float(age[:-1]) < 20, row
