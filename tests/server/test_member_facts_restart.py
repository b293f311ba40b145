"""What a federator restart used to lose of its members, kept with them in the store (store/members.py, schema 3).

Each test runs a federator on a real SQLite file (jobs and members in one, as `federator serve --db`), drops it
without a goodbye (nothing closed in order, as after SIGKILL; the loop's last turn wrote the members), and opens
a second one on the same file:

- the agents' Hello features: a job scaled down before an agent is back shrinks its part there in place
  (outside QA F11 again, now across a restart: the part was stopped whole and placed again elsewhere);
- the Resizes an agent has not acknowledged: one that comes back without the resize feature has those parts
  replaced, not run at their old count (a job with more replicas than it asked);
- the notAfter of the certificate each agent last presented, and Lost members with their Lost time: the
  FederatorClusterCertificateExpired and FederatorClusterLost series of a member that cannot connect survive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from server_support import LEASE, LOST_AFTER, Clock, capacity, make
from test_partial_failover import drain, running_on
from test_scaling_in_place import RESIZE, serving

from federator.model import ClusterState, Job, JobPhase
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import CancelOrder, LaunchOrder, ResizeOrder
from federator.store.members import SqliteMemberStore
from federator.store.sqlite import SqliteJobStore

NOT_AFTER = 1_900_000_000.0


@contextmanager
def life(db: Path, clock: Clock) -> Iterator[Federator]:
    """One federator process on `db`: its stores are closed after it (the file lock), nothing else is."""
    store, members = SqliteJobStore(db), SqliteMemberStore(db)
    fed = make(store, clock, members=members)  # type: ignore[arg-type]
    try:
        yield fed
    finally:
        fed.cycles.close()
        members.close()
        store.close()


def turn(fed: Federator) -> None:
    """The loop's turn (which writes the members)."""
    async def main() -> None:
        await fed.tick()
    asyncio.run(main())


def hello(fed: Federator, name: str, region: str, *, resizes: bool, holding: dict[str, int] | None = None,
          not_after: float = 0.0) -> ClusterRecord:
    """An agent's session as the gRPC edge makes it: Hello (features, certificate), then its first report."""
    rec = fed.connect(cluster=name, region=region, labels={})
    rec.features = RESIZE if resizes else frozenset()
    rec.certificate_not_after = not_after
    for pid, n in (holding or {}).items():
        fed.job_update(rec, pid, JobPhase.RUNNING, f"{n} of {n} replicas running")
    fed.report(rec, capacity(*(holding or {})))
    return rec


def spread_job(fed: Federator) -> tuple[Job, ClusterRecord, ClusterRecord]:
    """`chat`, 4 replicas over east (2) and west (2), both agents able to resize."""
    east = hello(fed, "east-1", "east", resizes=True)
    west = hello(fed, "west-1", "west", resizes=True)
    job = fed.submit(serving("chat", replicas=4, min_regions=2))
    fed.schedule_once()
    running_on(fed, job, east, west)
    assert sorted((p.cluster, p.replicas) for p in job.placements) == [("east-1", 2), ("west-1", 2)]
    turn(fed)
    return job, east, west


def test_a_part_on_an_agent_not_back_after_a_restart_still_shrinks_in_place(tmp_path: Path) -> None:
    """F11 across a restart: west-1's agent is not back yet when the job is scaled 4 -> 2. Its part keeps its id
    and is stored at 1; nothing is cancelled or placed; the Resize goes out at its re-sync."""
    db, clock = tmp_path / "federator.db", Clock()
    with life(db, clock) as fed:
        job, _, _ = spread_job(fed)
        ids = {p.cluster: p.placement_id for p in job.placements}

    with life(db, clock) as fed:
        assert fed.clusters["west-1"].state is ClusterState.PARTITIONED and fed.clusters["west-1"].can_resize
        east = hello(fed, "east-1", "east", resizes=True, holding={ids["east-1"]: 2})
        drain(east)
        job = fed.get(job.job_id)
        fed.scale(job.job_id, 2)
        assert sorted((p.cluster, p.placement_id, p.replicas) for p in job.placements) == [
            ("east-1", ids["east-1"], 1), ("west-1", ids["west-1"], 1)]
        assert "west-1 shrinks 2 → 1 in place when its agent is back" in job.message
        fed.schedule_once()
        assert [type(o) for o in drain(east)] == [ResizeOrder] and job.replicas_waiting == 0  # nothing placed

        west = hello(fed, "west-1", "west", resizes=True, holding={ids["west-1"]: 2})
        assert [o for o in drain(west) if not isinstance(o, ResizeOrder) or o.replicas != 1] == []
        assert [p.placement_id for p in job.placements if p.cluster == "west-1"] == [ids["west-1"]]
        assert west.resizes_owed == set()  # settled by the re-sync's Resize


