"""/metrics reads the federator's state on the federator's event loop, never on the scraping thread."""

from __future__ import annotations

import asyncio
import threading

import pytest
from prometheus_client import generate_latest

from federator.metrics import Metrics, StateSample
from federator.model import JobPhase


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


def test_the_sample_counts_jobs_by_phase_reasons_of_pending_jobs_and_what_queues_hold() -> None:
    from dataclasses import replace

    from server_support import Clock, MemoryStore, join, make, spec

    fed = make(MemoryStore(), Clock())
    join(fed, "west-1")  # one cluster: 4 nodes x 8 free accelerators
    placed = fed.submit(spec("fits", gpus=8, replicas=3))
    fed.submit(spec("too-big", gpus=8, replicas=2))  # 16 > the 8 left: waits with a reason
    fed.submit(replace(spec("other-queue", gpus=8, replicas=2), queue="research"))
    fed.schedule_once()
    assert fed.jobs[placed.job_id].phase is JobPhase.PLACED
    fed.cancel(fed.submit(spec("gone", gpus=1)).job_id)

    s = fed.sample()
    assert s.jobs == {("default", "Placed"): 1, ("default", "Pending"): 1, ("research", "Pending"): 1,
                      ("default", "Cancelled"): 1}
    reasons = {job.spec.queue: job.pending_reason.code for job in fed.jobs.values()  # type: ignore[union-attr]
               if job.phase is JobPhase.PENDING}
    assert s.pending == {(queue, code): 1 for queue, code in reasons.items()}
    assert all(code != "Waiting" for code in reasons.values())
    assert s.queue_accelerators == {"default": 24.0, "research": 0.0}


def test_the_sample_shows_what_a_members_own_queue_quota_holds_back() -> None:
    """federator_cluster_accelerators{state="quota_held"}: a Kueue member's free devices its ClusterQueue holds."""
    from dataclasses import replace

    from server_support import H100, Clock, MemoryStore, capacity, make

    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="member-b", region="r", labels={})
    cap = capacity(free=2)  # 4 nodes with 2 free each, and 24 more free the quota holds back
    fed.report(rec, replace(cap, accelerator_pools=tuple(replace(p, quota_held_accelerators=24)
                                                         for p in cap.accelerator_pools)))
    (cluster,) = fed.sample().clusters
    held = {state: n for (_, model, state), n in cluster.accelerators.items() if model == H100}
    assert held["quota_held"] == 24 and held["free"] == 8
