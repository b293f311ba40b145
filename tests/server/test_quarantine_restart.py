"""A quarantine outlives a restart in store mode: kept in the SQLite file (--db) beside the jobs and cordons
(store/quarantines.py), held by the next federator from its first cycle, with its reason and its end; one whose
end passed meanwhile is dropped, from the file too. Before, it was memory only, and a black-hole member drew
every tenant's next jobs again after any restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import generate_latest
from server_support import Clock, join, make, spec

from federator.model import ClusterState, JobPhase
from federator.model.quarantine import Held
from federator.security.authz import Submitter
from federator.server.blame import Blame
from federator.server.federator import Federator
from federator.store import SqliteJobStore
from federator.store.quarantines import SqliteQuarantineStore


def _federator(db: Path, clock: Clock) -> tuple[Federator, SqliteJobStore, SqliteQuarantineStore]:
    """As server/app.py builds one in store mode: the jobs, then the quarantines of the same file."""
    store, kept = SqliteJobStore(db), SqliteQuarantineStore(db)
    fed = make(store, clock)  # type: ignore[arg-type]
    fed.early.quarantine.attach(kept, now=fed.clock())
    return fed, store, kept


async def _quarantined_then_stopped(db: Path, clock: Clock) -> Held:
    fed, store, kept = _federator(db, clock)
    join(fed, "liar")
    join(fed, "good")
    held = None
    for who in ("alice", "bob", "alice"):  # three confirmed early failures of two owners (server/blame.py)
        held = fed.early.quarantine.confirm(Blame("liar", Submitter(user=who), clock.now), clock.now) or held
    assert held is not None
    await fed.early.quarantine.writes.close()  # as server/app.py does at stop
    store.close()
    kept.close()
    return held


def test_a_quarantine_outlives_a_restart_with_its_reason_and_its_end(tmp_path: Path) -> None:
    async def main() -> None:
        clock, db = Clock(), tmp_path / "fed.db"
        held = await _quarantined_then_stopped(db, clock)

        clock.now += 60
        fed, store, kept = _federator(db, clock)
        assert fed.early.quarantine.holding("liar", clock.now) == held  # its reason and its end, as they were
        liar = join(fed, "liar")  # its agent is back: Ready, and quarantined from the first cycle
        assert [c.state for c in fed.cycles.snapshot().clusters] == [ClusterState.QUARANTINED]
        job = fed.submit(spec("next"))
        fed.schedule_once()
        assert job.phase is JobPhase.PENDING and job.pending_reason is not None
        assert "liar is Quarantined" in job.pending_reason.message
        assert 'federator_cluster_quarantined{cluster="liar",region="r"} 1.0' in \
            generate_latest(fed.metrics.registry).decode()
        assert liar.state is ClusterState.READY

        fed.early.quarantine.lift("liar")  # `federator uncordon liar`: kept too
        await fed.early.quarantine.writes.close()
        store.close()
        kept.close()
        again, store, kept = _federator(db, clock)
        assert again.early.quarantine.current(clock.now) == frozenset()
        store.close()
        kept.close()

    asyncio.run(main())


def test_a_quarantine_whose_end_passed_while_no_federator_ran_is_dropped_from_the_file(tmp_path: Path) -> None:
    async def main() -> None:
        clock, db = Clock(), tmp_path / "fed.db"
        held = await _quarantined_then_stopped(db, clock)

        clock.now = held.until
        fed, store, kept = _federator(db, clock)
        assert fed.early.quarantine.holding("liar", clock.now) is None
        await fed.early.quarantine.writes.close()
        assert kept.load() == {}
        join(fed, "liar")
        job = fed.submit(spec("next"))
        fed.schedule_once()
        assert [p.cluster for p in job.placements] == ["liar"]
        store.close()
        kept.close()

    asyncio.run(main())
