"""A placement its agent reported ended (Failed, Cancelled) is sent no Cancel when its job is queued again
(outside QA F3): the contract's answer to a Cancel is Cancelled, a backwards move over a final phase."""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, make
from test_agent_acks import drain, placed_on_west
from test_foreign_placements import update

from federator.model import JobPhase, Reason, ReasonCode
from federator.server.orders import CancelOrder
from federator.server.services import AgentService


@pytest.mark.parametrize("phase", [JobPhase.FAILED, JobPhase.CANCELLED], ids=["failed-early", "stopped-by-agent"])
def test_a_placement_its_agent_reported_ended_gets_no_cancel_when_its_job_is_queued_again(phase: JobPhase) -> None:
    fed = make(MemoryStore(), Clock())
    service = AgentService(fed)
    job, west, _ = placed_on_west(fed)
    pid, generation = job.placements[0].placement_id, job.generation
    assert service.handle(west, update(pid, JobPhase.RUNNING)) is None
    assert service.handle(west, update(pid, phase)) is None  # at once: an early failure, or evicted
    assert job.phase is JobPhase.PENDING and not job.placements  # queued again (placed once more, elsewhere)
    assert not [o for o in drain(west) if isinstance(o, CancelOrder) and o.placement_id == pid]
    assert job.generation == generation  # the next placement takes the next generation


@pytest.mark.parametrize(("stopped", "cancelled"), [(False, True), (True, False)], ids=["given-up", "reported"])
def test_only_what_the_agent_reported_ended_goes_without_a_cancel(stopped: bool, cancelled: bool) -> None:
    """A placement the federator gives up on (a start timeout, a move) is still told to stop."""
    fed = make(MemoryStore(), Clock())
    job, west, _ = placed_on_west(fed)
    pid = job.placements[0].placement_id
    fed.requeue(job, Reason(ReasonCode.REFUSED_BY_CLUSTER, "did not start in time"), ended={pid},
                stopped={pid} if stopped else ())
    assert bool([o for o in drain(west) if isinstance(o, CancelOrder) and o.placement_id == pid]) is cancelled
