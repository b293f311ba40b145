"""`JobService.FollowLogs` (`federator logs --follow`) over real gRPC on loopback (server/log_follow.py).

A real federator and a real agent with the simulated backend, whose placement says a line every 50 ms: the user
gets each line once, in order, none skipped, and the follow ends after the job with its last lines and the phase.
A scripted agent then plays the member to the byte: lines of the very same nanosecond across two reads are cut
exactly; an agent that lists no "logs-since" is named and never asked a dated read. And the bounds: a user's
follows are seated (RESOURCE_EXHAUSTED LOG_FOLLOWS_FULL with a RetryInfo, the gauge federator_log_follows), and
the unary Logs is held to a per-user rate (LOGS_RATE). At scale (server/log_polls.py): two followers of one
output share one read a beat, and an agent's "busy" skips a beat, losing no line. Polls are sped up; nothing is
timed.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from agent_stream import agent_stream
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from server_support import job_api, spec
from test_job_logs_grpc import FLEET, _placed
from test_services_edge import run, served

from federator.agent.agent import Agent, AgentConfig
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import AgentFeature, JobPhase
from federator.security.audit import AuditLog
from federator.security.limits import Limits
from federator.server import log_follow
from federator.server.federator import Federator
from federator.store import SqliteJobStore

A_WHILE = 20.0  # a guard against a hang only


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_follow, "FOLLOW_POLL_SECONDS", 0.02)


def talker(name: str, *, replicas: int = 2, duration: str = "0.6s") -> object:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-startup": "0s",
                                                                 "federator.io/sim-duration": duration,
                                                                 "federator.io/sim-output-every": "50ms"}},
                      "spec": {"kind": "training", "replicas": replicas,
                               "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})


async def until(cond: Callable[[], object]) -> None:
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), A_WHILE)


def _follows(fed: Federator) -> float:
    return fed.metrics.registry.get_sample_value("federator_log_follows") or 0.0


def test_a_running_jobs_lines_come_once_each_in_order_and_the_follow_ends_with_the_job(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")

    async def go() -> None:
        async with served(audit=audit) as s:
            fed = s.fed
            backend = SimBackend(FLEET["east-1"])
            agent = Agent(AgentConfig(cluster="east-1", region="east", target=s.target, max_backoff=0.2), backend)
            task = asyncio.create_task(agent.run())
            try:
                await until(lambda: (rec := fed.clusters.get("east-1")) is not None and rec.resynced)
                assert {AgentFeature.LOGS, AgentFeature.LOGS_SINCE} <= fed.clusters["east-1"].features
                job = fed.submit(talker("t"))  # type: ignore[arg-type]
                fed.schedule_once()
                await until(lambda: job.phase is JobPhase.RUNNING)
                async with grpc.aio.insecure_channel(s.target) as ch:
                    stub = jobs_pb2_grpc.JobServiceStub(ch)
                    got = [m async for m in stub.FollowLogs(jobs_pb2.FollowLogsRequest(job_id="t", tail_lines=100),
                                                            timeout=A_WHILE)]
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await backend.stop()
            assert len(got) > 2  # lines came while it ran, not only at its end
            assert got[-1].ended == f"job {job.job_id} Succeeded"
            assert got[-1].end == jobs_pb2.FOLLOW_END_JOB_ENDED  # the job's end, for a program
            assert all(not m.ended for m in got[:-1]) and all(not m.errors for m in got)
            for replica in (0, 1):
                text = "".join(x.text for m in got for x in m.logs if x.replica == replica)
                lines = text.splitlines()
                assert "launched on simulated cluster east-1" in lines[0]
                assert lines[-1].endswith("federator sim: Succeeded: finished after 0.6s")
                steps = [int(m.group(1)) for line in lines if (m := re.search(r"federator sim: step (\d+)$", line))]
                assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 3  # once each, none skipped
                assert len(lines) == len(set(lines))  # no line twice (each carries its own second)
                assert not any(x.truncated for m in got for x in m.logs)
                assert not re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", lines[1])  # the agent's date cut
            assert _follows(fed) == 0.0  # its seat given back

    try:
        run(go)
    finally:
        audit.close()
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    said = [(x["result"], x["object"].get("follow")) for x in lines if x["action"] == "logs"]
    assert said == [("accepted", "true")]  # once per follow, not per poll


def _dated(*lines: tuple[str, str]) -> str:
    return "".join(f"{stamp} {text}\n" for stamp, text in lines)


def test_lines_of_one_nanosecond_over_two_reads_are_cut_exactly_and_an_old_agent_is_named() -> None:
    """The cursor is the last line's time and how many lines of that time were passed: Kubernetes' sinceTime is
    whole seconds, so the second read brings the first's lines of that second again, and only the new one of the
    very same nanosecond goes on."""
    async def go() -> None:
        fed = Federator(store=SqliteJobStore(Path(":memory:")), lease_seconds=10.0, cycle_interval=0.05)
        fed.submit(spec("a", gpus=8))
        async with job_api(fed) as jobs, agent_stream(fed, features=("logs", "logs-since")) as agent:
            pid, _ = await _placed(fed, agent)
            stream = jobs.FollowLogs(jobs_pb2.FollowLogsRequest(job_id="a", replica=0), timeout=A_WHILE)
            first = (await agent.read()).logs
            assert (first.placement_id, first.replica, first.tail_lines, first.timestamps, first.since_time) == \
                (pid, 0, 10, True, "")
            same = "2026-12-06T10:00:05.123456789Z"
            await agent.send(agent_pb2.AgentMessage(logs=agent_pb2.LogsReply(request_id=first.request_id, logs=[
                agent_pb2.ReplicaLog(replica=0, pod="a-0", container="main", text=_dated(
                    ("2026-12-06T10:00:04.5Z", "loss 0.9"), (same, "loss 0.8"), (same, "loss 0.8")))])))
            told = await stream.read()
            assert [(x.replica, x.pod, x.text) for x in told.logs] == [(0, "a-0", "loss 0.9\nloss 0.8\nloss 0.8\n")]
            second = (await agent.read()).logs
            assert (second.tail_lines, second.timestamps, second.since_time) == (10_000, True, "2026-12-06T10:00:05Z")
            await agent.send(agent_pb2.AgentMessage(logs=agent_pb2.LogsReply(request_id=second.request_id, logs=[
                agent_pb2.ReplicaLog(replica=0, pod="a-0", container="main", text=_dated(
                    (same, "loss 0.8"), (same, "loss 0.8"), (same, "loss 0.7"),
                    ("2026-12-06T10:00:05.2+00:00", "loss 0.6")) + "a line with no date\n")])))
            told = await stream.read()
            assert [x.text for x in told.logs] == ["loss 0.7\nloss 0.6\n"]
            third = (await agent.read()).logs
            assert third.since_time == "2026-12-06T10:00:05Z"
            # lost lines: the agent cut its answer and the cursor's line is not in it
            await agent.send(agent_pb2.AgentMessage(logs=agent_pb2.LogsReply(request_id=third.request_id, logs=[
                agent_pb2.ReplicaLog(replica=0, pod="a-0", container="main", truncated=True,
                                     text=_dated(("2026-12-06T10:00:09Z", "loss 0.1")))])))
            told = await stream.read()
            assert [(x.text, x.truncated) for x in told.logs] == [("loss 0.1\n", True)]
            stream.cancel()
        await until(lambda: _follows(fed) == 0.0)

        fed = Federator(store=SqliteJobStore(Path(":memory:")), lease_seconds=10.0, cycle_interval=0.05)
        fed.submit(spec("b", gpus=8))
        async with job_api(fed) as jobs, agent_stream(fed, features=("logs",)) as agent:  # an agent before 0.15
            pid, _ = await _placed(fed, agent)
            stream = jobs.FollowLogs(jobs_pb2.FollowLogsRequest(job_id="b"), timeout=A_WHILE)
            told = await stream.read()
            assert [(e.cluster, e.placement_id) for e in told.errors] == [("east-1", pid)]
            assert told.errors[0].message.startswith('cluster east-1 cannot follow logs (its agent lists no '
                                                     '"logs-since" feature')
            stream.cancel()

    run(go)


def _refusal(err: grpc.aio.AioRpcError) -> tuple[str, dict[str, str], float]:
    status = rpc_status.from_call(err)
    assert status is not None
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info) and status.details[1].Unpack(retry)
    return info.reason, dict(info.metadata), retry.retry_delay.ToNanoseconds() / 1e9


def test_a_users_follows_are_seated_and_a_loop_of_logs_is_paced() -> None:
    async def go() -> None:
        fed = Federator(store=SqliteJobStore(Path(":memory:")), lease_seconds=10.0, cycle_interval=0.05,
                        limits=Limits(max_log_follows_per_user=1))
        fed.submit(spec("a", gpus=8))
        async with job_api(fed) as jobs, agent_stream(fed, features=("logs", "logs-since")) as agent:
            await _placed(fed, agent)
            held = jobs.FollowLogs(jobs_pb2.FollowLogsRequest(job_id="a"), timeout=A_WHILE)
            asked = (await agent.read()).logs
            await agent.send(agent_pb2.AgentMessage(logs=agent_pb2.LogsReply(request_id=asked.request_id, logs=[
                agent_pb2.ReplicaLog(replica=0, text=_dated(("2026-12-06T10:00:00Z", "hello")))])))
            assert (await held.read()).logs[0].text == "hello\n"
            assert _follows(fed) == 1.0
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.FollowLogs(jobs_pb2.FollowLogsRequest(job_id="a"), timeout=A_WHILE).read()
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert err.value.details().startswith("logs --follow: user 'anonymous' follows 1 jobs' logs, the most "
                                                  "one user may (1, --max-log-follows-per-user)")
            assert _refusal(err.value) == ("LOG_FOLLOWS_FULL", {"limit": "user"}, 10.0)
            held.cancel()
            await until(lambda: _follows(fed) == 0.0)

            for request in (jobs_pb2.FollowLogsRequest(job_id="a", tail_lines=10_001),
                            jobs_pb2.FollowLogsRequest(job_id="a", replica=-2)):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await jobs.FollowLogs(request, timeout=A_WHILE).read()
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

            async def logs() -> None:
                call = asyncio.ensure_future(jobs.Logs(jobs_pb2.JobLogsRequest(job_id="a"), timeout=A_WHILE))
                while True:  # the ended follow's last dated ask may come first: not this call's
                    body = await agent.read()
                    if body.WhichOneof("body") == "logs" and not body.logs.timestamps:
                        break
                await agent.send(agent_pb2.AgentMessage(logs=agent_pb2.LogsReply(request_id=body.logs.request_id)))
                await call

            for _ in range(log_follow.LOGS_BURST):
                await logs()
            with pytest.raises(grpc.aio.AioRpcError) as err:  # refused before any member is asked
                await jobs.Logs(jobs_pb2.JobLogsRequest(job_id="a"), timeout=A_WHILE)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            reason, metadata, delay = _refusal(err.value)
            assert reason == "LOGS_RATE" and 0 < delay <= log_follow.LOGS_EVERY_SECONDS
            assert "follow the output: federator logs --follow" in err.value.details()

    run(go)


def test_rate_and_seats_alone() -> None:
    now = [0.0]
    rate = log_follow.LogsRate(burst=2, every=2.0, clock=lambda: now[0])
    assert rate.take("alice") is None and rate.take("alice") is None
    refused = rate.take("alice")
    assert refused is not None and refused.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert rate.take("bob") is None  # each user their own
    now[0] = 2.0
    assert rate.take("alice") is None and rate.take("alice") is not None
    seats = log_follow.FollowSeats(per_user=0, in_all=2)
    assert seats.take("a") is None and seats.take("b") is None
    full = seats.take("c")
    assert full is not None and "its limit is 2 (--max-log-follows)" in full.details
    seats.give_back("a")
    seats.give_back("a")  # never held twice: nothing more freed
    assert seats.total == 1 and seats.take("c") is None


def test_a_follow_ends_at_its_bound_saying_so_and_how_to_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_follow, "FOLLOW_BOUND_SECONDS", 0.0)  # 24 h, reached at the first read

    async def go() -> list[jobs_pb2.FollowLogsMessage]:
        fed = Federator(store=SqliteJobStore(Path(":memory:")), lease_seconds=10.0, cycle_interval=0.05)
        fed.submit(spec("a", gpus=8))
        async with job_api(fed) as jobs, agent_stream(fed, features=("logs", "logs-since")) as agent:
            await _placed(fed, agent)
            stream = jobs.FollowLogs(jobs_pb2.FollowLogsRequest(job_id="a"), timeout=A_WHILE)
            asked = (await agent.read()).logs
            await agent.send(agent_pb2.AgentMessage(logs=agent_pb2.LogsReply(request_id=asked.request_id, logs=[
                agent_pb2.ReplicaLog(replica=0, text=_dated(("2026-12-06T10:00:00Z", "last words")))])))
            got = [m async for m in stream]
            assert await stream.code() == grpc.StatusCode.OK  # ended, not failed
            await until(lambda: _follows(fed) == 0.0)
            return got

    got: list[jobs_pb2.FollowLogsMessage] = []

    async def kept() -> None:
        got.extend(await go())

    run(kept)  # the guard's runner wants a coroutine function returning None
    (only,) = got
    assert only.logs[0].text == "last words\n"  # the lines of the last read come with the end
    assert only.ended == "the follow's bound of 0s passed: follow again to go on"
    assert only.end == jobs_pb2.FOLLOW_END_BOUND  # not the job's end


async def _answer(agent: object, request: agent_pb2.LogsRequest, *lines: tuple[str, str], error: str = "") -> None:
    logs = [agent_pb2.ReplicaLog(replica=0, pod="a-0", container="main", text=_dated(*lines))] if lines else []
    await agent.send(agent_pb2.AgentMessage(logs=agent_pb2.LogsReply(  # type: ignore[attr-defined]
        request_id=request.request_id, logs=logs, error=error)))


def _texts(message: jobs_pb2.FollowLogsMessage) -> str:
    return "".join(x.text for x in message.logs)


LINES = [(f"2026-12-06T10:00:0{i}.5Z", f"step {i}") for i in range(1, 10)]


def test_two_followers_of_one_job_share_one_read_a_beat_each_getting_every_line_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """After their first reads (each its own tail), two follows of one job's replica make one LogsRequest a beat
    between them, asked from the older cursor, and both get its new line. Were each polling on its own, the
    scripted agent, answering one request a beat, would leave the other follower without the line: a hang,
    caught by the guard."""
    monkeypatch.setattr(log_follow, "FOLLOW_POLL_SECONDS", 0.3)  # room for both to wait for one beat

    async def go() -> None:
        fed = Federator(store=SqliteJobStore(Path(":memory:")), lease_seconds=10.0, cycle_interval=0.05)
        fed.submit(spec("a", gpus=8))
        async with job_api(fed) as jobs, agent_stream(fed, features=("logs", "logs-since")) as agent:
            pid, _ = await _placed(fed, agent)
            one = jobs.FollowLogs(jobs_pb2.FollowLogsRequest(job_id="a", replica=0), timeout=A_WHILE)
            two = jobs.FollowLogs(jobs_pb2.FollowLogsRequest(job_id="a", replica=0, tail_lines=1), timeout=A_WHILE)
            firsts = [(await agent.read()).logs for _ in range(2)]  # each follow's own first read, its own tail
            assert sorted(r.tail_lines for r in firsts) == [1, 10] and {r.since_time for r in firsts} == {""}
            for r in firsts:
                await _answer(agent, r, LINES[0])
            assert [_texts(await one.read()), _texts(await two.read())] == ["step 1\n", "step 1\n"]
            for i in range(1, 4):
                beat = (await agent.read()).logs
                assert (beat.placement_id, beat.replica, beat.since_time) == (pid, 0, f"2026-12-06T10:00:0{i}Z")
                await _answer(agent, beat, *LINES[i - 1:i + 1])  # as sinceTime does: from the cursor's second on
                got = await asyncio.wait_for(asyncio.gather(one.read(), two.read()), A_WHILE)
                assert [_texts(m) for m in got] == [f"step {i + 1}\n"] * 2
                assert not any(m.errors for m in got)
            one.cancel()
            two.cancel()
        await until(lambda: _follows(fed) == 0.0)

    run(go)


def test_a_busy_agent_skips_a_beat_and_the_follower_still_gets_every_line_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An agent answering "busy" (its waiting room full) is not news to the user: the beat is skipped, the cursor
    stays, and the next read asks from the last line seen, so the lines of the skipped beat come next, once.
    Busy beats in a row past FOLLOW_BUSY_TOLD_AFTER are told, once, and the follow goes on."""
    monkeypatch.setattr(log_follow, "FOLLOW_BUSY_TOLD_AFTER", 3)
    busy = "busy: 64 logs requests are being read; ask again"

    async def go() -> None:
        fed = Federator(store=SqliteJobStore(Path(":memory:")), lease_seconds=10.0, cycle_interval=0.05)
        fed.submit(spec("a", gpus=8))
        async with job_api(fed) as jobs, agent_stream(fed, features=("logs", "logs-since")) as agent:
            pid, _ = await _placed(fed, agent)
            stream = jobs.FollowLogs(jobs_pb2.FollowLogsRequest(job_id="a", replica=0), timeout=A_WHILE)
            await _answer(agent, (await agent.read()).logs, LINES[0])
            assert _texts(await stream.read()) == "step 1\n"
            await _answer(agent, (await agent.read()).logs, error=busy)  # a beat skipped
            again = (await agent.read()).logs
            assert again.since_time == "2026-12-06T10:00:01Z"  # from the last line seen
            await _answer(agent, again, *LINES[:3])
            told = await stream.read()  # the next message: the skipped beat's line and this one's, no error
            assert (_texts(told), list(told.errors)) == ("step 2\nstep 3\n", [])
            for _ in range(3):  # busy for FOLLOW_BUSY_TOLD_AFTER beats in a row: said once
                await _answer(agent, (await agent.read()).logs, error=busy)
            told = await stream.read()
            assert [(e.placement_id, e.message) for e in told.errors] == [(pid, f"cluster east-1: {busy}")]
            assert not told.logs and not told.ended  # the follow goes on
            await _answer(agent, (await agent.read()).logs, error=busy)  # said already: not again
            last = (await agent.read()).logs
            assert last.since_time == "2026-12-06T10:00:03Z"
            await _answer(agent, last, *LINES[2:5])
            told = await stream.read()
            assert (_texts(told), list(told.errors)) == ("step 4\nstep 5\n", [])
            stream.cancel()
        await until(lambda: _follows(fed) == 0.0)

    run(go)


