"""Hold and Release over the real gRPC API with mTLS: whoever may cancel a job may hold and release it, no one else;
an admin's hold of another user's job only an admin releases; every call audited (server/hold_calls.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from test_tenancy_api import absent, client, denied, served, spec

from federator.api.v1 import jobs_pb2
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("alice", "bob", "carol", "dave"):
        issue(c, Identity(IdentityKind.USER, user))
    return c


def hold(job_id: str) -> jobs_pb2.HoldJobRequest:
    return jobs_pb2.HoldJobRequest(job_id=job_id)


def release(job_id: str) -> jobs_pb2.ReleaseJobRequest:
    return jobs_pb2.ReleaseJobRequest(job_id=job_id)


def error_info(err: grpc.aio.AioRpcError) -> tuple[str, dict[str, str]]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR))
    return info.reason, dict(info.metadata)


def test_who_may_hold_and_release_a_job(certs: CertsDir, tmp_path: Path) -> None:
    """alice's job (team-a: carol manages it; viewers: dave only sees it; bob is a stranger)."""
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "alice") as alice, \
                client(s, certs, "bob") as bob, client(s, certs, "carol") as carol, \
                client(s, certs, "dave") as dave, client(s, certs, "admin") as admin:
            job = (await alice.Submit(spec("alices", queue="research"))).job
            for key in (job.job_id, "alices"):  # a job bob may not see is one nobody has, for Hold as for Get
                assert await absent(bob.Hold(hold(key))) == f"no job with id or name {key!r}"
                assert await absent(bob.Release(release(key))) == f"no job with id or name {key!r}"
            err = await denied(dave.Hold(hold(job.job_id)))  # dave may see it (jobs: view), not hold it
            assert error_info(err) == ("GROUP_VIEW_ONLY", {"rule": "group", "job_id": job.job_id, "action": "hold"})
            assert s.fed.jobs[job.job_id].hold is None
            by_carol = await carol.Hold(hold(job.job_id))
            assert (by_carol.hold.by, by_carol.hold.admin) == ("carol", False)
            assert (await alice.Release(release("alices"))).HasField("hold") is False  # its owner lets it go

            by_admin = await admin.Hold(hold(job.job_id))  # an admin's hold of a user's job: an admin hold
            assert (by_admin.hold.by, by_admin.hold.admin) == ("admin", True)
            assert "held by admin admin at " in by_admin.pending_reason.message
            err = await denied(alice.Release(release(job.job_id)))
            assert error_info(err) == ("ADMIN_ONLY", {"rule": "admin", "job_id": job.job_id, "action": "release"})
            assert (err.details() or "").startswith(f"job {job.job_id} was held by admin admin at ")
            assert (err.details() or "").endswith(": only an admin may release it")
            again = await alice.Hold(hold(job.job_id))  # held already, and more strongly: unchanged
            assert again.hold == by_admin.hold
            assert s.fed.jobs[job.job_id].hold is not None and s.fed.jobs[job.job_id].hold.admin  # type: ignore[union-attr]
            assert not (await admin.Release(release(job.job_id))).HasField("hold")

            lines = [(x["action"], x["identity"]["user"], x["result"], x["code"], x["rule"])  # type: ignore[index]
                     for x in s.audit() if x["action"] in ("hold", "release")]
            assert lines == [
                ("hold", "bob", "failed", "NOT_FOUND", "owner"), ("release", "bob", "failed", "NOT_FOUND", "owner"),
                ("hold", "bob", "failed", "NOT_FOUND", "owner"), ("release", "bob", "failed", "NOT_FOUND", "owner"),
                ("hold", "dave", "refused", "PERMISSION_DENIED", "group"),
                ("hold", "carol", "accepted", "OK", "group"), ("release", "alice", "accepted", "OK", "owner"),
                ("hold", "admin", "accepted", "OK", "admin"),
                ("release", "alice", "refused", "PERMISSION_DENIED", "admin"),
                ("hold", "alice", "accepted", "OK", "owner"), ("release", "admin", "accepted", "OK", "admin")]

    asyncio.run(main())


def test_an_admins_hold_of_its_own_job_is_an_owners_and_an_admin_hold_outranks_an_owners(certs: CertsDir,
                                                                                        tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "alice") as alice, \
                client(s, certs, "admin") as admin:
            own = (await admin.Submit(spec("admins"))).job
            assert not (await admin.Hold(hold(own.job_id))).hold.admin
            job = (await alice.Submit(jobs_pb2.SubmitRequest(spec=spec("held-at-once", queue="research").spec,
                                                             hold=True))).job
            assert (job.hold.by, job.hold.admin) == ("alice", False)
            assert job.pending_reason.code == "Held"
            stronger = await admin.Hold(hold(job.job_id))
            assert (stronger.hold.by, stronger.hold.admin) == ("admin", True)
            err = await denied(alice.Release(release(job.job_id)))
            assert error_info(err)[0] == "ADMIN_ONLY"
            assert s.fed.jobs[job.job_id].hold is not None

    asyncio.run(main())
