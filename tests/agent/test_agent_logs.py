"""The agent's answers to LogsRequests (agent/logs.py): held to the contract's bounds whatever its backend read,
answered even when nothing can be read (an error, never a silence), and off the stream's reader."""

from __future__ import annotations

import asyncio

import pytest

from federator.agent import logs
from federator.agent.backend import ReplicaOutput
from federator.agent.logs import LogAnswers, bounded, serves_logs
from federator.agent.outbox import Outbox
from federator.api.v1 import agent_pb2
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend

FLEET = parse_fleet({"clusters": [{"name": "east-1", "region": "east", "nodes": [
    {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})


class Chatty(SimBackend):
    """A backend that reads far more than it was asked for: the agent must not pass it on."""

    async def logs(self, placement_id: str, replica: int, container: str, tail_lines: int,
                   limit_bytes: int) -> list[ReplicaOutput] | str:
        return [ReplicaOutput(i, f"p-{i}", "main", "x" * 10_000 + f"end {i}\n") for i in range(300)]


class Stuck(SimBackend):
    async def logs(self, placement_id: str, replica: int, container: str, tail_lines: int,
                   limit_bytes: int) -> list[ReplicaOutput] | str:
        await asyncio.Event().wait()
        return []


def _answers(outbox: Outbox) -> list[agent_pb2.LogsReply]:
    out = []
    while not outbox.queue.empty():
        msg = outbox.queue.get_nowait()
        assert msg is not None and msg.WhichOneof("body") == "logs"
        out.append(msg.logs)
    return out


def test_the_reply_is_held_to_limit_bytes_and_256_replica_logs_whatever_the_backend_read() -> None:
    async def go() -> list[agent_pb2.LogsReply]:
        outbox = Outbox()
        answers = LogAnswers(Chatty(FLEET["east-1"]), outbox, serve=True)
        answers.take(agent_pb2.LogsRequest(request_id="r1", placement_id="p", replica=-1, tail_lines=10,
                                           limit_bytes=2560))
        while outbox.queue.empty():
            await asyncio.sleep(0.01)
        return _answers(outbox)

    (reply,) = asyncio.run(go())
    assert reply.request_id == "r1" and len(reply.logs) == 256
    assert sum(len(x.text.encode()) for x in reply.logs) <= 2560
    assert all(x.truncated and x.text.endswith(f"end {x.replica}\n") for x in reply.logs)


def test_no_logs_drops_the_feature_and_a_request_sent_anyway_is_answered_with_why() -> None:
    backend = SimBackend(FLEET["east-1"])
    assert serves_logs(backend, True) and not serves_logs(backend, False)

    async def go() -> list[agent_pb2.LogsReply]:
        outbox = Outbox()
        LogAnswers(backend, outbox, serve=False).take(agent_pb2.LogsRequest(request_id="r2", placement_id="p"))
        return _answers(outbox)

    (reply,) = asyncio.run(go())
    assert (reply.request_id, list(reply.logs)) == ("r2", [])
    assert reply.error == "this agent does not serve logs (its operator runs it with --no-logs)"


def test_past_64_requests_being_read_the_next_is_answered_busy_at_once() -> None:
    async def go() -> list[agent_pb2.LogsReply]:
        outbox = Outbox()
        answers = LogAnswers(Stuck(FLEET["east-1"]), outbox, serve=True)
        for i in range(65):
            answers.take(agent_pb2.LogsRequest(request_id=f"r{i}", placement_id="p", tail_lines=1, limit_bytes=1))
        got = _answers(outbox)
        for task in list(answers._tasks):
            task.cancel()
        await asyncio.sleep(0)
        return got

    (reply,) = asyncio.run(go())
    assert reply.request_id == "r64" and reply.error.startswith("busy: 64 logs requests are being read")


def test_bounded_keeps_each_texts_end_within_an_even_share() -> None:
    logs = bounded([ReplicaOutput(0, "a", "c", "old\n" * 100 + "new\n"), ReplicaOutput(1, "b", "c", "short\n")], 40)
    assert [len(x.text.encode()) <= 20 for x in logs] == [True, True]
    assert logs[0].text.endswith("new\n") and logs[0].truncated and not logs[1].truncated


class TailsOnly:
    """A backend that reads tails but does not date its lines (a third party's): no "logs-since"."""

    async def logs(self, placement_id: str, replica: int, container: str, tail_lines: int,
                   limit_bytes: int) -> list[ReplicaOutput] | str:
        return []


def test_a_follows_read_needs_a_backend_that_dates_lines_and_a_since_time_that_parses() -> None:
    from federator.agent.logs import follows_logs, since_of

    assert follows_logs(SimBackend(FLEET["east-1"]), True) and not follows_logs(SimBackend(FLEET["east-1"]), False)
    assert not follows_logs(TailsOnly(), True)  # type: ignore[arg-type]
    assert since_of("") is None and since_of("2026-12-06T10:00:05Z") == 1796551205.0
    assert since_of("2026-12-06T10:00:05.9+00:00") == 1796551205.0  # whole seconds, as Kubernetes' sinceTime

    async def go() -> list[agent_pb2.LogsReply]:
        outbox = Outbox()
        LogAnswers(TailsOnly(), outbox, serve=True).take(  # type: ignore[arg-type]
            agent_pb2.LogsRequest(request_id="r1", placement_id="p", timestamps=True))
        LogAnswers(SimBackend(FLEET["east-1"]), outbox, serve=True).take(
            agent_pb2.LogsRequest(request_id="r2", placement_id="p", timestamps=True, since_time="yesterday"))
        LogAnswers(SimBackend(FLEET["east-1"]), outbox, serve=True).take(
            agent_pb2.LogsRequest(request_id="r3", placement_id="p", timestamps=True, since_time="2026-12-06T10:00"))
        while outbox.queue.qsize() < 3:
            await asyncio.sleep(0.01)
        return _answers(outbox)

    cannot, bad, zoneless = asyncio.run(go())
    assert cannot.error.startswith('this agent cannot follow logs (its backend does not date its lines: it lists no '
                                   '"logs-since" feature)')
    assert bad.error == "since_time: not an RFC 3339 time: 'yesterday'"
    assert zoneless.error == "since_time: an RFC 3339 time needs its zone (Z), got '2026-12-06T10:00'"


def test_a_read_that_never_answers_is_answered_with_an_error_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reply must reach the federator before its deadline: a read still going at READ_SECONDS is given up."""
    monkeypatch.setattr(logs, "READ_SECONDS", 0.05)

    async def go() -> list[agent_pb2.LogsReply]:
        outbox = Outbox()
        answers = LogAnswers(Stuck(FLEET["east-1"]), outbox, serve=True)
        answers.take(agent_pb2.LogsRequest(request_id="r9", placement_id="p-9", tail_lines=1, limit_bytes=1))
        await asyncio.wait(list(answers._tasks))
        return _answers(outbox)

    (reply,) = asyncio.run(go())
    assert (reply.request_id, list(reply.logs)) == ("r9", [])
    assert reply.error == "reading the output of placement p-9 took over 0.05s"
