"""`federator watch` reads the stream by WatchBatches (soak S7: a 30,000-job snapshot one Job a message took a
loaded federator 10 minutes), and by Watch from a federator older than 0.18.0, which answers WatchBatches
UNIMPLEMENTED: the same jobs in the same order either way. A real federator on a loopback socket."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

import grpc

from federator.api.features import FEATURES, JOBS_WATCH_BATCHES
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli.watch import watched
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

from builders import job


class CountingJobService(JobService):
    """Counts the streams opened; `old` answers WatchBatches as a federator older than 0.18.0 does."""

    def __init__(self, fed: Federator, *, old: bool) -> None:
        super().__init__(fed, Authenticator(insecure=True))
        self.old = old
        self.opened: list[str] = []

    async def WatchBatches(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802 - gRPC name
        self.opened.append("WatchBatches")
        if self.old:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        async for batch in super().WatchBatches(request, context):
            yield batch

    async def Watch(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802 - gRPC name
        self.opened.append("Watch")
        async for one in super().Watch(request, context):
            yield one


@contextmanager
def serving(*, old: bool, jobs: int) -> Iterator[tuple[CountingJobService, str]]:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    for i in range(jobs):
        fed.submit(job(f"j{i:03d}", gpus=1))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    service = CountingJobService(fed, old=old)

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        jobs_pb2_grpc.add_JobServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield service, f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        fed.store.close()


def _snapshot(address: str, count: int) -> list[str]:
    with grpc.insecure_channel(address) as channel:
        stream = watched(jobs_pb2_grpc.JobServiceStub(channel), jobs_pb2.WatchJobsRequest(send_bookmarks=True))
        return ["bookmark" if j.bookmark else j.spec.name for j in islice(stream, count)]


def test_watch_reads_the_snapshot_in_batches_from_a_new_federator() -> None:
    with serving(old=False, jobs=300) as (service, address):
        got = _snapshot(address, 301)
    assert got == [f"j{i:03d}" for i in range(300)] + ["bookmark"]
    assert service.opened == ["WatchBatches"]
    assert JOBS_WATCH_BATCHES in FEATURES


def test_watch_falls_back_to_watch_when_the_federator_is_older() -> None:
    with serving(old=True, jobs=300) as (service, address):
        got = _snapshot(address, 301)
    assert got == [f"j{i:03d}" for i in range(300)] + ["bookmark"]
    assert service.opened == ["WatchBatches", "Watch"]
