"""The federator's gRPC server (server/grpc_server.py): a flood of job API calls waits in its own method's queue
in gRPC core, so that agents' Connect streams and Watches are still taken up while the loop is saturated.

Soak finding S3: on a loop whose every turn is long, grpc.aio takes each method's next call up a few turns at a
time. A real server built by build_server on loopback, its loop held 20 ms a turn (bench/loop_hog's hog) on a
thread of its own, the client a plain grpc channel on the test's thread: what is asserted is an order (how many
Submits were taken up before the Watch and the Connect were answered), not a time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from federator.api.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    identity_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    queues_pb2_grpc,
    types_pb2,
    usage_pb2_grpc,
)
from federator.metrics import Metrics
from federator.server.grpc_server import build_server

FLOOD = 200  # Submits sent at once
HOG_SECONDS = 0.02  # each turn of the server's loop held this long


class _Jobs(jobs_pb2_grpc.JobServiceServicer):
    def __init__(self) -> None:
        self.taken = 0  # Submits taken up (the handler ran)

    async def Submit(self, request: Any, context: Any) -> jobs_pb2.SubmitResponse:  # noqa: N802
        self.taken += 1
        return jobs_pb2.SubmitResponse()

    async def Watch(self, request: Any, context: Any) -> AsyncIterator[types_pb2.Job]:  # noqa: N802
        yield types_pb2.Job()


class _Agents(agent_pb2_grpc.AgentServiceServicer):
    async def Connect(self, request_iterator: Any, context: Any) -> AsyncIterator[agent_pb2.FederatorMessage]:  # noqa: N802
        async for _hello in request_iterator:
            yield agent_pb2.FederatorMessage()
            return


@contextmanager
def _hogged_server(jobs: _Jobs) -> Iterator[str]:
    """build_server's server with the fakes, on a loop of its own whose every turn lasts HOG_SECONDS."""
    started: dict[str, Any] = {}
    ready = threading.Event()

    async def serve() -> None:
        server = build_server(Metrics(), max_message_bytes=4 << 20)
        jobs_pb2_grpc.add_JobServiceServicer_to_server(jobs, server)
        agent_pb2_grpc.add_AgentServiceServicer_to_server(_Agents(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        stop = asyncio.Event()
        started.update(target=f"127.0.0.1:{port}", stop=stop, loop=asyncio.get_running_loop())
        ready.set()

        async def hog() -> None:
            while not stop.is_set():
                time.sleep(HOG_SECONDS)  # a saturated loop: no turn shorter than this
                await asyncio.sleep(0)

        hogging = asyncio.ensure_future(hog())
        await stop.wait()
        await hogging
        await server.stop(None)

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    try:
        assert ready.wait(30)
        yield str(started["target"])
    finally:
        started["loop"].call_soon_threadsafe(started["stop"].set)
        thread.join(60)


def _until(predicate: Callable[[], bool], *, tries: int = 3000) -> None:
    for _ in range(tries):
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("never happened")


def test_a_flood_of_submits_waits_in_its_own_queue_and_agents_and_watches_are_still_taken_up() -> None:
    jobs = _Jobs()
    with _hogged_server(jobs) as target, grpc.insecure_channel(target) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        flood = [stub.Submit.future(jobs_pb2.SubmitRequest(), timeout=600) for _ in range(FLOOD)]
        _until(lambda: jobs.taken >= 1)  # the flood is at the server, waiting to be taken up
        watch = stub.Watch(jobs_pb2.WatchJobsRequest(), timeout=600)
        next(watch)
        taken_before_watch = jobs.taken
        watch.cancel()
        hello = agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster="east-1", region="r"))
        connect = agent_pb2_grpc.AgentServiceStub(channel).Connect(iter([hello]), timeout=600)
        next(connect)
        taken_before_connect = jobs.taken
        connect.cancel()
        for call in flood:
            call.cancel()
    # Taken up a call at a time behind the flood, each would have waited for most of it
    assert taken_before_watch < FLOOD // 2
    assert taken_before_connect < FLOOD // 2


class _Registrations:
    """A stand-in server that records what the generated add_*Servicer_to_server functions register."""

    def __init__(self) -> None:
        self.registered: set[str] = set()

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, object]) -> None:
        self.registered |= {f"{service}/{method}" for method in handlers}


@pytest.mark.parametrize("add, servicer, service", [
    (agent_pb2_grpc.add_AgentServiceServicer_to_server, agent_pb2_grpc.AgentServiceServicer(),
     agent_pb2.DESCRIPTOR.services_by_name["AgentService"]),
    (jobs_pb2_grpc.add_JobServiceServicer_to_server, jobs_pb2_grpc.JobServiceServicer(),
     jobs_pb2.DESCRIPTOR.services_by_name["JobService"]),
    (jobs_pb2_grpc.add_ClusterServiceServicer_to_server, jobs_pb2_grpc.ClusterServiceServicer(),
     jobs_pb2.DESCRIPTOR.services_by_name["ClusterService"]),
    (usage_pb2_grpc.add_UsageServiceServicer_to_server, usage_pb2_grpc.UsageServiceServicer(), None),
    (identity_pb2_grpc.add_IdentityServiceServicer_to_server, identity_pb2_grpc.IdentityServiceServicer(), None),
    (queues_pb2_grpc.add_QueueServiceServicer_to_server, queues_pb2_grpc.QueueServiceServicer(), None),
    (health_pb2_grpc.add_HealthServicer_to_server, health_pb2_grpc.HealthServicer(),
     health_pb2.DESCRIPTOR.services_by_name["Health"]),
], ids=["agent", "jobs", "clusters", "usage", "identity", "queues", "health"])
def test_every_method_served_is_registered_with_grpc_core(add: Any, servicer: object, service: Any) -> None:
    """A method only added as a generic handler shares one queue with every other such method: a Submit flood
    would hold a cluster's Connect (stubs generated by an old grpcio-tools, or a hand-made handler)."""
    server = _Registrations()
    add(servicer, server)
    assert server.registered
    if service is not None:
        assert server.registered == {f"{service.full_name}/{m.name}" for m in service.methods}
