"""A cycle holds off full garbage collections (gcpause.py) and gives the collector back as it found it."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from federator.scheduler import Scheduler, Snapshot
from federator.scheduler.gcpause import THRESHOLD_2, few_full_collections

from builders import cluster, job, pool, request


class ThresholdsSeen:
    """A filter that passes everything and notes the collector's thresholds while the cycle runs."""

    name = "ThresholdsSeen"

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []

    def filter(self, request: Any, cluster: Any, ctx: Any) -> None:
        self.seen.append(gc.get_threshold())


def test_a_cycle_holds_off_full_collections_and_restores_the_thresholds() -> None:
    saved = gc.get_threshold()
    snapshot = Snapshot.of([cluster(f"c{i}", "east", pool("NVIDIA-A100", nodes=8)) for i in range(20)])
    requests = [request(job(f"j{i}", gpus=1 + i % 4)) for i in range(300)]
    scheduler = Scheduler()
    probe = ThresholdsSeen()
    scheduler.filters.append(probe)
    result = scheduler.schedule(snapshot, requests)
    assert len(result.decisions) == 300 and probe.seen
    assert set(probe.seen) == {(saved[0], saved[1], max(saved[2], THRESHOLD_2))}
    assert gc.get_threshold() == saved


def test_overlapping_holds_restore_the_thresholds_when_the_last_ends() -> None:
    saved = gc.get_threshold()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, tuple[int, int, int]] = {}

    def first() -> None:
        with few_full_collections():
            first_in.set()
            second_in.wait(10)
        seen["after first"] = gc.get_threshold()
        first_out.set()

    worker = threading.Thread(target=first)
    worker.start()
    first_in.wait(10)
    with few_full_collections():
        second_in.set()
        first_out.wait(10)
        seen["inside second"] = gc.get_threshold()
    worker.join(10)
    assert seen["after first"][2] == seen["inside second"][2] == max(saved[2], THRESHOLD_2)
    assert gc.get_threshold() == saved


def test_a_failing_cycle_restores_the_thresholds() -> None:
    saved = gc.get_threshold()
    with pytest.raises(ZeroDivisionError), few_full_collections():
        1 / 0  # noqa: B018
    assert gc.get_threshold() == saved
