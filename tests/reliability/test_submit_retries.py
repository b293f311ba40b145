"""The CLI's submit retries: a lost reply is retried with the same request id and makes one job.

An in-process federator over a real loopback socket whose JobService stores
the job and then loses the reply (UNAVAILABLE or DEADLINE_EXCEEDED, as a crash
or a slow network would), so the client's side of the contract is checked
without timing luck. The same contract under a real SIGKILL is in
test_faults.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from reliability_support import job, serving

from federator.api.v1 import jobs_pb2
from federator.cli.submit_calls import submit_specs
from federator.security.tls import ClientOptions
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore


class LossyJobService(JobService):
    """Stores each submission for real, then loses the first `lose` replies with `code`."""

    def __init__(self, fed: Federator, *, lose: int, code: grpc.StatusCode) -> None:
        super().__init__(fed)
        self.lose = lose
        self.code = code
        self.request_ids: list[str] = []

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802 - gRPC method name
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        self.request_ids.append(request.request_id)
        reply = await super().Submit(request, context)
        if self.lose > 0:
            self.lose -= 1
            await context.abort(self.code, "the reply was lost")
        return reply


@asynccontextmanager
async def lossy(*, lose: int, code: grpc.StatusCode) -> AsyncIterator[tuple[LossyJobService, ClientOptions]]:
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0)
    service = LossyJobService(fed, lose=lose, code=code)
    async with serving(service) as target:
        yield service, target


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED],
                         ids=["unavailable", "deadline-exceeded"])
def test_a_lost_reply_is_retried_with_the_same_request_id_and_makes_one_job(code: grpc.StatusCode) -> None:
    async def go() -> None:
        async with lossy(lose=2, code=code) as (service, target):
            specs = [job("first"), job("second")]
            got = await asyncio.to_thread(submit_specs, target, specs, max_backoff=0.2)
            assert [j.spec.name for j in got] == ["first", "second"]
            jobs = service.fed.list_jobs()
            assert [j.job_id for j in jobs] == [j.job_id for j in got]  # one job per spec, the ones the client saw
            first, second = service.request_ids[:3], service.request_ids[3:]
            assert len(set(first)) == 1 and len(first) == 3  # two lost replies, then the answer: one id
            assert len(second) == 1 and second[0] not in first  # each spec its own id

    asyncio.run(go())


def test_a_refusal_is_not_retried_and_retries_give_up_after_the_attempts() -> None:
    async def go() -> None:
        async with lossy(lose=0, code=grpc.StatusCode.UNAVAILABLE) as (service, target):
            service.fed.submit(job("taken"))
            with pytest.raises(grpc.RpcError) as err:
                await asyncio.to_thread(submit_specs, target, [job("taken")], max_backoff=0.2)
            assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS  # type: ignore[attr-defined]
            assert len(service.request_ids) == 1
        async with lossy(lose=10, code=grpc.StatusCode.UNAVAILABLE) as (service, target):
            with pytest.raises(grpc.RpcError) as err:
                await asyncio.to_thread(submit_specs, target, [job("unlucky")], attempts=3, max_backoff=0.2)
            assert err.value.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
            assert len(service.request_ids) == 3 and len(set(service.request_ids)) == 1
            assert len(service.fed.list_jobs()) == 1  # stored once, for all three tries

    asyncio.run(go())
