"""The one UTC formatter every message, Event, Lease, audit line and usage report writes with."""

from __future__ import annotations

from datetime import datetime

from federator.timestamps import utc_exact, utc_micro, utc_seconds


def test_seconds_are_rfc3339_in_utc_whatever_the_local_zone(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    assert utc_seconds(1_764_751_482.9) == "2025-12-03T08:44:42Z"  # truncated, not rounded, to the second


def test_micro_is_kubernetes_microtime_and_reads_back() -> None:
    text = utc_micro(1_764_751_482.123456)
    assert text == "2025-12-03T08:44:42.123456Z"
    assert datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() == 1_764_751_482.123456


def test_the_epoch_keeps_its_zero_microseconds() -> None:
    assert utc_micro(0) == "1970-01-01T00:00:00.000000Z"


def test_exact_keeps_the_fraction_a_time_holds_and_drops_trailing_zeros() -> None:
    assert utc_exact(1_764_751_482) == "2025-12-03T08:44:42Z"
    assert utc_exact(1_764_751_482.5) == "2025-12-03T08:44:42.5Z"
    assert datetime.fromisoformat(utc_exact(1_764_751_482.25).replace("Z", "+00:00")).timestamp() == 1_764_751_482.25
