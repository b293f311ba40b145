"""A restart keeps the clocks of gangs' reservations (store/reservation_clocks.py): maxHoldSeconds bounds one across it.

The reservations themselves are chosen again by the first cycle after a restart (the SIGKILL test is
tests/reliability/test_crash_memory.py); how long a gang has had its reservation, and until when a gang whose
reservation ran out rests, nothing else says. Forgotten, a restart gave a reserving gang a new maxHoldSeconds and a
resting one its room back at once: the room a tenant's gang keeps idle went back to no one (security finding S3's
bound).

A federator on a real SQLite file (jobs and clocks in one, as `serve --db`), closed as after SIGKILL (its last
cycle wrote the clocks), and a second one on the same file; a fake clock.
"""

from __future__ import annotations

from pathlib import Path

from test_reservations import Clock, capacity

from federator.model import JobPhase, ReasonCode
from federator.scheduler import Scheduler, parse_policy
from federator.server.federator import Federator
from federator.store import SqliteJobStore
from federator.store.reservation_clocks import ReservationClock, SqliteReservationClockStore
from federator.timestamps import utc_seconds

from builders import job

POLICY = "reservations: {afterSeconds: 600, maxReservations: 2, maxHoldSeconds: 1000}"


def start(db: Path, clock: Clock) -> Federator:
    """A federator on `db`, as `serve` makes one: the clocks' store attached, east-1's agent reporting one node
    with 5 free of 8 (the gang needs 8) and one full."""
    fed = Federator(store=SqliteJobStore(db), scheduler=Scheduler(parse_policy(POLICY)), clock=clock)
    fed.cycles.reserved.attach(SqliteReservationClockStore(db), now=clock())
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, capacity({5: 1, 0: 1}))
    return fed


def stop(fed: Federator) -> None:
    """What the kernel does at SIGKILL: the file's lock goes with the process."""
    fed.cycles.close()
    fed.store.close()  # type: ignore[attr-defined]


def reserved(fed: Federator, name: str) -> bool:
    j = next(j for j in fed.jobs.values() if j.spec.name == name)
    return j.phase is JobPhase.PENDING and j.pending_reason is not None \
        and j.pending_reason.code is ReasonCode.RESERVED


def test_a_hold_ends_max_hold_seconds_after_it_began_though_the_federator_restarted(tmp_path: Path) -> None:
    db, clock = tmp_path / "federator.db", Clock()
    fed = start(db, clock)
    gang = fed.submit(job("gang", gpus=8, queue="train"))
    clock.now += 601
    fed.submit(job("small", gpus=1, queue="flood"))
    fed.schedule_once()
    assert gang.job_id in fed.cycles.reserved and reserved(fed, "small")
    began = clock.now
    assert SqliteReservationClockStore(db).load() == [ReservationClock(gang.job_id, "east-1", began, began)]
    clock.now += 900
    stop(fed)

    clock.now += 50  # 950 s held: 50 left
    fed = start(db, clock)
    fed.schedule_once()  # chosen again, its clocks those it first had
    (held,) = fed.cycles.reserved.current()
    assert (held.since, held.first_reserved) == (began, began)
    assert reserved(fed, "small")
    clock.now += 10
    fed.schedule_once()  # from the next cycle on, the gang's reason says so too
    reason = fed.jobs[gang.job_id].pending_reason
    assert reason is not None and f"held for it since {utc_seconds(began)};" in reason.message
    clock.now += 50  # 1,010 s since its first reservation: it ends, whatever the restart
    fed.schedule_once()
    fed.schedule_once()
    assert gang.job_id not in fed.cycles.reserved
    small = next(j for j in fed.jobs.values() if j.spec.name == "small")
    assert small.phase is JobPhase.PLACED
    stop(fed)


def test_a_gang_resting_after_its_hold_rests_on_after_a_restart(tmp_path: Path) -> None:
    db, clock = tmp_path / "federator.db", Clock()
    fed = start(db, clock)
    gang = fed.submit(job("gang", gpus=8, queue="train"))
    clock.now += 601
    fed.schedule_once()
    assert gang.job_id in fed.cycles.reserved
    clock.now += 1001
    fed.schedule_once()  # the reservation ran out: the gang rests as long
    rests = fed.cycles.reserved.resting()
    assert gang.job_id not in fed.cycles.reserved and gang.job_id in rests
    stop(fed)

    clock.now += 100  # still resting
    fed = start(db, clock)
    fed.submit(job("small", gpus=1, queue="flood"))
    fed.schedule_once()
    assert gang.job_id not in fed.cycles.reserved  # its room stays everyone's while it rests
    assert fed.cycles.reserved.resting() == rests
    assert next(j for j in fed.jobs.values() if j.spec.name == "small").phase is JobPhase.PLACED
    clock.now = rests[gang.job_id] + 1  # its rest over, it may reserve room again
    fed.schedule_once()
    fed.schedule_once()
    assert gang.job_id in fed.cycles.reserved
    stop(fed)
