"""What a tenant learns by guessing another's job names, and whether a guessed name can be taken from its owner.

Red-team findings over the real gRPC API (the in-process server of `test_tenancy_api.py`): mallory's Get of
`alice-secret-job` answered with its job id and owner; her Submit of a taken name told her whether alice's job
had finished; and `run_again` over alice's finished `nightly-train` took the name from alice, whose own
run_again then failed and who could not cancel mallory's job.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from test_tenancy_api import client, served, spec

from federator.api.v1 import jobs_pb2, types_pb2
from federator.security.pki import CertsDir, Identity, IdentityKind, issue

POLICY = """
tenancy:
  admins: {users: [admin]}
  groups:
    team-a: {users: [alice, carol]}
queues:
  open: {weight: 1}
"""


@pytest.fixture(scope="module")
def guess_certs(certs: CertsDir) -> CertsDir:
    for user in ("alice", "carol", "mallory"):
        issue(certs, Identity(IdentityKind.USER, user))
    return certs


def again(name: str) -> jobs_pb2.SubmitRequest:
    request = spec(name)
    request.run_again = True
    return request


@pytest.mark.parametrize("call", ["get", "watch", "cancel"])
def test_a_guessed_name_tells_neither_the_jobs_owner_nor_its_id(guess_certs: CertsDir, tmp_path: Path,
                                                                call: str) -> None:
    async def main() -> None:
        async with served(guess_certs, tmp_path, POLICY) as s, client(s, guess_certs, "alice") as alice, \
                client(s, guess_certs, "mallory") as mallory:
            job = (await alice.Submit(spec("alice-secret-job"))).job
            async def answer(key: str) -> tuple[grpc.StatusCode, str]:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    if call == "watch":
                        await mallory.Watch(jobs_pb2.WatchJobsRequest(job_id=key)).read()
                    elif call == "get":
                        await mallory.Get(jobs_pb2.GetJobRequest(job_id=key))
                    else:
                        await mallory.Cancel(jobs_pb2.CancelJobRequest(job_id=key))
                return err.value.code(), (err.value.details() or "").replace(key, "KEY")

            for key, nobodys in (("alice-secret-job", "bob-secret-job"), (job.job_id, "alice-secret-job-000000")):
                # the same answer as a key naming no job: not even that the job exists (outside QA, tenants F1)
                assert await answer(key) == await answer(nobodys) == (grpc.StatusCode.NOT_FOUND,
                                                                      "no job with id or name 'KEY'")
            assert s.fed.jobs[job.job_id].phase.value == "Pending"

    asyncio.run(main())


def test_run_again_does_not_take_another_tenants_finished_job_name(guess_certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(guess_certs, tmp_path, POLICY) as s, client(s, guess_certs, "alice") as alice, \
                client(s, guess_certs, "mallory") as mallory, client(s, guess_certs, "carol") as carol:
            first = (await alice.Submit(spec("nightly-train"))).job
            await alice.Cancel(jobs_pb2.CancelJobRequest(job_id=first.job_id))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await mallory.Submit(again("nightly-train"))
            said = err.value.details() or ""
            assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS, said
            assert "metadata.name" in said and first.job_id not in said and "Cancelled" not in said, said
            assert len(s.fed.jobs) == 1
            # alice runs her job again; carol (team-a, jobs: manage) may too, once that one finished
            second = (await alice.Submit(again("nightly-train"))).job
            assert second.job_id != first.job_id and second.phase == types_pb2.JOB_PHASE_PENDING
            await alice.Cancel(jobs_pb2.CancelJobRequest(job_id=second.job_id))
            third = (await carol.Submit(again("nightly-train"))).job
            assert third.job_id not in (first.job_id, second.job_id)

    asyncio.run(main())


def test_a_taken_name_sounds_the_same_to_an_outsider_whether_its_job_finished_or_not(guess_certs: CertsDir,
                                                                                     tmp_path: Path) -> None:
    async def main() -> None:
        async with served(guess_certs, tmp_path, POLICY) as s, client(s, guess_certs, "alice") as alice, \
                client(s, guess_certs, "mallory") as mallory:
            active = (await alice.Submit(spec("active"))).job
            done = (await alice.Submit(spec("done"))).job
            await alice.Cancel(jobs_pb2.CancelJobRequest(job_id=done.job_id))
            told = {}
            for name in ("active", "done"):
                for request in (spec(name), again(name)):
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await mallory.Submit(request)
                    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
                    told[(name, request.run_again)] = (err.value.details() or "").replace(name, "NAME")
            assert len(set(told.values())) == 1, told
            assert active.job_id not in str(told) and len(s.fed.jobs) == 2

    asyncio.run(main())
