"""A member whose agent is connected but cannot reach the member's API server (QA F5; server/member_health.py).

The agent says so in its capacity report (CapacityReport.member_unreachable): the cluster is Partitioned (no new
work; a new job goes elsewhere), the report's stale capacity is not taken, the jobs placed there and `get clusters`
name it, it turns Ready at the first report without the field, and Lost after --lost-after with the failover of a
partition.
"""

from __future__ import annotations

import asyncio

import pytest
from server_support import LOST_AFTER, Clock, MemoryStore, capacity, join, make, spec
from test_services_edge import channel, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.cli.output import cluster_rows
from federator.model import ClusterState, JobPhase, ReasonCode
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import CancelOrder, LaunchOrder, Order
from federator.server.outbox import EndCode
from federator.server.services import AgentService
from federator.timestamps import utc_seconds

WHY = "GET /readyz: read timed out after 5s (2 probes failed)"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def drain(rec: ClusterRecord) -> list[Order | None]:
    out: list[Order | None] = []
    while not rec.outbox.empty():
        out.append(rec.outbox.get_nowait())
    return out


def unreachable(sequence: int, why: str = WHY) -> agent_pb2.AgentMessage:
    """What an agent sends while it cannot reach its member: the sequence and why, no capacity."""
    return agent_pb2.AgentMessage(capacity=agent_pb2.CapacityReport(sequence=sequence, member_unreachable=why))


def reachable(sequence: int, *placement_ids: str) -> agent_pb2.AgentMessage:
    msg = agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity(*placement_ids)))
    msg.capacity.sequence = sequence
    return msg


def running_on(fed: Federator, name: str, cluster: str) -> str:
    """Submit a job, place it (on `cluster`, the only Ready one) and start it; its placement id."""
    job = fed.submit(spec(name))
    fed.schedule_once()
    (p,) = job.placements
    assert p.cluster == cluster
    rec = fed.clusters[cluster]
    assert any(isinstance(o, LaunchOrder) for o in drain(rec))
    fed.acked(rec, p.placement_id)
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "2 replicas running")
    return p.placement_id