def test_a_busy_answer_to_the_read_after_the_jobs_end_is_read_again_not_the_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The read after a job's end is its last lines' only chance: a "busy" answer to it does not end the follow
    with them unread (there is no next beat to bring them); it is read again, and the follow ends with them."""
    monkeypatch.setattr(log_follow, "FOLLOW_BUSY_TOLD_AFTER", 3)
    busy = "busy: 64 logs requests are being read; ask again"

    async def go() -> None:
        fed = Federator(store=SqliteJobStore(Path(":memory:")), lease_seconds=10.0, cycle_interval=0.05)
        fed.submit(spec("a", gpus=8))
        async with job_api(fed) as jobs, agent_stream(fed, features=("logs", "logs-since")) as agent:
            await _placed(fed, agent)

            async def asked() -> agent_pb2.LogsRequest:
                while (message := await agent.read()).WhichOneof("body") != "logs":  # a Cancel, once it ended
                    pass
                return message.logs

            stream = jobs.FollowLogs(jobs_pb2.FollowLogsRequest(job_id="a", replica=0), timeout=A_WHILE)
            await _answer(agent, await asked(), LINES[0])
            assert _texts(await stream.read()) == "step 1\n"
            beat = await asked()  # asked while the job ran
            (job_id,) = fed.jobs
            fed.cancel(job_id)
            await _answer(agent, beat, error=busy)
            await _answer(agent, await asked(), error=busy)  # the read after its end: busy, skipped
            ending, again = asyncio.ensure_future(stream.read()), asyncio.ensure_future(asked())
            await asyncio.wait({ending, again}, timeout=A_WHILE, return_when=asyncio.FIRST_COMPLETED)
            assert again.done() and not ending.done()  # read again, not ended without its last lines
            last = again.result()
            assert last.since_time == "2026-12-06T10:00:01Z"  # from the last line passed on
            await _answer(agent, last, *LINES[:3])
            told = await asyncio.wait_for(ending, A_WHILE)
            assert (_texts(told), told.end, list(told.errors)) == ("step 2\nstep 3\n", jobs_pb2.FOLLOW_END_JOB_ENDED,
                                                                   [])
        await until(lambda: _follows(fed) == 0.0)

    run(go)
