"""Agent messages are checked against the agent contract, never trusted (issue 13, item 10).

Each break of the contract is refused with its own counted reason
(`federator_messages_rejected_total{reason}`) and an Error back on the stream,
and the stream goes on. First through the service's handler over the real
state machine, then over a real socket.
"""

from __future__ import annotations

import asyncio

import pytest
from server_support import Clock, MemoryStore, capacity, join, make, spec
from test_services_edge import agent_stream, channel, hello, served

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.model import JobPhase
from federator.server.early_failures import EarlyFailurePolicy
from federator.server.orders import ErrorNotice, LaunchOrder
from federator.server.services import AgentService


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def drain(rec):  # type: ignore[no-untyped-def]
    out = []
    while not rec.outbox.empty():
        out.append(rec.outbox.get_nowait())
    return out


def gpu_report(*, nodes: int, free_each: int, total: int, sequence: int = 1) -> agent_pb2.AgentMessage:
    hist = [0] * (free_each + 1)
    hist[free_each] = nodes
    return agent_pb2.AgentMessage(
        capacity=agent_pb2.CapacityReport(
            sequence=sequence,
            cpu_milli_allocatable=1000,
            cpu_milli_free=1000,
            accelerator_pools=[
                agent_pb2.AcceleratorPool(
                    accelerator_model="H100",
                    nodes_by_free=hist,
                    total_accelerators=total,
                    allocatable_accelerators=total,
                )
            ],
        )
    )


def _with(**fields: int) -> agent_pb2.AgentMessage:
    """A plausible report but for these capacity fields."""
    message = gpu_report(nodes=1, free_each=8, total=8)
    for name, value in fields.items():
        setattr(message.capacity, name, value)
    return message


def update(pid: str, phase: JobPhase) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(phase),
                                                                 message="m"))


def rejected(fed, reason: str) -> float:  # type: ignore[no-untyped-def]
    return fed.metrics.registry.get_sample_value("federator_messages_rejected_total", {"reason": reason}) or 0.0


@pytest.mark.parametrize(("messages", "reason", "words"), [
    ([agent_pb2.AgentMessage()], "empty_message", "no body set"),
    ([agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster="west-1", region="west"))], "second_hello",
     "only the first message"),
    ([gpu_report(nodes=1000, free_each=8, total=4)], "implausible_report",
     "8000 whole free GPUs and 0 shared ones are more than allocatable_accelerators 4"),
    ([gpu_report(nodes=1, free_each=8, total=8, sequence=5), gpu_report(nodes=1, free_each=8, total=8, sequence=3)],
     "stale_report", "capacity.sequence: 3 is lower than this stream's previous report (5)"),
    ([update("x.g1.west-1", JobPhase.PENDING)], "bad_transition", "not JOB_PHASE_PENDING"),
    ([_with(cpu_milli_free=2000)], "implausible_report",
     "capacity.cpu_milli_free: 2000 is more than cpu_milli_allocatable 1000"),
    ([_with(memory_bytes_allocatable=10, memory_bytes_free=10, node_memory_bytes_free_max=11)],
     "implausible_report", "capacity.node_memory_bytes_free_max: 11 is more than memory_bytes_free 10"),
], ids=["empty", "second-hello", "implausible", "sequence-backwards", "pending", "cpu-free", "node-memory"])
def test_a_message_that_breaks_the_contract_is_refused_counted_and_answered(
        store: MemoryStore, clock: Clock, messages: list[agent_pb2.AgentMessage], reason: str, words: str) -> None:
    fed = make(store, clock)
    service = AgentService(fed)
    rec = join(fed, "west-1")
    drain(rec)
    results = [service.handle(rec, m) for m in messages]
    assert results[-1] is not None and results[-1].value == reason
    assert rejected(fed, reason) == 1.0
    (notice,) = [o for o in drain(rec) if isinstance(o, ErrorNotice)]
    assert notice.reason == reason and words in notice.message, notice
    assert fed.clusters["west-1"] is rec and not rec.closing  # the stream goes on
    if reason == "implausible_report":
        assert rec.capacity == capacity()  # the report was not applied