def test_a_resize_not_acknowledged_before_a_restart_has_its_part_replaced_by_an_agent_without_the_feature(
        tmp_path: Path) -> None:
    """The Resize reached west-1's outbox but no Ack came back before the federator died; the agent then comes back
    without the resize feature (a downgrade, another agent), still running 2. The part is replaced: the job never
    runs 3 where it asked for 2."""
    db, clock = tmp_path / "federator.db", Clock()
    with life(db, clock) as fed:
        job, _, west = spread_job(fed)
        far = next(p for p in job.placements if p.cluster == "west-1")
        fed.scale(job.job_id, 2)
        assert [type(o) for o in drain(west)] == [ResizeOrder]  # sent; the federator dies before the Ack

    with life(db, clock) as fed:
        assert fed.clusters["west-1"].resizes_owed == {far.placement_id}
        hello(fed, "east-1", "east", resizes=True, holding={p.placement_id: p.replicas for p in job.placements
                                                             if p.cluster == "east-1"})
        west = hello(fed, "west-1", "west", resizes=False, holding={far.placement_id: 2})
        assert [o.placement_id for o in drain(west) if isinstance(o, CancelOrder)] == [far.placement_id]
        job = fed.get(job.job_id)
        assert job.pending_reason is not None and "came back without the resize feature" in job.pending_reason.message
        assert far.placement_id not in {p.placement_id for p in job.placements}


def test_an_acknowledged_resize_is_owed_nothing_after_a_restart(tmp_path: Path) -> None:
    """The agent took the Resize (Ack resize=true ok): after a restart, an agent back without the feature runs the
    part at its new count, and it is kept."""
    from federator.server import shrink

    db, clock = tmp_path / "federator.db", Clock()
    with life(db, clock) as fed:
        job, _, west = spread_job(fed)
        far = next(p for p in job.placements if p.cluster == "west-1")
        fed.scale(job.job_id, 2)
        drain(west)
        shrink.acked(fed, west, far.placement_id)
        turn(fed)

    with life(db, clock) as fed:
        assert fed.clusters["west-1"].resizes_owed == set()
        west = hello(fed, "west-1", "west", resizes=False, holding={far.placement_id: 1})
        assert not any(isinstance(o, (CancelOrder, LaunchOrder)) for o in drain(west))
        assert far.placement_id in {p.placement_id for p in fed.get(job.job_id).placements}


def test_the_certificate_date_of_an_agent_that_cannot_come_back_survives_a_restart(tmp_path: Path) -> None:
    """east-1's agent presented a certificate and left (it expired: it cannot connect again); west-1 went Lost.
    After the restart both keep their certificate's notAfter, so the metric (and its alert) stays; west-1 is
    Lost since it went Lost, not expected back."""
    db, clock = tmp_path / "federator.db", Clock()
    with life(db, clock) as fed:
        east = hello(fed, "east-1", "east", resizes=False, not_after=NOT_AFTER)
        west = hello(fed, "west-1", "west", resizes=False, not_after=NOT_AFTER + 1)
        turn(fed)
        fed.disconnect(east)
        fed.disconnect(west)
        clock.now += LEASE + LOST_AFTER + 1
        turn(fed)
        assert fed.clusters["west-1"].state is ClusterState.LOST
        lost_at = fed.clusters["west-1"].lost_at
        east = hello(fed, "east-1", "east", resizes=False, not_after=NOT_AFTER)  # back, then away again
        turn(fed)
        fed.disconnect(east)

    clock.now += 100
    with life(db, clock) as fed:
        east, west = fed.clusters["east-1"], fed.clusters["west-1"]
        assert (east.state, east.certificate_not_after) == (ClusterState.PARTITIONED, NOT_AFTER)
        assert (west.state, west.lost_at, west.certificate_not_after) == (ClusterState.LOST, lost_at, NOT_AFTER + 1)
        expiry = {s.labels["cluster"]: s.value for m in fed.metrics.registry.collect()
                  if m.name == "federator_cluster_certificate_expiration_timestamp_seconds" for s in m.samples}
        assert expiry == {"east-1": NOT_AFTER, "west-1": NOT_AFTER + 1}


def test_a_member_lost_before_the_store_kept_the_time_is_lost_from_the_first_start_and_stays_so(
        tmp_path: Path) -> None:
    """Outside upgrade QA F1: a member Lost under 0.7 (schema 2: no Lost time) came back from every restart Lost
    since that restart, so --forget-lost-after began again each time and it was never forgotten. It is Lost from
    the first start that reads it, and that time is kept."""
    from federator.store.members import Member

    db, clock = tmp_path / "federator.db", Clock()
    with life(db, clock):
        pass  # the file, as a 0.8 start makes it
    members = SqliteMemberStore(db)
    members.put([Member("old-1", "west", lost=True)])  # as taken forward from 0.7: lost_at 0
    members.close()
    first = clock.now
    with life(db, clock) as fed:
        assert (fed.clusters["old-1"].state, fed.clusters["old-1"].lost_at) == (ClusterState.LOST, first)
        turn(fed)
    clock.now += 100
    with life(db, clock) as fed:
        assert fed.clusters["old-1"].lost_at == first  # not the second start's
