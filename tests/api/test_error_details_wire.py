"""The error details jobs.proto promises, read off real gRPC over loopback as a client in another language reads them.

"Calling this API" in jobs.proto tells a client to branch on data, not on words: a RESOURCE_EXHAUSTED carries a
google.rpc.ErrorInfo (domain federator.io) whose reason says which of its meanings it is, back-pressure a
RetryInfo as well; every INVALID_ARGUMENT, Usage's too, a google.rpc.BadRequest whose descriptions do not repeat
the field they are about (outside QA, portal M3 and m3).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from federator.accounting import SqliteUsageStore
from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, usage_pb2, usage_pb2_grpc
from federator.jobfile import parse_job
from federator.security.limits import Limits
from federator.server.federator import Federator
from federator.server.services import ClusterService, JobService
from federator.server.usage_service import UsageService
from federator.store import SqliteJobStore


def _spec(name: str, *, kind: str = "training", **annotations: str) -> jobs_pb2.SubmitRequest:
    job = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                     "metadata": {"name": name, "annotations": annotations},
                     "spec": {"kind": kind, "replicas": 1, "resources": {"cpu": "1", "memory": "1Gi"}}})
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(job))


@asynccontextmanager
async def _served(tmp_path: Path, limits: Limits | None = None) -> AsyncIterator[tuple[Federator, grpc.aio.Channel]]:
    fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), limits=limits, report_interval=60.0)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4 * fed.limits.max_message_bytes)])
    jobs = JobService(fed)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(jobs, server)
    jobs_pb2_grpc.add_ClusterServiceServicer_to_server(ClusterService(fed), server)
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageService(jobs, SqliteUsageStore(tmp_path / "u.db")), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            yield fed, ch
    finally:
        await server.stop(0)
        fed.store.close()


def _details(err: grpc.aio.AioRpcError) -> list[Message]:
    """The status details a client decodes from grpc-status-details-bin."""
    status = rpc_status.from_call(err)
    assert status is not None, f"{err.code()} {err.details()!r} carries no google.rpc.Status"
    out: list[Message] = []
    for any_ in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo, error_details_pb2.BadRequest):
            if any_.Is(kind.DESCRIPTOR):
                msg = kind()
                any_.Unpack(msg)
                out.append(msg)
    return out


def _info(err: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    (info,) = [d for d in _details(err) if isinstance(d, error_details_pb2.ErrorInfo)]
    assert info.domain == "federator.io"  # as jobs.proto names it
    return info


def test_an_oversized_submit_says_message_too_large_and_gives_no_retry(tmp_path: Path) -> None:
    """Never retryable as it stands: a client that retried every RESOURCE_EXHAUSTED looped on it for ever."""
    async def main() -> grpc.aio.AioRpcError:
        async with _served(tmp_path, Limits(max_message_bytes=64 << 10)) as (_, ch):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs_pb2_grpc.JobServiceStub(ch).Submit(_spec("big", note="x" * (100 << 10)), timeout=10)
            return err.value

    err = asyncio.run(main())
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _info(err).reason == "MESSAGE_TOO_LARGE"
    assert not [d for d in _details(err) if isinstance(d, error_details_pb2.RetryInfo)]
    assert "retry-after" not in dict(err.trailing_metadata() or ())


def test_back_pressure_says_which_cap_and_when_to_come_back(tmp_path: Path) -> None:
    async def main() -> grpc.aio.AioRpcError:
        async with _served(tmp_path, Limits(max_pending_jobs_per_queue=1, queue_full_retry_seconds=3)) as (_, ch):
            stub = jobs_pb2_grpc.JobServiceStub(ch)
            await stub.Submit(_spec("first"), timeout=10)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Submit(_spec("second"), timeout=10)
            return err.value

    err = asyncio.run(main())
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    info = _info(err)
    assert (info.reason, dict(info.metadata)) == ("BACK_PRESSURE", {"limit": "queue"})
    (retry,) = [d for d in _details(err) if isinstance(d, error_details_pb2.RetryInfo)]
    assert retry.retry_delay.seconds == 3
    assert dict(err.trailing_metadata() or ())["retry-after"] == "3"  # still there for clients that read it


def test_a_watch_that_fell_behind_says_watch_fell_behind(tmp_path: Path) -> None:
    async def main() -> grpc.aio.AioRpcError:
        async with _served(tmp_path) as (fed, ch):
            call = jobs_pb2_grpc.JobServiceStub(ch).Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True), timeout=30)
            stream = call.__aiter__()
            assert (await stream.__anext__()).bookmark  # the (empty) snapshot is sent: the stream is up
            fed.history.size = 3  # the history the federator holds (server/watch_history.py)
            for i in range(5):  # more changes at once than it holds: the stream's place in it is gone
                fed.submit(convert.spec_from_pb(_spec(f"w{i}").spec))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in stream:
                    pass
            return err.value

    err = asyncio.run(main())
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, err
    assert _info(err).reason == "WATCH_FELL_BEHIND"


def test_one_watch_too_many_says_watch_limit(tmp_path: Path) -> None:
    async def main() -> grpc.aio.AioRpcError:
        async with _served(tmp_path, Limits(max_watches_per_user=1)) as (_, ch):
            stub = jobs_pb2_grpc.JobServiceStub(ch)
            first = stub.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True), timeout=30).__aiter__()
            assert (await first.__anext__()).bookmark  # the one stream this user may hold is open
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in stub.Watch(jobs_pb2.WatchJobsRequest(), timeout=30):
                    pass
            return err.value

    err = asyncio.run(main())
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, err
    assert _info(err).reason == "WATCH_LIMIT"


def _violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    (bad,) = [d for d in _details(err) if isinstance(d, error_details_pb2.BadRequest)]
    return [(v.field, v.description) for v in bad.field_violations]


def test_field_violations_do_not_repeat_their_field(tmp_path: Path) -> None:
    """`page_token: page_token: not a token`: List, Scale and ClusterService.List put the whole message in."""
    async def main() -> list[grpc.aio.AioRpcError]:
        async with _served(tmp_path) as (_, ch):
            jobs, clusters = jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.ClusterServiceStub(ch)
            job = (await jobs.Submit(_spec("web", kind="inference"), timeout=10)).job
            calls = [jobs.List(jobs_pb2.ListJobsRequest(page_token="garbage"), timeout=10),
                     jobs.List(jobs_pb2.ListJobsRequest(queue="Bad_Q"), timeout=10),
                     jobs.Scale(jobs_pb2.ScaleJobRequest(job_id=job.job_id, replicas=0), timeout=10),
                     jobs.Scale(jobs_pb2.ScaleJobRequest(job_id=job.job_id, replicas=20_000), timeout=10),
                     clusters.List(jobs_pb2.ListClustersRequest(page_token="garbage"), timeout=10)]
            errors = []
            for call in calls:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call
                errors.append(err.value)
            return errors

    for err in asyncio.run(main()):
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, err
        ((field, description),) = _violations(err)
        assert field in ("page_token", "queue", "replicas"), field
        assert not description.startswith((f"{field}:", f"spec.{field}:")), (field, description)
        assert field in (err.details() or ""), "the message still names the field in words"


@pytest.mark.parametrize(("request_", "fields"), [
    (usage_pb2.UsageRequest(by="colour"), ["by"]),
    (usage_pb2.UsageRequest(since=100.0, until=50.0), ["until"]),
    (usage_pb2.UsageRequest(since=-1.0, until=float("inf")), ["since", "until"]),
], ids=["by", "until-before-since", "not-finite"])
def test_usage_refusals_carry_field_violations_as_the_job_api_does(
        tmp_path: Path, request_: usage_pb2.UsageRequest, fields: list[str]) -> None:
    async def main() -> grpc.aio.AioRpcError:
        async with _served(tmp_path) as (_, ch):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await usage_pb2_grpc.UsageServiceStub(ch).Get(request_, timeout=10)
            return err.value

    err = asyncio.run(main())
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = _violations(err)
    assert [f for f, _ in violations] == fields
    assert all(d and not d.startswith(f"{f}:") for f, d in violations), violations
