"""The live federator's writes beside the jobs leave the event loop: a cancel on a silent member's awaited end
(store/silent_cancels.py) and a rebalancer's move time (store/moves.py) are written by the job store's writer
thread (store/group_commit.py `write_beside`), and a restart still finds them.

Each was an SQLite transaction on the event loop, which every call of every user and agent waited for. Each
test traces the SQL its store's connection runs (sqlite3's trace callback runs on the thread running the
statement) while the federator works on a running event loop, and fails if any of it ran on the loop's thread;
then drops the federator as SIGKILL would and starts another on the same file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from server_support import Clock, capacity, job_api
from test_rebalance_quiet_restart import start, stop
from test_rebalancing import moves, spilled_to_east

from federator.api.v1 import jobs_pb2
from federator.model import ClusterState, JobPhase
from federator.store.moves import SqliteMoveStore
from federator.store.silent_cancels import AwaitedEnd
from tests.accounting.test_usage_requeued import LEASE, report, running_job
from tests.accounting.test_usage_requeued import Clock as UsageClock
from tests.accounting.test_usage_silent_cancel_restart import attached, dropped, restarted

A_WHILE = 20.0  # a guard against a hang: no assertion reads time


class Traced:
    """The statements run on `db`, each with the thread that ran it."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.statements: list[tuple[threading.Thread, str]] = []
        db.set_trace_callback(lambda sql: self.statements.append((threading.current_thread(), sql)))

    def on(self, thread: threading.Thread) -> list[str]:
        return [sql for t, sql in self.statements if t is thread]

    def writes(self) -> list[str]:
        """The INSERTs and DELETEs, without their values."""
        return [sql.partition(" VALUES")[0] for _, sql in self.statements if sql.startswith(("INSERT", "DELETE"))]

    def stop(self) -> None:
        self.db.set_trace_callback(None)


def test_a_cancel_on_a_silent_member_keeps_its_awaited_end_off_the_event_loop_and_a_restart_finds_it(
        tmp_path: Path) -> None:
    clock, db = UsageClock(), tmp_path / "db"
    fed, usage, job_id = running_job(db, clock)
    store = attached(db, fed)
    (p,) = fed.jobs[job_id].placements  # type: ignore[index]
    clock.now = 50.0
    report(fed, "east", p.placement_id)  # its last report
    clock.now = 50.0 + LEASE + 1
    fed.check_leases()
    assert fed.clusters["east"].state is ClusterState.PARTITIONED
    traced = Traced(store._db)  # noqa: SLF001 - the awaited ends' own connection

    async def cancel() -> threading.Thread:
        clock.now = 80.0
        async with job_api(fed) as jobs:  # a user's Cancel over real gRPC, handled on the loop
            await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job_id), timeout=A_WHILE)
        await asyncio.to_thread(fed.journal.drain)
        return threading.current_thread()

    loop_thread = asyncio.run(cancel())
    traced.stop()
    assert fed.jobs[job_id].phase is JobPhase.CANCELLED  # type: ignore[index]
    assert traced.writes() == ["INSERT OR REPLACE INTO silent_cancels"]
    assert traced.on(loop_thread) == []  # before: the INSERT and its transaction, on the loop
    fed.journal.close()
    dropped(fed, usage, store)
    fed, usage, store = restarted(db, clock)
    assert store.load() == [AwaitedEnd("east", p.placement_id, 80.0)] and p.placement_id in fed.silent_cancels
    dropped(fed, usage, store)


def test_a_rebalancers_move_time_is_stored_off_the_event_loop_and_a_restart_finds_it(tmp_path: Path) -> None:
    db, clock = tmp_path / "federator.db", Clock()
    fed = start(db, clock)
    job, west, _ = spilled_to_east(fed)
    store = fed.cycles.rebalancer.store
    assert isinstance(store, SqliteMoveStore)
    traced = Traced(store._db)  # noqa: SLF001 - the move times' own connection
    fed.report(west, capacity(free=8))  # west has room again: the next turn moves the job there

    async def turn() -> threading.Thread:
        await asyncio.wait_for(fed.cycles.run_once_async(), A_WHILE)  # the rebalancer runs on the loop
        await asyncio.wait_for(fed.stored_first.settled(), A_WHILE)  # the move stored, then started
        await asyncio.to_thread(fed.journal.drain)
        return threading.current_thread()

    loop_thread = asyncio.run(turn())
    traced.stop()
    assert moves(fed) == {"started": 1.0}
    assert traced.writes() == ["INSERT OR REPLACE INTO rebalance_moves"]
    assert traced.on(loop_thread) == []  # before: the INSERT and its transaction, on the loop
    moved_at = clock.now
    fed.journal.close()
    stop(fed)
    fed = start(db, clock)
    assert fed.cycles.rebalancer.last == {job.job_id: moved_at}
    stop(fed)
