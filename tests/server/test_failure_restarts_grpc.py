"""spec.failurePolicy over the real gRPC API beside a real agent stream, the requests built from the proto alone
(types_pb2, as a client in another language builds them): a member's Failed report places the job again (a new
Launch on the stream), the wait reads FailedRestarting, a job waiting on it (afterok) waits on through the
restart, and a spent budget ends both (server/failure_restarts.py; outside migration QA, M12)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from agent_stream import AgentStream, agent_stream
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from server_support import capacity, job_api

from federator.api import convert
from federator.api.features import FEATURES
from federator.api.v1 import agent_pb2, jobs_pb2, types_pb2
from federator.model import JobPhase
from federator.server.early_failures import EarlyFailurePolicy
from federator.server.federator import Federator
from federator.store import SqliteJobStore

NCCL = "NCCL watchdog timeout: rank 3 (exit 1)"


def request(name: str, *, max_restarts: int = 0, after: str = "") -> jobs_pb2.SubmitRequest:
    spec = types_pb2.JobSpec(name=name, kind=types_pb2.JOB_KIND_TRAINING, replicas=1,
                             resources=types_pb2.Resources(cpu_milli=1000, memory_bytes=1 << 30))
    if max_restarts:
        spec.failure_policy.CopyFrom(types_pb2.FailurePolicy(max_restarts=max_restarts))
    if after:
        spec.depends_on.CopyFrom(types_pb2.JobDependency(jobs=[after]))
    return jobs_pb2.SubmitRequest(spec=spec)


async def launched(agent: AgentStream) -> str:
    """The placement id of the next Launch on the agent's stream."""
    order = await agent.order()
    assert order.WhichOneof("body") == "launch", order
    return str(order.launch.placement.placement_id)


async def runs_then_fails(fed: Federator, agent: AgentStream, job_id: str, pid: str) -> None:
    """The agent reports the placement Running, then Failed; back once the federator has taken the failure."""
    for phase, message in ((JobPhase.RUNNING, ""), (JobPhase.FAILED, NCCL)):
        await agent.send(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
            placement_id=pid, phase=convert.phase_to_pb(phase), message=message)))
    while any(p.placement_id == pid for p in fed.jobs[job_id].placements) and \
            not fed.jobs[job_id].phase.is_terminal:
        await asyncio.sleep(0.01)


def test_a_failed_job_with_a_budget_is_launched_again_and_its_dependent_waits_for_the_end(tmp_path: Path) -> None:
    async def scenario() -> None:
        # early failures off: every failure here is a late one; no cool-down: the one cluster takes it again
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05, refusal_cooldown=0,
                        early_failures=EarlyFailurePolicy(seconds=0))
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            await agent.send(agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity())))
            a = (await jobs.Submit(request("pretrain", max_restarts=1))).job
            assert a.spec.failure_policy.max_restarts == 1  # echoed: a 0.17.0 federator's reply would lack it
            first = await launched(agent)
            b = (await jobs.Submit(request("eval", after="pretrain"))).job
            assert b.pending_reason.code == "Dependency"

            await runs_then_fails(fed, agent, a.job_id, first)
            second = await launched(agent)  # placed again: a new placement, a new Launch
            assert second != first
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=a.job_id))
            assert (got.restarts, got.failure_restarts) == (1, 1)
            assert got.last_restart_reason.code == "FailedRestarting"
            assert "restart 1 of 1 on failure, spec.failurePolicy.maxRestarts" in got.last_restart_reason.message
            waiting = await jobs.Get(jobs_pb2.GetJobRequest(job_id=b.job_id))
            assert waiting.phase == types_pb2.JOB_PHASE_PENDING  # a restart is no end: afterok waits on
            assert waiting.pending_reason.code == "Dependency"

            await runs_then_fails(fed, agent, a.job_id, second)
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=a.job_id))
            assert got.phase == types_pb2.JOB_PHASE_FAILED
            assert got.message.endswith("(not placed again: restarted 1 of 1 times on failure, "
                                        "spec.failurePolicy.maxRestarts)")
            while fed.jobs[b.job_id].phase is not JobPhase.FAILED:  # afterok never satisfied, now it ended
                await asyncio.sleep(0.01)
    asyncio.run(scenario())


def test_a_budget_out_of_range_is_invalid_argument_naming_the_field(tmp_path: Path) -> None:
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"))
        async with job_api(fed) as jobs:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.Submit(request("pretrain", max_restarts=101))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith("spec.failurePolicy.maxRestarts: must be an integer from 0 to 100")
            status = rpc_status.from_call(err.value)
            assert status is not None
            bad = error_details_pb2.BadRequest()
            assert any(d.Unpack(bad) for d in status.details)
            assert [v.field for v in bad.field_violations] == ["spec.failure_policy.max_restarts"]
            assert not fed.jobs
    asyncio.run(scenario())


def test_whoami_names_the_feature() -> None:
    assert "jobs.failure_policy" in FEATURES
