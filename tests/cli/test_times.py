"""cli/times.py: `get jobs --since` and `usage --since/--until` read a time alike, in the local zone unless it names
one, and `usage` says its window in that zone (outside QA, HPC H7: a bare date was local midnight to one and UTC
midnight to the other; at UTC+14 `usage --since TODAY` was refused as a time in the future, in unix seconds)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from federator.api.v1 import usage_pb2
from federator.cli import build_parser, main
from federator.cli.times import local_text, parse_time, zone_said
from federator.cli.usage import parse_time as usage_time
from federator.cli.usage import render

KIRITIMATI_DEC_7 = 1796551200.0  # 2026-12-07T00:00:00+14:00 = 2026-12-06T10:00:00Z


@pytest.fixture
def far_east(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_bare_date_is_local_midnight_to_both_commands(far_east: None) -> None:
    jobs = build_parser().parse_args(["get", "jobs", "--since", "2026-12-07"])
    assert jobs.since == KIRITIMATI_DEC_7
    assert usage_time("2026-12-07", flag="--since", now=0) == KIRITIMATI_DEC_7
    assert parse_time("2026-12-07T00:00:00Z", now=0) == KIRITIMATI_DEC_7 + 14 * 3600  # a zone given is kept


def test_usage_says_its_window_in_the_local_zone(far_east: None) -> None:
    resp = usage_pb2.UsageResponse(since=KIRITIMATI_DEC_7, until=KIRITIMATI_DEC_7 + 3600)
    assert render(resp, output="table", by="").startswith(
        "usage from 2026-12-07T00:00:00+14:00 to 2026-12-07T01:00:00+14:00\n")
    assert local_text(KIRITIMATI_DEC_7) == "2026-12-07T00:00:00+14:00" and zone_said().startswith("UTC+14:00")


def test_usage_refuses_a_window_that_ends_first_in_dates(far_east: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "--since", "2026-12-08", "--until", "2026-12-07", "--insecure",
                 "--server", "127.0.0.1:1"]) == 2
    assert capsys.readouterr().err == ("federator usage: --until: must be after --since (2026-12-07T00:00:00+14:00 "
                                       "is not after 2026-12-08T00:00:00+14:00)\n")


def test_usage_help_names_the_zone(far_east: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["usage", "--help"])
    assert "here UTC+14:00" in " ".join(capsys.readouterr().out.split())