def test_a_cluster_whose_agent_cannot_reach_its_api_gets_no_new_work_and_its_jobs_say_why(
        store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    service = AgentService(fed)
    east = join(fed, "east-1")
    fed.disconnect(join(fed, "west-1"))  # east-1 alone is Ready: the first job lands there
    pid = running_on(fed, "train", "east-1")
    job = fed.jobs[fed.placement_index[pid]]
    fed.report(fed.connect(cluster="west-1", region="r", labels={}), capacity())
    seen, reported = east.last_report_at, east.capacity

    clock.now += 3
    assert service.handle(east, unreachable(7)) is None  # renews the lease, not refused
    assert east.state is ClusterState.PARTITIONED and east.connected
    assert east.capacity is reported and east.last_report_at == seen  # the stale capacity is not taken
    assert east.last_seen_at == clock.now
    fed.check_leases()  # restates the messages of the jobs there
    since = utc_seconds(clock.now)
    assert job.phase is JobPhase.RUNNING  # it keeps its placement: it may well run on
    assert job.message.startswith(f"east-1's agent cannot reach its API server since {since} ({WHY}); the "
                                  "replicas' state there is unknown; no new work there until it answers, or until "
                                  f"it is Lost at {utc_seconds(clock.now + LOST_AFTER)}"), job.message

    other = fed.submit(spec("later"))
    fed.schedule_once()
    assert [p.cluster for p in other.placements] == ["west-1"]
    assert not [o for o in drain(east) if isinstance(o, LaunchOrder)]

    # Its words change with every report; the jobs' messages are not rewritten for that.
    written = job.message
    clock.now += 2
    assert service.handle(east, unreachable(8, "GET /readyz: connection refused")) is None
    fed.check_leases()
    assert job.message == written and east.unreachable == "GET /readyz: connection refused"


def test_the_first_report_without_it_makes_the_cluster_ready_at_once(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    service = AgentService(fed)
    east = join(fed, "east-1")
    pid = running_on(fed, "train", "east-1")
    job = fed.jobs[fed.placement_index[pid]]
    service.handle(east, unreachable(5))
    fed.check_leases()
    assert "cannot reach its API server" in job.message

    clock.now += 1
    assert service.handle(east, reachable(6, pid)) is None
    assert east.state is ClusterState.READY and not east.unreachable and east.last_report_at == clock.now
    fed.check_leases()
    assert job.message == "2 replicas running"
    later = fed.submit(spec("later", gpus=8))
    fed.schedule_once()
    assert [p.cluster for p in later.placements] == ["east-1"]


def test_long_unreachable_is_lost_and_its_jobs_fail_over_as_after_a_partition(
        store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    service = AgentService(fed)
    east = join(fed, "east-1")
    fed.disconnect(join(fed, "west-1"))
    pid = running_on(fed, "train", "east-1")
    job = fed.jobs[fed.placement_index[pid]]
    west = fed.connect(cluster="west-1", region="r", labels={})
    fed.report(west, capacity())

    service.handle(east, unreachable(5))
    for seq in range(6, 6 + int(LOST_AFTER) // 5):  # it keeps reporting (and its lease keeps) all along
        clock.now += 5
        service.handle(east, unreachable(seq))
        fed.report(west, capacity())
        fed.check_leases()
    assert east.state is ClusterState.PARTITIONED
    clock.now += 2
    fed.report(west, capacity())
    fed.check_leases()
    assert east.state is ClusterState.LOST
    assert job.phase is JobPhase.PENDING and job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.CLUSTER_NOT_READY and "east-1 was Lost" in job.pending_reason.message
    assert east.outbox.ending is not None and east.outbox.ending.code is EndCode.UNAVAILABLE
    assert "could not reach its API server" in east.outbox.ending.message, east.outbox.ending.message
    fed.schedule_once()
    (new,) = job.placements
    assert new.cluster == "west-1" and new.placement_id != pid

    # The agent re-syncs on a new stream while the API is still away: still Lost, and nothing is reconciled yet
    # (what it holds is what its stale caches say).
    since = east.unreachable_since
    clock.now += 30
    back = fed.connect(cluster="east-1", region="r", labels={})
    AgentService(fed).handle(back, unreachable(1))
    assert back.state is ClusterState.LOST and not back.resynced and not drain(back)
    assert back.unreachable_since == since  # how long the member has been out, not since the reconnect
    # The member answers again: the re-sync cancels the copy the failover replaced, and it is Ready.
    fed.job_update(back, pid, JobPhase.RUNNING, "2 replicas running")
    assert AgentService(fed).handle(back, reachable(2, pid)) is None
    assert back.state is ClusterState.READY and back.unreachable_since == 0.0
    assert [o for o in drain(back) if isinstance(o, CancelOrder)] and job.placements == [new]


def test_a_restarted_agent_whose_member_is_away_does_not_have_its_placements_re_queued(
        store: MemoryStore, clock: Clock) -> None:
    """Its first report says unreachable: the re-sync waits for one that does not (else every placement it runs
    and cannot see now would be re-queued as gone)."""
    fed = make(store, clock)
    east = join(fed, "east-1")
    pid = running_on(fed, "train", "east-1")
    job = fed.jobs[fed.placement_index[pid]]
    fed.disconnect(east)
    back = fed.connect(cluster="east-1", region="r", labels={})
    AgentService(fed).handle(back, unreachable(1))
    assert job.phase is JobPhase.RUNNING and job.placements[0].placement_id == pid
    assert back.state is ClusterState.PARTITIONED
    since = back.unreachable_since

    # A stream that ends while the API is away, and one whose first report says it answers: since then is gone,
    # and a later outage counts from its own start.
    fed.disconnect(back)
    clock.now += 60
    again = fed.connect(cluster="east-1", region="r", labels={})
    AgentService(fed).handle(again, reachable(1, pid))
    assert again.unreachable_since == 0.0
    clock.now += 60
    AgentService(fed).handle(again, unreachable(2))
    assert again.unreachable_since == clock.now != since


def test_get_clusters_shows_the_cluster_partitioned_with_its_agents_words() -> None:
    async def main() -> None:
        async with served() as s:
            rec = s.fed.connect(cluster="east-1", region="east", labels={})
            s.fed.report(rec, capacity())
            AgentService(s.fed).handle(rec, unreachable(9))
            async with channel(s.target) as ch:
                (status,) = (await jobs_pb2_grpc.ClusterServiceStub(ch).List(jobs_pb2.ListClustersRequest())).clusters
            assert status.state == "Partitioned"
            assert status.member_unreachable == WHY and status.member_unreachable_since == rec.unreachable_since > 0
            _, (row,) = cluster_rows([{"name": status.name, "region": status.region, "state": status.state,
                                       "capacity": None, "last_report_at": 0.0, "placements": 0,
                                       "member_unreachable": status.member_unreachable}], wide=False)
            assert row[2] == "Partitioned,APIUnreachable"

    asyncio.run(main())


def test_the_agents_words_are_kept_short_and_without_control_characters(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    east = join(fed, "east-1")
    AgentService(fed).handle(east, unreachable(3, "\x1b[2Jgone " + "x" * 5000))
    assert east.unreachable.startswith("\\x1b[2Jgone ") and len(east.unreachable) <= 1024 + 3
