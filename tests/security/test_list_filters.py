"""JobService.List's filters and order over real gRPC with mTLS and a tenancy policy (outside QA, portal M6, m3, m5).

A portal shows "my running jobs", "failed jobs of queue X today", "newest first": the server filters under the
caller's visibility, so nothing about jobs the caller may not see shows through the pages, and a page token is
bound to the filter and order it was made for.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from federator.accounting import SqliteUsageStore
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2, usage_pb2, usage_pb2_grpc
from federator.model import JobId
from federator.security.auth import Authenticator, RevocationList
from federator.security.authz import Authorizer, tenancy_from_document
from federator.security.limits import Limits
from federator.security.pki import CertsDir
from federator.security.tls import server_files, user_files
from federator.server.services import ClusterService
from federator.server.usage_service import UsageService
from tests.security.test_tenancy_api import POLICY, certs, client, served, spec  # noqa: F401  (certs: the fixture)

Filter = jobs_pb2.ListJobsFilter
NEWEST = jobs_pb2.LIST_ORDER_NEWEST_FIRST


async def pages(stub: object, request: jobs_pb2.ListJobsRequest, *, between: object = None) -> list[str]:
    out: list[str] = []
    while True:
        reply = await stub.List(request)  # type: ignore[attr-defined]
        out += [j.job_id for j in reply.jobs]
        if not reply.next_page_token:
            return out
        nxt = jobs_pb2.ListJobsRequest()
        nxt.CopyFrom(request)
        nxt.page_token = reply.next_page_token
        request = nxt
        if between is not None:
            await between()  # type: ignore[operator]


def violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(err)
    assert status is not None, err
    detail = error_details_pb2.BadRequest()
    status.details[0].Unpack(detail)
    return {v.field: v.description for v in detail.field_violations}


async def refused(call: object) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
    return violations(err.value)


def test_filters_and_newest_first_give_what_the_caller_may_see_and_nothing_else(certs: CertsDir,  # noqa: F811
                                                                                tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s:
            ids: dict[str, str] = {}
            async with client(s, certs, "alice") as alice, client(s, certs, "bob") as bob, \
                    client(s, certs, "carol") as carol, client(s, certs, "admin") as admin:
                for i in range(6):
                    ids[f"a{i}"] = (await alice.Submit(spec(f"train-a{i}", queue="research" if i % 2 else "open"))
                                    ).job.job_id
                    ids[f"b{i}"] = (await bob.Submit(spec(f"train-b{i}"))).job.job_id  # bob shares nothing
                    ids[f"c{i}"] = (await carol.Submit(spec(f"eval-c{i}", queue="research"))).job.job_id
                await alice.Cancel(jobs_pb2.CancelJobRequest(job_id=ids["a0"]))
                await alice.Cancel(jobs_pb2.CancelJobRequest(job_id=ids["a3"]))
                a = [ids[f"a{i}"] for i in range(6)]
                c = [ids[f"c{i}"] for i in range(6)]
                # alice (team-a with carol) sees hers and carol's; never bob's, whatever the filter
                mine = Filter(owner="alice", phases=[types_pb2.JOB_PHASE_PENDING])
                assert await pages(alice, jobs_pb2.ListJobsRequest(filter=mine, page_size=1)) == \
                    [a[1], a[2], a[4], a[5]]
                assert await pages(alice, jobs_pb2.ListJobsRequest(filter=mine, order=NEWEST, page_size=3)) == \
                    [a[5], a[4], a[2], a[1]]
                assert await pages(alice, jobs_pb2.ListJobsRequest(filter=Filter(owner="bob"))) == []
                assert await pages(alice, jobs_pb2.ListJobsRequest(filter=Filter(name_prefix="train-"),
                                                                   page_size=2)) == a
                def when(j: str) -> float:
                    return s.fed.jobs[JobId(j)].submitted_at

                assert await pages(alice, jobs_pb2.ListJobsRequest(filter=Filter(namespace="research"))) == \
                    sorted([*c, a[1], a[3], a[5]], key=when)
                assert await pages(alice, jobs_pb2.ListJobsRequest(filter=Filter(owner="carol"), order=NEWEST)) == \
                    c[::-1]
                cancelled = Filter(phases=[types_pb2.JOB_PHASE_CANCELLED, types_pb2.JOB_PHASE_FAILED])
                assert await pages(alice, jobs_pb2.ListJobsRequest(queue="research", filter=cancelled)) == [a[3]]
                late = s.fed.jobs[JobId(c[3])].submitted_at
                assert await pages(alice, jobs_pb2.ListJobsRequest(filter=Filter(submitted_since=late))) == \
                    [ids[k] for k in ("c3", "a4", "c4", "a5", "c5")]
                # bob's own filters see only his, and admin everyone's
                assert await pages(bob, jobs_pb2.ListJobsRequest(filter=Filter(name_prefix="train-"),
                                                                 order=NEWEST, page_size=4)) == \
                    [ids[f"b{i}"] for i in range(5, -1, -1)]
                assert len(await pages(admin, jobs_pb2.ListJobsRequest(filter=Filter(name_prefix="train-")))) == 12
                # the response says what was applied, built by the server: a client can tell an old server
                reply = await alice.List(jobs_pb2.ListJobsRequest(filter=mine, order=NEWEST))
                assert reply.applied_filter == mine and reply.applied_order == NEWEST
                plain = await alice.List(jobs_pb2.ListJobsRequest())
                assert plain.applied_filter == Filter() and plain.applied_order == jobs_pb2.LIST_ORDER_OLDEST_FIRST
                assert [j.job_id for j in plain.jobs] == sorted([*a, *c], key=when)

    asyncio.run(main())


def test_pages_under_a_filter_neither_repeat_nor_miss_jobs_while_jobs_change(certs: CertsDir,  # noqa: F811
                                                                             tmp_path: Path) -> None:
    """Alice pages through her pending jobs, newest first and oldest first, while she submits new ones and
    cancels others between pages: every job pending throughout is listed exactly once, in order."""
    async def main() -> None:
        async with served(certs, tmp_path) as s:
            async with client(s, certs, "alice") as alice:
                made = [(await alice.Submit(spec(f"p{i}"))).job.job_id for i in range(30)]
                doomed = iter(made[1::3])
                n = iter(range(1000))

                async def churn() -> None:
                    await alice.Cancel(jobs_pb2.CancelJobRequest(job_id=next(doomed)))
                    await alice.Submit(spec(f"new{next(n)}"))

                for order in (NEWEST, jobs_pb2.LIST_ORDER_OLDEST_FIRST):
                    doomed = iter([j for j in made[1::3] if not s.fed.jobs[JobId(j)].phase.is_terminal])
                    pending = Filter(phases=[types_pb2.JOB_PHASE_PENDING], name_prefix="p")
                    got = await pages(alice, jobs_pb2.ListJobsRequest(filter=pending, order=order, page_size=4),
                                      between=churn)
                    assert len(got) == len(set(got))
                    throughout = [j for j in made if not s.fed.jobs[JobId(j)].phase.is_terminal]
                    assert set(throughout) <= set(got)
                    keys = [(s.fed.jobs[JobId(j)].submitted_at, j) for j in got]
                    assert keys == sorted(keys, reverse=order == NEWEST)

    asyncio.run(main())


def test_a_page_token_is_refused_with_another_filter_or_order_naming_page_token(certs: CertsDir,  # noqa: F811
                                                                                tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s:
            async with client(s, certs, "alice") as alice:
                for i in range(3):
                    await alice.Submit(spec(f"t{i}"))
                first = await alice.List(jobs_pb2.ListJobsRequest(page_size=1, order=NEWEST))
                token = first.next_page_token
                assert token
                for other in (jobs_pb2.ListJobsRequest(page_token=token),
                              jobs_pb2.ListJobsRequest(page_token=token, order=NEWEST, queue="open"),
                              jobs_pb2.ListJobsRequest(page_token=token, order=NEWEST, filter=Filter(owner="alice"))):
                    assert list(await refused(alice.List(other))) == ["page_token"]
                again = await alice.List(jobs_pb2.ListJobsRequest(page_size=1, order=NEWEST, page_token=token))
                assert len(again.jobs) == 1  # the same query reads on
                # phases given in another order are the same filter
                two = [types_pb2.JOB_PHASE_PENDING, types_pb2.JOB_PHASE_RUNNING]
                got = await alice.List(jobs_pb2.ListJobsRequest(page_size=1, filter=Filter(phases=two)))
                await alice.List(jobs_pb2.ListJobsRequest(page_size=1, filter=Filter(phases=two[::-1]),
                                                          page_token=got.next_page_token))

    asyncio.run(main())


def test_bad_filter_values_are_refused_naming_each_field(certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    async def main() -> None:
        async with served(certs, tmp_path) as s:
            async with client(s, certs, "alice") as alice:
                bad = jobs_pb2.ListJobsRequest(queue="Bad_Q", order=7, filter=Filter(
                    phases=[types_pb2.JOB_PHASE_RUNNING, 0, 42], owner="x" * 300, namespace="No",
                    name_prefix="p" * 254, submitted_since=float("nan")))
                got = await refused(alice.List(bad))
                assert set(got) == {"queue", "order", "filter.phases[1]", "filter.phases[2]", "filter.owner",
                                    "filter.namespace", "filter.name_prefix", "filter.submitted_since"}
                assert "JOB_PHASE_PENDING" in got["filter.phases[2]"] and "42" in got["filter.phases[2]"]
                assert "253" in got["filter.name_prefix"]
                assert not any(d.startswith(f"{f}:") for f, d in got.items())  # the field said once
                assert "lower-case letters" in (await refused(alice.List(jobs_pb2.ListJobsRequest(
                    filter=Filter(name_prefix="Train")))))["filter.name_prefix"]
                assert list(await refused(alice.List(jobs_pb2.ListJobsRequest(page_token="x!")))) == ["page_token"]

    asyncio.run(main())


def test_a_page_stays_under_max_message_bytes_so_a_client_may_set_its_limit_from_the_proto(
        certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    """A page of 7 jobs was 1.85 MB against a stated 1 MiB limit (outside QA, portal m5): a client whose receive
    limit is --max-message-bytes now reads every page of jobs that each fit in it."""
    limit = 256 * 1024
    big = "x" * 60_000

    async def main() -> None:
        async with served(certs, tmp_path, limits=Limits(max_message_bytes=limit)) as s:
            async with client(s, certs, "alice") as alice:
                for i in range(12):
                    await alice.Submit(jobs_pb2.SubmitRequest(spec=_with_annotation(spec(f"big{i}"), big)))
            ch = grpc.aio.secure_channel(s.target, user_files(certs, "alice").channel_credentials(),
                                         options=[("grpc.max_receive_message_length", limit)])
            async with ch:
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                request = jobs_pb2.ListJobsRequest()
                seen = 0
                while True:
                    reply = await stub.List(request)
                    assert reply.ByteSize() <= limit
                    seen += len(reply.jobs)
                    if not reply.next_page_token:
                        break
                    request = jobs_pb2.ListJobsRequest(page_token=reply.next_page_token)
                assert seen == 12

    asyncio.run(main())


def _with_annotation(request: jobs_pb2.SubmitRequest, value: str) -> jobs_pb2.JobSpec:
    pb = jobs_pb2.SubmitRequest()
    pb.CopyFrom(request)
    pb.spec.annotations["example.com/blob"] = value
    return pb.spec


def test_usage_refuses_a_bad_queue_as_list_does(certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    """Usage of queue 'Bad_Q' was an empty report, total 0: a typo read as zero spend (outside QA, portal m3)."""
    async def main() -> None:
        async with served(certs, tmp_path) as s:
            server = grpc.aio.server()
            edge = ClusterService(s.fed, Authenticator(revocations=RevocationList(None)),
                                  authz=Authorizer(tenancy_from_document(yaml.safe_load(POLICY))))
            usage = UsageService(edge, SqliteUsageStore(tmp_path / "usage.db"))
            usage_pb2_grpc.add_UsageServiceServicer_to_server(usage, server)
            port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials())
            await server.start()
            try:
                ch = grpc.aio.secure_channel(f"127.0.0.1:{port}", user_files(certs, "alice").channel_credentials())
                async with ch, client(s, certs, "alice") as alice:
                    stub = usage_pb2_grpc.UsageServiceStub(ch)
                    from_usage = await refused(stub.Get(usage_pb2.UsageRequest(queue="Bad_Q")))
                    from_list = await refused(alice.List(jobs_pb2.ListJobsRequest(queue="Bad_Q")))
                    assert from_usage == from_list == {"queue": from_list["queue"]}
                    assert from_list["queue"].startswith("must be a lower-case DNS name")
                    both = await refused(stub.Get(usage_pb2.UsageRequest(by="colour", since=5, until=1)))
                    assert set(both) == {"by", "until"}
                    assert (await stub.Get(usage_pb2.UsageRequest(queue="open"))).total.placements == 0
            finally:
                await server.stop(0)

    asyncio.run(main())




def test_an_owner_filter_reads_no_job_the_caller_may_not_see(certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    """Alice asking for bob's jobs gets none, as if he had none, and the federator reads none of his 200 jobs to
    say so: a page whose time grew with bob's job count would tell alice how many he has."""
    from federator.model import Job
    from federator.security.authz import Authorizer, Principal

    asked: list[str] = []
    visible = Authorizer.visible

    def counting(self: Authorizer, who: Principal, jobs: list[Job]) -> list[Job]:
        got = list(jobs)
        asked.extend(j.spec.name for j in got)
        return visible(self, who, got)

    async def main() -> None:
        async with served(certs, tmp_path) as s:
            async with client(s, certs, "bob") as bob, client(s, certs, "alice") as alice, \
                    client(s, certs, "carol") as carol:
                for i in range(200):
                    await bob.Submit(spec(f"b{i}"))
                await carol.Submit(spec("c0"))
                Authorizer.visible = counting  # type: ignore[method-assign,assignment]
                try:
                    assert await pages(alice, jobs_pb2.ListJobsRequest(filter=Filter(owner="bob"))) == []
                    assert not any(name.startswith("b") for name in asked), asked[:5]
                    got = await pages(alice, jobs_pb2.ListJobsRequest(filter=Filter(owner="carol")))
                    assert [s.fed.jobs[JobId(j)].spec.name for j in got] == ["c0"]  # seen through team-a
                finally:
                    Authorizer.visible = visible  # type: ignore[method-assign]

    asyncio.run(main())
