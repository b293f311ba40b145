"""`federator_reservation_unwritten_clocks`: changes of the reservations' clocks not written to their store yet.

The clocks bound how long a gang keeps room idle across a restart or a change of leader
(store/reservation_clocks.py, backends/kube/reservation_clocks.py). A write that failed was retried and said once in
the log, and nothing else showed it: a federator could run for days on clocks no restart would find. Here the
standalone store's disk fills (tests/full_disk.py: SQLite's own "database or disk is full") while a gang's
reservation begins, then frees; the Kubernetes mode's count is tests/kube/test_kube_reservation_clocks_testbed.py's,
on a real API server that refuses the write.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from full_disk import FullDisk
from test_reservations import Clock, capacity

from federator.scheduler import Scheduler, parse_policy
from federator.server.federator import Federator
from federator.store import SqliteJobStore
from federator.store.reservation_clocks import ReservationClock, SqliteReservationClockStore

from builders import job

POLICY = "reservations: {afterSeconds: 600, maxReservations: 2, maxHoldSeconds: 1000}"


def unwritten(fed: Federator) -> float | None:
    return fed.metrics.registry.get_sample_value("federator_reservation_unwritten_clocks")


def test_clock_changes_the_disk_refused_are_counted_until_a_cycle_writes_them(tmp_path: Path,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    db, clock = tmp_path / "federator.db", Clock()
    fed = Federator(store=SqliteJobStore(db), scheduler=Scheduler(parse_policy(POLICY)), clock=clock)
    clocks = SqliteReservationClockStore(db)
    disk = FullDisk(clocks)
    fed.cycles.reserved.attach(clocks, now=clock())
    fed.report(fed.connect(cluster="east-1", region="east", labels={}), capacity({5: 1, 0: 1}))
    assert unwritten(fed) == 0.0  # a sample from the start, for an alert to rely on
    gang = fed.submit(job("gang", gpus=8, queue="train"))
    clock.now += 601
    fed.submit(job("small", gpus=1, queue="flood"))
    disk.full = True
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        fed.schedule_once()  # the reservation begins; its clock is not written
        clock.now += 1
        fed.schedule_once()  # tried again, refused again
    assert gang.job_id in fed.cycles.reserved
    assert unwritten(fed) == 1.0
    assert disk.refused == 2
    assert [r.message for r in caplog.records].count(
        "cannot store the clocks of 1 reservation(s), will retry: reservation store: database or disk is full") == 1
    assert clocks.load() == []

    disk.full = False
    clock.now += 1
    fed.schedule_once()
    assert unwritten(fed) == 0.0
    began = clock.now - 2
    assert clocks.load() == [ReservationClock(gang.job_id, "east-1", began, began)]
    fed.cycles.close()
    fed.store.close()  # type: ignore[attr-defined]
