"""The federator's clock does not step when the host's does (outside QA: the host's clock set back an hour made
every agent refuse every Launch as an hour old)."""

from __future__ import annotations

import time

import pytest

from federator.steady_clock import SteadyClock


def test_a_step_of_the_host_clock_moves_neither_the_clock_nor_its_pace_and_shows_as_the_offset(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SteadyClock()
    before = clock()
    assert abs(before - time.time()) < 1.0 and abs(clock.offset()) < 1.0  # Unix seconds, set from the host
    wall = time.time
    monkeypatch.setattr(time, "time", lambda: wall() - 3600)  # the host's clock set back an hour
    after = clock()
    assert 0 <= after - before < 1.0  # it went on, from where it was
    assert 3599 < clock.offset() < 3601  # how far the host's clock stepped: the metric, and its alert
