"""JobService.CancelJobs over the real gRPC API with mTLS tenants: the federator selects a queue's jobs under the
caller's visibility, cancels each as a Cancel of it would be, and audits the whole as one `cancel.bulk` beside each
job's own `cancel` line, all carrying the operation's id (outside QA, tenants F7: a bulk cancel was List and one
Cancel per job, so no record said that one person cancelled an organisation's work, with which filter, how many).
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from test_tenancy_api import client, served, spec

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.model import JobPhase
from federator.security.authz import USER_ANNOTATION
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue

OUTCOME = jobs_pb2.CancelOutcome


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("admin", "alice", "bob", "carol", "dave"):
        issue(c, Identity(IdentityKind.USER, user))
    return c


async def every_page(stub: jobs_pb2_grpc.JobServiceStub,
                     request: jobs_pb2.CancelJobsRequest) -> list[jobs_pb2.CancelJobsResponse]:
    pages = [await stub.CancelJobs(request)]
    while pages[-1].next_page_token:
        request.page_token = pages[-1].next_page_token
        pages.append(await stub.CancelJobs(request))
    return pages


def test_a_bulk_cancel_takes_what_the_caller_may_cancel_and_is_audited_once_and_per_job(certs: CertsDir,
                                                                                          tmp_path: Path) -> None:
    """alice (team-a with carol, jobs: manage; viewers with dave, jobs: view) cancels queue open: her job and
    carol's two are cancelled, dave's (visible, not hers to cancel) refused and left, bob's (not visible) untouched
    and not counted. Pages of two; one `cancel.bulk` line and four `cancel` lines, one operation id."""
    async def main() -> None:
        async with served(certs, tmp_path) as s:
            ids: dict[str, str] = {}
            for user, name in (("alice", "a1"), ("carol", "c1"), ("dave", "d1"), ("bob", "b1"), ("carol", "c2")):
                async with client(s, certs, user) as stub:
                    ids[name] = (await stub.Submit(spec(name))).job.job_id
            async with client(s, certs, "alice") as alice:
                pages = await every_page(alice, jobs_pb2.CancelJobsRequest(queue="open", max_jobs=2))
            assert [len(p.results) for p in pages] == [2, 2]
            (operation,) = {p.operation_id for p in pages}
            assert operation and {p.matched for p in pages} == {4}
            outcomes = {r.name: r.outcome for p in pages for r in p.results}
            assert outcomes == {"a1": OUTCOME.CANCEL_OUTCOME_CANCELLED, "c1": OUTCOME.CANCEL_OUTCOME_CANCELLED,
                                "d1": OUTCOME.CANCEL_OUTCOME_REFUSED, "c2": OUTCOME.CANCEL_OUTCOME_CANCELLED}
            refused = next(r for p in pages for r in p.results if r.name == "d1")
            assert "cancel" in refused.message and refused.job_id == ids["d1"]
            phases = {n: s.fed.jobs[j].phase for n, j in ids.items()}  # type: ignore[index]
            assert phases == {"a1": JobPhase.CANCELLED, "c1": JobPhase.CANCELLED, "c2": JobPhase.CANCELLED,
                              "d1": JobPhase.PENDING, "b1": JobPhase.PENDING}

            lines = [x for x in s.audit() if x["action"] in ("cancel", "cancel.bulk")]
            bulk = [x for x in lines if x["action"] == "cancel.bulk"]
            assert len(bulk) == 1  # one record of the operation, at its first page
            assert bulk[0]["operation"] == operation and bulk[0]["result"] == "accepted"
            assert bulk[0]["identity"]["user"] == "alice"  # type: ignore[index]
            assert bulk[0]["object"] == {"kind": "JobSelection", "queue": "open", "phases": "Pending,Placed,Running",
                                         "owner": "", "matched": "4"}
            each = [x for x in lines if x["action"] == "cancel"]
            assert [(x["object"]["name"], x["result"], x["operation"]) for x in each] == [  # type: ignore[index]
                ("a1", "accepted", operation), ("c1", "accepted", operation), ("d1", "refused", operation),
                ("c2", "accepted", operation)]

            # Idempotent: the same request again is a new operation over what is left, dave's job alone, refused.
            async with client(s, certs, "alice") as alice:
                again = await every_page(alice, jobs_pb2.CancelJobsRequest(queue="open", max_jobs=2))
            assert [(r.name, r.outcome) for p in again for r in p.results] == [("d1", OUTCOME.CANCEL_OUTCOME_REFUSED)]
            assert again[0].matched == 1 and again[0].operation_id != operation

    asyncio.run(main())


def test_an_admin_filters_by_owner_and_phase(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s:
            for user, name in (("bob", "b1"), ("bob", "b2"), ("carol", "c1")):
                async with client(s, certs, user) as stub:
                    await stub.Submit(spec(name))
            async with client(s, certs, "admin") as admin:
                pending = convert.phase_to_pb(JobPhase.PENDING)
                running = convert.phase_to_pb(JobPhase.RUNNING)
                none = await admin.CancelJobs(jobs_pb2.CancelJobsRequest(queue="open", owner="bob",
                                                                         phases=[running]))
                assert none.matched == 0 and not none.results and not none.next_page_token
                got = await admin.CancelJobs(jobs_pb2.CancelJobsRequest(queue="open", owner="bob", phases=[pending]))
            assert sorted(r.name for r in got.results) == ["b1", "b2"] and got.matched == 2
            left = {j.spec.name: j.phase for j in s.fed.jobs.values()}  # type: ignore[attr-defined]
            assert left == {"b1": JobPhase.CANCELLED, "b2": JobPhase.CANCELLED, "c1": JobPhase.PENDING}
            assert all(j.spec.annotation(USER_ANNOTATION) == "bob" for j in s.fed.jobs.values()  # type: ignore
                       if j.phase is JobPhase.CANCELLED)
            bulk = [x for x in s.audit() if x["action"] == "cancel.bulk"]
            assert [x["object"]["owner"] for x in bulk] == ["bob", "bob"]  # type: ignore[index]
            assert [x["object"]["phases"] for x in bulk] == ["Running", "Pending"]  # type: ignore[index]

    asyncio.run(main())


@pytest.mark.parametrize(("request_fields", "field", "said"), [
    ({"queue": ""}, "queue", "queue: must not be empty"),
    ({"queue": "Not_A_Queue"}, "queue", "queue: "),
    ({"queue": "open", "phases": [convert.phase_to_pb(JobPhase.SUCCEEDED)]}, "phases",
     "phases: Succeeded is not a phase a job can be cancelled in"),
    ({"queue": "open", "phases": [0]}, "phases", "phases: "),
    ({"queue": "open", "max_jobs": -1}, "max_jobs", "max_jobs: must not be negative, got -1"),
    ({"queue": "open", "page_token": "not-a-token"}, "page_token", "page_token: not a token"),
    ({"queue": "open", "all_queues": True}, "queue", "queue: must be empty with all_queues"),
    ({"all_queues": True, "name_prefix": "A_"}, "name_prefix", "name_prefix: must hold only what a job name may"),
    ({"queue": "open", "name_prefix": "a" * 254}, "name_prefix", "name_prefix: must be at most 253 characters"),
], ids=["no-queue", "bad-queue", "ended-phase", "unspecified-phase", "negative-max", "bad-token",
        "queue-and-all-queues", "bad-prefix", "long-prefix"])
def test_bad_input_is_invalid_argument_naming_the_field(certs: CertsDir, tmp_path: Path,
                                                        request_fields: dict[str, object], field: str,
                                                        said: str) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "alice") as alice:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await alice.CancelJobs(jobs_pb2.CancelJobsRequest(**request_fields))  # type: ignore[arg-type]
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (err.value.details() or "").startswith(said), err.value.details()
            found = rpc_status.from_call(err.value)  # type: ignore[arg-type]
            assert found is not None
            detail = error_details_pb2.BadRequest()
            found.details[0].Unpack(detail)
            assert [v.field for v in detail.field_violations] == [field]

    asyncio.run(main())


def test_a_page_token_is_refused_with_another_filter(certs: CertsDir, tmp_path: Path) -> None:
    """A page cannot go on with a different selection than the operation's first page audited."""
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "alice") as alice:
            for name in ("a1", "a2"):
                await alice.Submit(spec(name))
            first = await alice.CancelJobs(jobs_pb2.CancelJobsRequest(queue="open", max_jobs=1))
            assert first.next_page_token
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await alice.CancelJobs(jobs_pb2.CancelJobsRequest(queue="open", owner="bob", max_jobs=1,
                                                                  page_token=first.next_page_token))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "page_token: not a token of a CancelJobs with this filter" in (err.value.details() or "")
            rest = await alice.CancelJobs(jobs_pb2.CancelJobsRequest(queue="open", max_jobs=1,
                                                                     page_token=first.next_page_token))
            assert [r.name for r in rest.results] == ["a2"] and rest.operation_id == first.operation_id

    asyncio.run(main())


