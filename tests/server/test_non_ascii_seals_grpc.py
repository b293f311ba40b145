"""A seal said back with characters outside printable ASCII, over the real gRPC agent stream (goagentqa62 H1).

Why: JobUpdate.cancel_seal and launch_seal were checked as "at most 128 printable characters", and "é" is
printable; the comparison with the federator's seal (hmac.compare_digest on str) then raised TypeError, the stream
ended UNAVAILABLE and the agent's re-sync said the same seal again: one corrupted annotation on one workload object
held its whole cluster out of the federation. Now such a seal is refused at the intake as `malformed` with an Error
naming the field (server/validation.py), the update dropped, the stream going on, and the comparison is of bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from agent_stream import agent_stream
from server_support import MemoryStore, capacity, job_api, spec

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2
from federator.model import JobPhase
from federator.server import seals
from federator.server.federator import Federator


@pytest.fixture
def sealed() -> Iterator[None]:
    """The seals of an mTLS federator (server/app.py): under a key from its serving key, required."""
    before = seals.use_secret(b"a serving key", required=True)
    yield
    seals.use_seals(before)


def _update(pid: str, phase: JobPhase, **fields: object) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(phase),
                                                                 **fields))  # type: ignore[arg-type]


@pytest.mark.usefixtures("sealed")
def test_a_non_ascii_seal_is_refused_naming_the_field_and_the_stream_goes_on() -> None:
    """A Running placement's agent says it Cancelled with job_ended and a cancel_seal of 100 "é", then Running with a
    launch_seal of 20 "é" (the QA's Go agent, -evil and -non-ascii-launch-seal): each is answered with a `malformed`
    Error naming its field and placement, the stream is not ended (the second Error comes on it, then the agent's
    honest update is taken), and the job is untouched: still Running on that placement, not cancelled."""
    async def scenario() -> None:
        fed = Federator(store=MemoryStore(), cycle_interval=0.05)  # type: ignore[arg-type]
        async with job_api(fed) as jobs, agent_stream(fed, features=("seals",)) as agent:
            await agent.send(agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity())))
            job = (await jobs.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("a"))))).job
            while (order := await agent.order()).WhichOneof("body") != "launch":
                pass
            pid, launch_seal = order.launch.placement.placement_id, order.launch.seal
            await agent.send(_update(pid, JobPhase.RUNNING, launch_seal=launch_seal))
            while fed.jobs[job.job_id].phase is not JobPhase.RUNNING:
                await asyncio.sleep(0.01)
            for field, bad in (("cancel_seal", "\u00e9" * 100), ("launch_seal", "\u00e9" * 20)):
                phase = JobPhase.CANCELLED if field == "cancel_seal" else JobPhase.RUNNING
                await agent.send(_update(pid, phase, job_ended=phase is JobPhase.CANCELLED, resync=True,
                                         **{field: bad}))
                error = await agent.next_error()
                assert error.reason == "malformed" and error.placement_id == pid
                assert error.message.startswith(f"job_update.{field}: must be empty or at most 128 printable ASCII")
            kept = fed.jobs[job.job_id]
            assert kept.phase is JobPhase.RUNNING and [p.placement_id for p in kept.placements] == [pid]
            await agent.send(_update(pid, JobPhase.SUCCEEDED, launch_seal=launch_seal))  # the stream still reads
            while fed.jobs[job.job_id].phase is not JobPhase.SUCCEEDED:
                await asyncio.sleep(0.01)

    asyncio.run(scenario())
