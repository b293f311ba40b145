"""/metrics reads the federator's state on the federator's event loop, never on the scraping thread."""

from __future__ import annotations

import asyncio
import threading

import pytest
from prometheus_client import generate_latest

from federator.metrics import Metrics, StateSample


def _loop_in_thread() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    while not loop.is_running():
        pass
    return loop, thread


def test_a_scrape_samples_the_state_on_the_loop_thread() -> None:
    seen: list[int] = []

    def sample() -> StateSample:
        seen.append(threading.get_ident())
        return StateSample([], {("default", "Pending"): 3}, {})

    metrics = Metrics()
    metrics.watch_state(sample)
    loop, thread = _loop_in_thread()
    try:
        metrics.state_loop = loop
        text = generate_latest(metrics.registry).decode()  # this (the scraping) thread
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    assert 'federator_jobs{phase="Pending",queue="default"} 3.0' in text
    assert seen == [thread.ident]


def test_a_failing_sample_fails_the_scrape_not_the_loop() -> None:
    def sample() -> StateSample:
        raise RuntimeError("boom")

    metrics = Metrics()
    metrics.watch_state(sample)
    loop, thread = _loop_in_thread()
    try:
        metrics.state_loop = loop
        with pytest.raises(RuntimeError, match="boom"):
            generate_latest(metrics.registry)
        assert loop.is_running()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