def test_a_name_prefix_pages_over_every_queue_and_its_token_keeps_the_filter(certs: CertsDir,
                                                                             tmp_path: Path) -> None:
    """CancelJobsRequest.name_prefix and all_queues (since 0.15.0): the server selects by name over every queue,
    page after page; a token made with a prefix does not go on without it (it would take other jobs)."""
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "alice") as alice:
            for name in ("run-1", "keep-1", "run-2", "run-3"):
                await alice.Submit(spec(name))
            first = await alice.CancelJobs(jobs_pb2.CancelJobsRequest(all_queues=True, name_prefix="run-",
                                                                      max_jobs=1))
            assert [r.name for r in first.results] == ["run-1"] and first.matched == 3 and first.next_page_token
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await alice.CancelJobs(jobs_pb2.CancelJobsRequest(all_queues=True, max_jobs=1,
                                                                  page_token=first.next_page_token))
            assert "page_token: not a token of a CancelJobs with this filter" in (err.value.details() or "")
            rest = await alice.CancelJobs(jobs_pb2.CancelJobsRequest(all_queues=True, name_prefix="run-",
                                                                     page_token=first.next_page_token))
            assert [r.name for r in rest.results] == ["run-2", "run-3"] and not rest.next_page_token
            kept = await alice.Get(jobs_pb2.GetJobRequest(job_id="keep-1"))
            assert kept.phase == convert.phase_to_pb(JobPhase.PENDING)

    asyncio.run(main())


