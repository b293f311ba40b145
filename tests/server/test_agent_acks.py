"""An Ack answers a Launch sent to the agent's own cluster; any other Ack is refused and changes nothing.

Audit findings: an agent could cancel (and have re-placed) a placement running
on another cluster with `Ack{ok=false}`, over mTLS too, and `Ack{ok=true}` for
ids it made up were kept forever in its cluster's record.
"""

from __future__ import annotations

import asyncio

from server_support import LOST_AFTER, Clock, MemoryStore, capacity, join, make, spec
from test_services_edge import CertsDir, agent_stream, certs, channel, cluster_files, hello, report, served

from federator.api.v1 import agent_pb2
from federator.model import Job, JobPhase
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import ErrorNotice, LaunchOrder, Order
from federator.server.services import AgentService

__all__ = ["certs"]  # the module-scoped CA fixture of test_services_edge


def drain(rec: ClusterRecord) -> list[Order | None]:
    out: list[Order | None] = []
    while not rec.outbox.empty():
        out.append(rec.outbox.get_nowait())
    return out


def ack(pid: str, ok: bool) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(ack=agent_pb2.Ack(placement_id=pid, ok=ok, message="pwned"))


def rejected(fed: Federator, reason: str) -> float:
    return fed.metrics.registry.get_sample_value("federator_messages_rejected_total", {"reason": reason}) or 0.0


def placed_on_west(fed: Federator) -> tuple[Job, ClusterRecord, ClusterRecord]:
    """A job placed on west-1 (the only cluster with GPUs) while east-1, with none, is connected too."""
    west = join(fed, "west-1")
    east = fed.connect(cluster="east-1", region="east", labels={})  # the region its agent's Hello says below
    job = fed.submit(spec("victim"))
    fed.schedule_once()
    assert job.placements and job.placements[0].cluster == "west-1"
    assert any(isinstance(o, LaunchOrder) for o in drain(west))
    return job, west, east


def test_an_ack_for_another_clusters_placement_is_refused_and_changes_nothing() -> None:
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    job, west, east = placed_on_west(fed)
    pid, generation = job.placements[0].placement_id, job.generation
    drain(east)
    for ok in (False, True):
        reason = service.handle(east, ack(pid, ok))
        assert reason is not None and reason.value == "unexpected"
    assert rejected(fed, "unexpected") == 2.0
    notices = drain(east)
    assert all(isinstance(n, ErrorNotice) and n.reason == "unexpected" and n.placement_id == pid for n in notices)
    assert len(notices) == 2 and "ack.placement_id" in notices[0].message  # type: ignore[union-attr]
    assert job.phase is JobPhase.PLACED and job.generation == generation  # not re-queued, not re-placed
    assert [p.placement_id for p in job.placements] == [pid]
    assert drain(west) == []  # no Cancel reached the cluster that runs it
    assert pid not in east.acked


def test_the_own_clusters_refusal_still_re_queues_the_job() -> None:
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    job, west, _ = placed_on_west(fed)
    assert service.handle(west, ack(job.placements[0].placement_id, False)) is None
    assert job.phase is JobPhase.PENDING  # RefusedByCluster: the check lets the right agent through


def test_a_launch_whose_refusal_died_with_the_stream_is_sent_again_at_the_re_sync() -> None:
    """What agent.proto (Launch) says of a lost refusal: the placement is still current and never acked, so the
    re-sync takes the Launch as lost in flight and sends the same placement again, not a new generation."""
    fed = make(MemoryStore(), Clock())
    job, west, _ = placed_on_west(fed)
    pid, generation = job.placements[0].placement_id, job.generation
    fed.disconnect(west)  # the agent refused it as stale, and dropped the stream before the Ack went out
    back = fed.connect(cluster="west-1", region="r", labels={})
    fed.report(back, capacity())  # the re-sync: it holds nothing
    (order,) = [o for o in drain(back) if isinstance(o, LaunchOrder)]
    assert order.placement.placement_id == pid and job.generation == generation


def test_acks_for_ids_never_sent_are_not_kept() -> None:
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    rec = join(fed, "west-1")
    for i in range(500):
        service.handle(rec, ack(f"{'p' * 400}-{i}", True))
    assert rec.acked == set()
    fed.acked(rec, "made-up.g1.west-1")  # the state machine checks too, whoever calls it
    assert rec.acked == set()


def test_acked_forgets_placements_that_ended() -> None:
    fed = make(MemoryStore(), Clock())
    job, west, _ = placed_on_west(fed)
    pid = job.placements[0].placement_id
    fed.acked(west, pid)
    assert west.acked == {pid}
    fed.cancel(job.job_id)
    assert west.acked == set()
    fed.acked(west, pid)  # a late Ack for the cancelled placement
    assert west.acked == set()


def test_acked_forgets_a_superseded_placement() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    job, west, _ = placed_on_west(fed)
    pid = job.placements[0].placement_id
    fed.acked(west, pid)
    fed.disconnect(west)
    clock.now += LOST_AFTER + 1
    fed.check_leases()  # west-1 is Lost: its job is re-queued with a new generation
    assert job.phase is JobPhase.PENDING and west.acked == set()


def test_over_mtls_a_cluster_cannot_refuse_another_clusters_placement(certs: CertsDir) -> None:
    async def go() -> None:
        async with served(certs=certs) as s:
            job, _, east = placed_on_west(s.fed)
            s.fed.disconnect(east)  # east-1 connects over mTLS below, with its own certificate
            pid, generation = job.placements[0].placement_id, job.generation
            async with channel(s.target, cluster_files(certs, "east-1")) as ch:
                got, err = await agent_stream(ch, [hello(), report(), ack(pid, False)])
            assert err is None
            errors = [m.error for m in got if m.WhichOneof("body") == "error"]
            assert [(e.reason, e.placement_id) for e in errors] == [("unexpected", pid)]
            assert job.phase is JobPhase.PLACED and job.generation == generation
            assert s.rejected("unexpected") == 1.0

    asyncio.run(go())
