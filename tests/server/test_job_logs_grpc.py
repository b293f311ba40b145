"""`JobService.Logs` over real gRPC on loopback (outside QA, HPC H4: a user could not read their job's output).

A real federator and a real agent with the simulated backend: the federator asks the agent on its stream
(LogsRequest), the agent answers (LogsReply), and the user is told each replica's lines. Then a scripted agent
stands for one that breaks the contract: it never answers (the user is told the cluster did not answer), it
answers more than asked (cut, marked truncated), it answers a request never sent (refused as `unexpected`), or
it answers late (dropped, nothing refused). And who may read what: another tenant's job is NOT_FOUND, as Get says.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from agent_stream import agent_stream
from server_support import capacity, job_api, job_api_by_token, spec, submit_request
from test_services_edge import run, served

from federator.agent.agent import Agent, AgentConfig
from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import AgentFeature, JobPhase
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, Token
from federator.security.limits import Limits
from federator.server import logs
from federator.server.federator import Federator
from federator.store import SqliteJobStore

FLEET = parse_fleet({"clusters": [{"name": "east-1", "region": "east", "nodes": [
    {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})
A_WHILE = 20.0  # a guard against a hang only


def train(name: str, *, replicas: int = 2, duration: str = "1h") -> object:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-startup": "0s",
                                                                 "federator.io/sim-duration": duration}},
                      "spec": {"kind": "training", "replicas": replicas,
                               "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})


async def until(cond: Callable[[], object]) -> None:
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), A_WHILE)


def test_a_running_and_then_a_finished_jobs_lines_come_from_the_real_agent_per_replica() -> None:
    async def go() -> None:
        async with served() as s:
            fed = s.fed
            backend = SimBackend(FLEET["east-1"])
            agent = Agent(AgentConfig(cluster="east-1", region="east", target=s.target, max_backoff=0.2), backend)
            task = asyncio.create_task(agent.run())
            try:
                await until(lambda: (rec := fed.clusters.get("east-1")) is not None and rec.resynced)
                assert AgentFeature.LOGS in fed.clusters["east-1"].features
                job = fed.submit(train("t", duration="0.3s"))  # type: ignore[arg-type]
                fed.schedule_once()
                await until(lambda: job.phase is JobPhase.RUNNING)
                (placed,) = job.placements
                async with grpc.aio.insecure_channel(s.target) as ch:
                    stub = jobs_pb2_grpc.JobServiceStub(ch)
                    got = await stub.Logs(jobs_pb2.JobLogsRequest(job_id="t"), timeout=A_WHILE)
                    assert [(x.cluster, x.placement_id, x.replica, x.pod) for x in got.logs] == \
                        [("east-1", placed.placement_id, 0, ""), ("east-1", placed.placement_id, 1, "")]
                    assert "launched on simulated cluster east-1" in got.logs[0].text
                    assert "no container runs here" in got.logs[0].text
                    assert (got.tail_lines, got.limit_bytes, list(got.errors)) == (100, 65536, [])

                    await until(lambda: job.phase is JobPhase.SUCCEEDED)  # the member still holds it: asked anyway
                    got = await stub.Logs(jobs_pb2.JobLogsRequest(job_id="t", replica=1, tail_lines=1),
                                          timeout=A_WHILE)
                    (only,) = got.logs
                    assert only.replica == 1 and only.truncated
                    assert only.text.endswith("federator sim: Succeeded: finished after 0.3s\n")
                    assert only.text.count("\n") == 1
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await backend.stop()

    run(go)


def test_an_agent_run_with_no_logs_lists_no_feature_and_the_user_is_told_so() -> None:
    async def go() -> None:
        async with served() as s:
            fed = s.fed
            backend = SimBackend(FLEET["east-1"])
            config = AgentConfig(cluster="east-1", region="east", target=s.target, max_backoff=0.2, serve_logs=False)
            task = asyncio.create_task(Agent(config, backend).run())
            try:
                await until(lambda: (rec := fed.clusters.get("east-1")) is not None and rec.resynced)
                assert AgentFeature.LOGS not in fed.clusters["east-1"].features
                job = fed.submit(train("t"))  # type: ignore[arg-type]
                fed.schedule_once()
                await until(lambda: job.phase is JobPhase.RUNNING)
                async with grpc.aio.insecure_channel(s.target) as ch:
                    got = await jobs_pb2_grpc.JobServiceStub(ch).Logs(jobs_pb2.JobLogsRequest(job_id="t"),
                                                                      timeout=A_WHILE)
                assert list(got.logs) == []
                (error,) = got.errors
                assert error.cluster == "east-1"
                assert error.message.startswith('cluster east-1 does not serve logs (its agent lists no "logs" '
                                                "feature: an agent older than 0.13.0, or one run with --no-logs)")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await backend.stop()

    run(go)


def test_a_job_never_placed_is_failed_precondition_and_bad_bounds_name_the_field() -> None:
    async def go() -> None:
        fed = Federator(store=SqliteJobStore(Path(":memory:")))
        job = fed.submit(spec("waits"))
        async with job_api(fed) as jobs:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.Logs(jobs_pb2.JobLogsRequest(job_id="waits"), timeout=A_WHILE)
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert err.value.details() == f"job {job.job_id} has never been placed: no logs yet"
            job.ran_seconds = 30.0  # as a job preempted after a run and put back to Pending: its placements gone
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.Logs(jobs_pb2.JobLogsRequest(job_id="waits"), timeout=A_WHILE)
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert err.value.details().startswith(f"job {job.job_id} has no placement now: it ran before")
            for request, field in ((jobs_pb2.JobLogsRequest(job_id="waits", tail_lines=10_001), "tail_lines"),
                                   (jobs_pb2.JobLogsRequest(job_id="waits", limit_bytes=-1), "limit_bytes"),
                                   (jobs_pb2.JobLogsRequest(job_id="waits", replica=-1), "replica")):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await jobs.Logs(request, timeout=A_WHILE)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert err.value.details().startswith(f"{field}: must be ")

    run(go)


def test_another_tenants_job_is_not_found_as_get_says_and_every_call_is_audited(tmp_path: Path) -> None:
    auth = Authenticator(tokens=(Token("a-secret", "alice"), Token("b-secret", "bob")))
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"))
    audit = AuditLog(tmp_path / "audit.jsonl")

    async def go() -> None:
        async with job_api_by_token(fed, auth, tmp_path / "certs", audit=audit) as stub:
            alice, bob = stub("a-secret"), stub("b-secret")
            made = await alice.Submit(submit_request("secret"), timeout=A_WHILE)
            for call in (bob.Get(jobs_pb2.GetJobRequest(job_id=made.job.job_id), timeout=A_WHILE),
                         bob.Logs(jobs_pb2.JobLogsRequest(job_id=made.job.job_id), timeout=A_WHILE)):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call
                assert err.value.code() == grpc.StatusCode.NOT_FOUND
                assert err.value.details() == f"no job with id or name '{made.job.job_id}'"
            with pytest.raises(grpc.aio.AioRpcError) as err:  # alice gets past the visibility check
                await alice.Logs(jobs_pb2.JobLogsRequest(job_id=made.job.job_id), timeout=A_WHILE)
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    try:
        asyncio.run(go())
    finally:
        fed.store.close()
        audit.close()
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    said = [(x["identity"]["user"], x["result"], x["code"]) for x in lines if x["action"] == "logs"]
    assert said == [("bob", "failed", "NOT_FOUND"), ("alice", "failed", "FAILED_PRECONDITION")]
    assert all(x["object"]["job_id"] for x in lines if x["action"] == "logs")  # the audit line names the job


async def _placed(fed: Federator, agent: object) -> tuple[str, agent_pb2.LogsRequest | None]:
    """Report capacity on the scripted stream, take the Launch, ack it: the placement id."""
    await agent.send(agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity())))  # type: ignore[attr-defined]
    launch = await agent.read()  # type: ignore[attr-defined]
    assert launch.WhichOneof("body") == "launch"
    pid = launch.launch.placement.placement_id
    await agent.send(agent_pb2.AgentMessage(ack=agent_pb2.Ack(placement_id=pid, ok=True)))  # type: ignore[attr-defined]
    return pid, None


def _rejected(fed: Federator, reason: str) -> float:
    return fed.metrics.registry.get_sample_value("federator_messages_rejected_total", {"reason": reason}) or 0.0


def test_an_agent_that_never_answers_is_named_after_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "LOGS_REPLY_SECONDS", 0.2)  # the wait itself, not asserted on

    async def go() -> None:
        # A server whose message limit is 100 kB: the bytes asked are held to half of it, and the answer says so
        fed = Federator(store=SqliteJobStore(Path(":memory:")), lease_seconds=10.0, cycle_interval=0.05,
                        limits=Limits(max_message_bytes=100_000))
        fed.submit(spec("a", gpus=8))
        async with job_api(fed) as jobs, agent_stream(fed, features=("logs",)) as agent:
            pid, _ = await _placed(fed, agent)
            call = asyncio.ensure_future(jobs.Logs(jobs_pb2.JobLogsRequest(job_id="a", limit_bytes=524_288),
                                                   timeout=A_WHILE))
            asked = await agent.read()
            assert asked.WhichOneof("body") == "logs"
            assert (asked.logs.placement_id, asked.logs.replica, asked.logs.tail_lines, asked.logs.limit_bytes) == \
                (pid, -1, 100, 50_000)
            got = await call
            assert (got.tail_lines, got.limit_bytes) == (100, 50_000)
            assert [(e.cluster, e.placement_id, e.message) for e in got.errors] == \
                [("east-1", pid, "cluster east-1 did not answer within 0.2s")]
            before = _rejected(fed, "unexpected")
            # its answer after the deadline is dropped quietly: not an Error, not counted
            await agent.send(agent_pb2.AgentMessage(logs=agent_pb2.LogsReply(request_id=asked.logs.request_id)))
            # ... whereas one to a request never sent is refused, counted and answered with an Error
            await agent.send(agent_pb2.AgentMessage(logs=agent_pb2.LogsReply(request_id="never-asked")))
            error = await agent.read()
            assert error.WhichOneof("body") == "error"
            assert error.error.reason == "unexpected"
            assert error.error.message.startswith("logs.request_id: 'never-asked' was never sent on this stream")
            assert _rejected(fed, "unexpected") == before + 1

    run(go)


def test_an_agent_that_answers_more_than_asked_is_cut_to_the_bound_and_said_truncated() -> None:
    async def go() -> None:
        fed = Federator(store=SqliteJobStore(Path(":memory:")), lease_seconds=10.0, cycle_interval=0.05)
        fed.submit(spec("a", gpus=8))
        async with job_api(fed) as jobs, agent_stream(fed, features=("logs",)) as agent:
            pid, _ = await _placed(fed, agent)
            call = asyncio.ensure_future(jobs.Logs(jobs_pb2.JobLogsRequest(job_id="a", limit_bytes=1000, replica=0),
                                                   timeout=A_WHILE))
            asked = (await agent.read()).logs
            assert (asked.limit_bytes, asked.replica) == (1000, 0)
            much = "".join(f"line {i}\n" for i in range(20_000))  # ~170 KB: far over the 1000 asked
            await agent.send(agent_pb2.AgentMessage(logs=agent_pb2.LogsReply(request_id=asked.request_id, logs=[
                agent_pb2.ReplicaLog(replica=0, pod="a-0", container="main", text=much),
                agent_pb2.ReplicaLog(replica=0, pod="a-0\x1b[2J", container="side", text=much),
                agent_pb2.ReplicaLog(replica=3, pod="not-asked", text="never asked for")])))
            got = await call
            assert [(x.pod, x.container, x.truncated) for x in got.logs] == \
                [("a-0", "main", True), ("a-0\\x1b[2J", "side", True)]
            assert sum(len(x.text.encode()) for x in got.logs) <= 1000
            assert got.logs[0].text.endswith("line 19999\n")  # the end kept: the newest lines
            assert list(got.errors) == []

    run(go)


def test_a_call_waiting_on_a_stream_that_ends_is_answered_at_once_naming_the_cluster() -> None:
    """The waiting requests live with the stream (server/logs.py, Waiting): when it ends, its reply can no longer
    come, and the user is told so then, not after the 10 s deadline."""
    async def go() -> None:
        fed = Federator(store=SqliteJobStore(Path(":memory:")), lease_seconds=10.0, cycle_interval=0.05)
        fed.submit(spec("a", gpus=8))
        async with job_api(fed) as jobs, agent_stream(fed, features=("logs",)) as agent:
            pid, _ = await _placed(fed, agent)
            call = asyncio.ensure_future(jobs.Logs(jobs_pb2.JobLogsRequest(job_id="a"), timeout=A_WHILE))
            assert (await agent.read()).WhichOneof("body") == "logs"
            agent.call.cancel()  # the agent's side of the stream goes away
            got = await call
            assert [(e.cluster, e.placement_id, e.message) for e in got.errors] == \
                [("east-1", pid, "cluster east-1: its agent's stream ended before it answered")]

    run(go)
