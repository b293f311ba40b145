"""An agent naming ANOTHER cluster's placement (outside QA F1, F2): in its report's placement_ids it is no orphan
(the store knows it) but a mix-up, told to the agent and cancelled on its own cluster only; in a JobUpdate it is
refused as an Ack for it is. Neither moves the other cluster's placement."""

from __future__ import annotations

import asyncio
import logging

import pytest
from server_support import Clock, MemoryStore, capacity, make
from test_agent_acks import drain, placed_on_west, rejected
from test_services_edge import agent_stream, channel, hello, served

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.model import JobPhase
from federator.server.orders import CancelOrder, ErrorNotice
from federator.server.services import AgentService


def report_listing(*pids: str) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity(*pids)))


def update(pid: str, phase: JobPhase) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(phase),
                                                                 message="pwned"))


def orphans(fed: object, cluster: str) -> float:
    return fed.metrics.registry.get_sample_value(  # type: ignore[attr-defined]
        "federator_orphan_placements", {"cluster": cluster}) or 0.0


def test_over_grpc_another_clusters_placement_in_a_report_is_cancelled_there_and_said_truthfully(
        caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        async with served() as s:
            job, west, east = placed_on_west(s.fed)
            s.fed.disconnect(east)
            pid, generation = job.placements[0].placement_id, job.generation
            s.fed.report(west, capacity(pid))  # west-1 runs it and says so
            drain(west)
            with caplog.at_level(logging.INFO, logger="federator.server"):
                async with channel(s.target) as ch:
                    got, err = await agent_stream(ch, [hello(), report_listing(), report_listing(pid)])
            assert err is None
            cancels = [m.cancel for m in got if m.WhichOneof("body") == "cancel"]
            assert [c.placement_id for c in cancels] == [pid]
            assert "not a placement of this cluster" in cancels[0].reason and "west-1" in cancels[0].reason
            errors = [m.error for m in got if m.WhichOneof("body") == "error"]
            assert [(e.reason, e.placement_id) for e in errors] == [("unexpected", pid)]
            assert errors[0].message.startswith("capacity.placement_ids:")
            assert s.rejected("unexpected") == 1.0
            assert orphans(s.fed, "east-1") == 0.0
            text = caplog.text
            assert "no record of" not in text and "restore" not in text
            assert f"cluster east-1 reports {pid} (a placement of cluster west-1)" in text
            # west-1's placement is untouched: not cancelled, not re-placed, still counted by west-1's report
            assert job.phase is JobPhase.PLACED and job.generation == generation
            assert [(p.placement_id, p.cluster) for p in job.placements] == [(pid, "west-1")]
            assert not [o for o in drain(west) if isinstance(o, CancelOrder)]

    asyncio.run(go())


@pytest.mark.parametrize("phase", [JobPhase.RUNNING, JobPhase.FAILED])
def test_a_job_update_for_another_clusters_placement_is_refused_as_an_ack_is(phase: JobPhase) -> None:
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    job, west, east = placed_on_west(fed)
    pid = job.placements[0].placement_id
    drain(east)
    reason = service.handle(east, update(pid, phase))
    assert reason is not None and reason.value == "unexpected"
    (notice,) = drain(east)
    assert isinstance(notice, ErrorNotice) and notice.reason == "unexpected" and notice.placement_id == pid
    assert notice.message.startswith("job_update.placement_id:")
    assert rejected(fed, "unexpected") == 1.0
    assert job.phase is JobPhase.PLACED and job.placements[0].phase is JobPhase.PLACED
    assert drain(west) == []


def test_job_updates_over_the_budget_are_dropped_counted_and_answered_once() -> None:
    """F15: 20,000 duplicate updates cost ~7 s of federator CPU with no word. Past the burst they are dropped
    (counted), the first of the run answered with an Error; the budget refills and updates pass again."""
    clock = Clock()
    fed = make(MemoryStore(), clock)
    service = AgentService(fed)
    job, west, _ = placed_on_west(fed)
    pid = job.placements[0].placement_id
    burst = fed.limits.job_update_burst
    for _ in range(burst):
        assert service.handle(west, update(pid, JobPhase.RUNNING)) is None
    for _ in range(500):
        reason = service.handle(west, update(pid, JobPhase.RUNNING))
        assert reason is not None and reason.value == "rate_limited"
    assert fed.metrics.registry.get_sample_value("federator_job_updates_limited_total", {"cluster": "west-1"}) == 500
    errors = [o for o in drain(west) if isinstance(o, ErrorNotice)]
    assert [(e.reason, e.placement_id) for e in errors] == [("rate_limited", pid)]
    assert errors[0].message.startswith("job_update:")
    clock.now += 1.0
    assert service.handle(west, update(pid, JobPhase.SUCCEEDED)) is None
    assert job.phase is JobPhase.SUCCEEDED


def test_a_re_sync_is_not_charged_to_the_update_budget() -> None:
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    job, west, _ = placed_on_west(fed)
    pid = job.placements[0].placement_id
    fed.disconnect(west)
    back = fed.connect(cluster="west-1", region="r", labels={})
    for _ in range(fed.limits.job_update_burst + 100):  # before its first report: the re-sync
        assert service.handle(back, update(pid, JobPhase.RUNNING)) is None


def test_an_old_placement_of_another_cluster_in_a_report_is_no_orphan_either(caplog: pytest.LogCaptureFixture) -> None:
    """Superseded since (refused, the job queued again): still another cluster's, never 'no record of'."""
    fed = make(MemoryStore(), Clock())
    job, west, east = placed_on_west(fed)
    old = job.placements[0].placement_id
    fed.refused(west, old, "no room after all")
    fed.schedule_once()
    assert old not in {p.placement_id for p in job.placements}  # superseded: the job waits for room
    drain(east)
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        fed.report(east, capacity(old))
    orders = drain(east)
    assert [o.placement_id for o in orders if isinstance(o, CancelOrder)] == [old]
    assert [(o.reason, o.placement_id) for o in orders if isinstance(o, ErrorNotice)] == [("unexpected", old)]
    assert orphans(fed, "east-1") == 0.0 and "no record of" not in caplog.text
    assert f"reports {old} (a placement of cluster west-1)" in caplog.text


def test_an_agent_cannot_tell_from_the_answers_whether_another_tenants_job_exists() -> None:
    """Security m2: a provider's agent naming `alpha-train-21cf9c.g1.west-1` (another tenant's real placement) was
    told it was "one of cluster 'west-1'", and an id of a job that does not exist got no answer; in a report, the
    real one was cancelled at once and the made-up one held as an orphan. Any id not of the sender's form now gets
    the same answer in the same words, so the answers confirm nothing."""
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    job, west, east = placed_on_west(fed)
    real = job.placements[0].placement_id
    made_up = real.replace(str(job.job_id), "nosuch-abcdef")
    drain(east)

    def said(pid: str) -> list[tuple[str, str]]:
        reason = service.handle(east, update(pid, JobPhase.RUNNING))
        assert reason is not None and reason.value == "unexpected"
        return [(type(o).__name__, o.message.replace(pid, "ID")) for o in drain(east)]  # type: ignore[union-attr]

    assert said(real) == said(made_up)

    def cancelled(pid: str) -> list[tuple[str, str]]:
        fed.report(east, capacity(pid))
        out = [(type(o).__name__, o.reason.replace(pid, "ID")) for o in drain(east) if isinstance(o, CancelOrder)]
        fed.report(east, capacity())
        drain(east)
        return out

    assert cancelled(real) == cancelled(made_up) == [("CancelOrder", "not a placement of this cluster: ID does not "
                                                                        "end with .g<generation>.east-1")]
    assert orphans(fed, "east-1") == 0.0
    assert job.phase is JobPhase.PLACED and drain(west) == []
