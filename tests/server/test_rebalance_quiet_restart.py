"""A restart keeps when each job last moved (store/moves.py), so the rebalancer's quiet time holds across it.

Before 0.11.0 a restart forgot it: a job whose move had just ended (completed or failed) could be moved again by
the first turn after the restart, within policy.rebalance.quietSeconds (600 s) of its last move, and the restart's
minute allowed maxMovesPerMinute more moves on top of those just started. A federator on a real SQLite file (jobs
and move times in one, as `serve --db`), closed as after SIGKILL, and a second one on the same file; a fake clock.
"""

from __future__ import annotations

from pathlib import Path

from server_support import Clock, capacity, make
from test_partial_failover import drain
from test_rebalancing import moves, spilled_to_east

from federator.model import JobPhase
from federator.server.federator import Federator
from federator.server.orders import LaunchOrder
from federator.server.rebalancing import WINDOW_SECONDS
from federator.store import SqliteJobStore
from federator.store.moves import SqliteMoveStore

QUIET = 600.0  # policy.rebalance.quietSeconds by default


def start(db: Path, clock: Clock) -> Federator:
    """A federator on `db`, as `serve` makes one: the move times' store attached."""
    fed = make(SqliteJobStore(db), clock)  # type: ignore[arg-type]
    fed.cycles.rebalancer.attach(SqliteMoveStore(db), now=clock())
    return fed


def stop(fed: Federator) -> None:
    """What the kernel does at SIGKILL: the file's lock goes with the process."""
    fed.cycles.close()
    fed.store.close()  # type: ignore[attr-defined]


def test_a_job_whose_move_just_failed_is_not_moved_again_after_a_restart_until_its_quiet_time_ends(
        tmp_path: Path) -> None:
    db, clock = tmp_path / "federator.db", Clock()
    fed = start(db, clock)
    job, west, east = spilled_to_east(fed)
    (far,) = job.placements
    fed.report(west, capacity(free=8))  # west has room again: the job moves
    fed.schedule_once()
    (near,) = [p for p in job.placements if p.cluster == "west-1"]
    drain(west)
    fed.refused(west, near.placement_id, "no room after all")
    clock.now += 5
    fed.schedule_once()  # the move failed: the job serves in east, and its quiet time runs from now
    assert moves(fed) == {"started": 1.0, "failed": 1.0}
    failed_at = clock.now
    assert SqliteMoveStore(db).load() == {job.job_id: failed_at}
    stop(fed)

    clock.now += 10  # restarted within the minute and the quiet time
    fed = start(db, clock)
    assert fed.cycles.rebalancer.last == {job.job_id: failed_at}
    assert list(fed.cycles.rebalancer.started) == [failed_at]  # counted in the restart's minute
    west = fed.connect(cluster="west-1", region="west", labels={})
    east = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(west, capacity(free=8))
    fed.report(east, capacity(far.placement_id, free=4))
    fed.job_update(east, far.placement_id, JobPhase.RUNNING, "4 of 4 replicas running")
    job = fed.jobs[job.job_id]
    for _ in range(3):
        clock.now += 60  # past the retry and the minute, within the quiet time
        fed.schedule_once()
        # before: moved again at once, the restart having forgotten its last move
        assert drain(west) == [] and moves(fed) == {}, job.message
    assert len(fed.cycles.rebalancer.started) == 0  # the minute went by

    clock.now = failed_at + QUIET
    fed.schedule_once()  # its quiet time is over: it moves as any job would
    assert [type(o) for o in drain(west)] == [LaunchOrder] and moves(fed) == {"started": 1.0}
    assert SqliteMoveStore(db).load() == {job.job_id: clock.now}
    stop(fed)


def test_move_times_past_their_quiet_time_are_forgotten_from_the_file(tmp_path: Path) -> None:
    db, clock = tmp_path / "federator.db", Clock()
    fed = start(db, clock)
    job, west, _ = spilled_to_east(fed)
    fed.report(west, capacity(free=8))
    fed.schedule_once()
    assert SqliteMoveStore(db).load() == {job.job_id: clock.now}
    clock.now += QUIET + WINDOW_SECONDS
    fed.schedule_once()
    assert SqliteMoveStore(db).load() == {}
    stop(fed)