def test_a_running_placement_reported_back_to_placed_is_refused(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    service = AgentService(fed)
    job = fed.submit(spec("train"))
    rec = join(fed, "west-1")
    fed.schedule_once()
    (p,) = job.placements
    assert any(isinstance(o, LaunchOrder) for o in drain(rec))
    assert service.handle(rec, update(p.placement_id, JobPhase.RUNNING)) is None
    assert job.phase is JobPhase.RUNNING
    assert service.handle(rec, update(p.placement_id, JobPhase.PLACED)).value == "bad_transition"  # type: ignore[union-attr]
    assert job.phase is JobPhase.RUNNING and job.placements[0].phase is JobPhase.RUNNING
    (notice,) = [o for o in drain(rec) if isinstance(o, ErrorNotice)]
    assert notice.placement_id == p.placement_id and "cannot go back to Placed" in notice.message
    assert rejected(fed, "bad_transition") == 1.0


def test_an_update_with_an_unknown_phase_is_refused_naming_its_placement(store: MemoryStore, clock: Clock) -> None:
    """Every other refused JobUpdate carried its placement_id; one with phase 42 came back without it."""
    fed = make(store, clock)
    service = AgentService(fed)
    rec = join(fed, "west-1")
    drain(rec)
    message = agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(placement_id="x.g1.west-1", phase=42))  # type: ignore[arg-type]
    assert service.handle(rec, message).value == "malformed"  # type: ignore[union-attr]
    (notice,) = [o for o in drain(rec) if isinstance(o, ErrorNotice)]
    assert notice.placement_id == "x.g1.west-1", notice
    assert notice.message == "job_update.phase: unknown job phase 42", notice
    assert rejected(fed, "malformed") == 1.0


def test_refusals_reach_the_agent_as_errors_on_its_stream_which_goes_on() -> None:
    async def main() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                got, err = await agent_stream(ch, [hello(), agent_pb2.AgentMessage(), hello(),
                                                   gpu_report(nodes=1000, free_each=8, total=4),
                                                   gpu_report(nodes=1, free_each=8, total=8)])
            assert err is None
            errors = [m.error for m in got if m.WhichOneof("body") == "error"]
            assert [e.reason for e in errors] == ["empty_message", "second_hello", "implausible_report"]
            assert s.fed.clusters["east-1"].capacity is not None  # the good report after them was applied
            assert s.fed.clusters["east-1"].capacity.total_accelerators == 8

    asyncio.run(main())


HOSTILE = "\x1b[2J\x1b[31mpwned\x07 \x9b6n\x7f\r\nGPU ausgefallen: Überhitzung ✓"
SHOWN = "\\x1b[2J\\x1b[31mpwned\\x07 \\x9b6n\\x7f\\x0d\\x0aGPU ausgefallen: Überhitzung ✓"


def test_an_agents_messages_are_stored_with_control_characters_shown_not_obeyed(store: MemoryStore,
                                                                               clock: Clock) -> None:
    """A provider's agent sent JobUpdate.message with `\\x1b[2J\\x1b[31m...` and a bell: stored as is, `get jobs -o
    wide` cleared users' screens. The federator now writes each control character as its escape and keeps
    the rest (accents, symbols); the same for an Ack's refusal, which becomes the job's reason."""
    fed = make(store, clock, early_failures=EarlyFailurePolicy(seconds=0))  # Failed is final: its message is read
    service = AgentService(fed)
    job = fed.submit(spec("train"))
    rec = join(fed, "west-1")
    fed.schedule_once()
    (p,) = job.placements
    drain(rec)
    message = agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
        placement_id=p.placement_id, phase=convert.phase_to_pb(JobPhase.FAILED), message=HOSTILE))
    assert service.handle(rec, message) is None
    assert job.message == SHOWN and job.placements[0].message == SHOWN

    other = fed.submit(spec("serve"))
    fed.schedule_once()
    (q,) = other.placements
    ack = agent_pb2.AgentMessage(ack=agent_pb2.Ack(placement_id=q.placement_id, ok=False, message=HOSTILE))
    assert service.handle(rec, ack) is None
    said = " ".join([str(other.pending_reason), other.message, *(x.message for x in other.placements)])
    assert "Überhitzung ✓" in said and not any(c in said for c in "\x1b\x07\x9b\x7f\r\n"), said
