"""`federator submit` follows the contract for a loaded federator (jobs.proto, "Calling this API"): a call shed
unread (RESOURCE_EXHAUSTED, ErrorInfo BUSY, with a RetryInfo) or dropped unread by gRPC (CANCELLED) is retried with
the same request id, no sooner than the RetryInfo asks; a full pending cap (BACK_PRESSURE) is not retried.

An in-process federator over a real loopback socket whose JobService refuses the first calls as a shedding or
overloaded federator does, before reading them (nothing stored)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import submit_calls
from federator.cli.exit_codes import Exit, for_rpc
from federator.cli.submit_calls import NoAnswer, submit_specs
from federator.security.tls import ClientOptions
from federator.server.errors import Exhausted, exhausted
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from reliability_support import job, serving  # noqa: E402


class BusyJobService(JobService):
    """Refuses the first `refuse` Submits unread with `how`, then serves them."""

    def __init__(self, fed: Federator, *, refuse: int, how: str) -> None:
        super().__init__(fed)
        self.refusals = refuse
        self.how = how
        self.request_ids: list[str] = []

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802 - gRPC method name
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        self.request_ids.append(request.request_id)
        if self.refusals > 0:
            self.refusals -= 1
            if self.how == "cancelled":
                await context.abort(grpc.StatusCode.CANCELLED, "CANCELLED")
            reason = Exhausted.BUSY if self.how == "busy" else Exhausted.BACK_PRESSURE
            await context.abort_with_status(exhausted("too busy to read it", reason, retry_after=0.3))
        return await super().Submit(request, context)


@asynccontextmanager
async def busy(*, refuse: int, how: str) -> AsyncIterator[tuple[BusyJobService, ClientOptions]]:
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0)
    service = BusyJobService(fed, refuse=refuse, how=how)
    async with serving(service) as target:
        yield service, target


@pytest.mark.parametrize("how", ["busy", "cancelled"])
def test_a_call_refused_unread_is_retried_with_the_same_request_id(how: str) -> None:
    async def go() -> None:
        async with busy(refuse=2, how=how) as (service, target):
            got = await asyncio.to_thread(submit_specs, target, [job("first")], max_backoff=0.2)
            assert [j.spec.name for j in got] == ["first"]
            assert [j.job_id for j in service.fed.list_jobs()] == [got[0].job_id]
            assert len(service.request_ids) == 3 and len(set(service.request_ids)) == 1

    asyncio.run(go())


def test_a_full_pending_cap_is_not_retried_and_exits_later() -> None:
    async def go() -> None:
        async with busy(refuse=5, how="back-pressure") as (service, target):
            with pytest.raises(grpc.RpcError) as err:
                await asyncio.to_thread(submit_specs, target, [job("first")], max_backoff=0.2)
            assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
            assert len(service.request_ids) == 1 and service.fed.list_jobs() == []
            assert for_rpc(err.value) is Exit.UNAVAILABLE

    asyncio.run(go())


def test_a_federator_that_stays_busy_is_no_answer_naming_the_code_and_exits_later() -> None:
    async def go() -> None:
        async with busy(refuse=100, how="cancelled") as (service, target):
            with pytest.raises(NoAnswer) as err:
                await asyncio.to_thread(submit_specs, target, [job("first")], attempts=3, max_backoff=0.1)
            assert "answered CANCELLED" in str(err.value) and "nothing was stored" in str(err.value)
            assert len(service.request_ids) == 3 and service.fed.list_jobs() == []
            assert for_rpc(err.value) is Exit.UNAVAILABLE

    asyncio.run(go())


def test_the_wait_is_never_shorter_than_the_retry_info_asks() -> None:
    async def go() -> grpc.RpcError:
        async with busy(refuse=1, how="busy") as (_, target):
            channel = grpc.insecure_channel(target.server)
            try:
                await asyncio.to_thread(jobs_pb2_grpc.JobServiceStub(channel).Submit, jobs_pb2.SubmitRequest(),
                                        timeout=10)
            except grpc.RpcError as refused:
                return refused
            finally:
                channel.close()
        raise AssertionError("not refused")

    refused = asyncio.run(go())
    assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and submit_calls.transient(refused)  # type: ignore[attr-defined]
    assert submit_calls.asked_delay(refused) == pytest.approx(0.3)
    wait = submit_calls._Backoff(0.01)
    outcome = SimpleNamespace(exception=lambda: refused)
    waits = [wait(SimpleNamespace(outcome=outcome, attempt_number=n)) for n in (1, 2, 3)]  # type: ignore[arg-type]
    assert all(w >= 0.3 for w in waits), waits
