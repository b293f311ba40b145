"""A drain's own surge bound (DrainClusterRequest.surge_seconds, model/cordon.py): the serving job's replicas on
the drained cluster end at that bound, not the default's, and the bound is kept in the SQLite store across a
restart with the drain."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from server_support import Clock, join
from test_drains import federator
from test_partial_failover import drain as outbox
from test_rebalancing import chat

from federator.backends.kube.cordons import drain_of
from federator.model import JobPhase
from federator.model.cordon import SURGE_SECONDS, Drain
from federator.server.orders import CancelOrder


def test_a_drains_own_bound_ends_the_serving_replicas_with_no_room_elsewhere_and_outlives_a_restart(
        tmp_path: Path) -> None:
    db, clock = tmp_path / "fed.db", Clock()
    fed, store = federator(db, clock)
    a = join(fed, "a", region="east")
    job = fed.submit(chat(replicas=1, preferred=("east",)))
    fed.schedule_once()
    [old] = job.placements
    fed.acked(a, old.placement_id)
    fed.job_update(a, old.placement_id, JobPhase.RUNNING, "1 of 1 replicas running")
    drain = Drain("admin", 1_000.0, "hardware swap", 120.0)
    asyncio.run(fed.cordons.drain("a", drain))
    store.close()
    fed.store.close()

    fed, store = federator(db, clock)  # restarted: the drain and its bound are read back
    assert fed.cordons.draining() == {"a": drain}
    a = join(fed, "a", old.placement_id, region="east")
    job = fed.jobs[job.job_id]
    outbox(a)
    fed.drains.turn()  # no room elsewhere: the replica serves on
    assert outbox(a) == [] and "end anyway 120 s after" in fed.drains.waiting_words("a")
    clock.now += 119
    fed.drains.turn()
    assert outbox(a) == [] and job.phase is JobPhase.RUNNING
    clock.now += 1  # the drain's 120 s, not the default's 600
    fed.drains.turn()
    assert [o.placement_id for o in outbox(a) if isinstance(o, CancelOrder)] == [old.placement_id]
    assert job.phase is JobPhase.PENDING
    store.close()
    fed.store.close()


def test_a_bound_out_of_range_written_by_hand_is_the_default_said_in_the_log(
        caplog: pytest.LogCaptureFixture) -> None:
    """An object the CRD's schema did not check (written before it listed the field): the default, and why."""
    with caplog.at_level(logging.WARNING, logger="federator.kube"):
        got = drain_of({"drain": True, "drainSurgeSeconds": "ten"}, known=None, now=5.0)
    assert got == Drain("kubectl", 5.0) and got.surge_seconds == SURGE_SECONDS
    assert "spec.drainSurgeSeconds 'ten': must be a number of seconds from 1 to 86400" in caplog.text
    kept = drain_of({"drain": True}, known=Drain("admin", 1.0, "", 300.0), now=5.0)
    assert kept.surge_seconds == 300.0  # pruned by an older CRD: this federator's memory keeps it