def test_a_forged_or_borrowed_page_token_is_refused(certs: CertsDir, tmp_path: Path) -> None:
    """Portal re-test N1: a token is the operation id and its count, which go into every `cancel` audit line; one
    a client made up (an invented id, a count of 12345) or another user's is refused, naming page_token."""
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "alice") as alice, \
                client(s, certs, "bob") as bob:
            for name in ("a1", "a2", "a3"):
                await alice.Submit(spec(name))
            first = await alice.CancelJobs(jobs_pb2.CancelJobsRequest(queue="open", max_jobs=1))
            # what the re-test forged: the token's fields as readable JSON (a token is sealed now: server/paging.py)
            forged = base64.urlsafe_b64encode(json.dumps(["bulk-forged", 12345, ["open", ["Pending"], ""], 0, ""])
                                              .encode()).decode()
            flipped = bytearray(base64.urlsafe_b64decode(first.next_page_token + "=" * 3))
            flipped[-1] ^= 1
            tampered = base64.urlsafe_b64encode(bytes(flipped)).decode()
            for stub, given in ((alice, forged), (alice, tampered), (bob, first.next_page_token)):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.CancelJobs(jobs_pb2.CancelJobsRequest(queue="open", max_jobs=1, page_token=given))
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "page_token: not a token this server made for this caller" in (err.value.details() or "")
            assert not any(line.get("operation") == "bulk-forged" for line in s.audit())
            rest = await alice.CancelJobs(jobs_pb2.CancelJobsRequest(queue="open", max_jobs=1,
                                                                     page_token=first.next_page_token))
            assert [r.name for r in rest.results] == ["a2"] and rest.operation_id == first.operation_id

    asyncio.run(main())
