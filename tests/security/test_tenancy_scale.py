"""Scale over the real gRPC API with mTLS: whoever may cancel a job may scale it, no one else; every status a
client must handle; an audit line for each call, as for Cancel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from test_tenancy_api import client, served

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.jobfile import parse_job
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("alice", "bob"):
        issue(c, Identity(IdentityKind.USER, user))
    return c


def serving(name: str, *, kind: str = "inference", replicas: int = 2) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": kind, "queue": "open", "replicas": replicas, "resources": {"cpu": "1"}}})))


def scale(job_id: str, replicas: int) -> jobs_pb2.ScaleJobRequest:
    return jobs_pb2.ScaleJobRequest(job_id=job_id, replicas=replicas)


def test_a_tenant_cannot_scale_another_tenants_job(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "bob") as bob, client(s, certs, "alice") as alice:
            job = (await bob.Submit(serving("bobs"))).job
            for key in (job.job_id, "bobs"):  # answered as a job nobody has (outside QA, tenants F1)
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await alice.Scale(scale(key, 5))
                assert err.value.code() == grpc.StatusCode.NOT_FOUND, err.value
                assert err.value.details() == f"no job with id or name {key!r}"
            assert s.fed.jobs[job.job_id].spec.replicas == 2  # alice's scale did nothing
            scaled = await bob.Scale(scale("bobs", 5))
            assert scaled.spec.replicas == 5 and s.fed.jobs[job.job_id].spec.replicas == 5
            async with client(s, certs, "admin") as admin:
                assert (await admin.Scale(scale(job.job_id, 3))).spec.replicas == 3
            lines = [x for x in s.audit() if x["action"] == "scale"]
            assert [(x["result"], x["code"], x["rule"]) for x in lines] == [
                ("failed", "NOT_FOUND", "owner"), ("failed", "NOT_FOUND", "owner"),
                ("accepted", "OK", "owner"), ("accepted", "OK", "admin")]
            assert lines[2]["object"]["replicas"] == "5" and lines[2]["object"]["was"] == "2"  # type: ignore[index]

    asyncio.run(main())


def test_every_status_a_client_must_handle(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "bob") as bob:
            serve = (await bob.Submit(serving("serve", replicas=2))).job
            train = (await bob.Submit(serving("train", kind="training"))).job

            async def status(request: jobs_pb2.ScaleJobRequest) -> grpc.aio.AioRpcError:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await bob.Scale(request)
                return err.value

            err = await status(scale(serve.job_id, 0))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (err.details() or "").startswith("replicas: must be at least 1, got 0")
            found = rpc_status.from_call(err)  # type: ignore[arg-type]
            assert found is not None
            detail = error_details_pb2.BadRequest()
            found.details[0].Unpack(detail)
            assert [v.field for v in detail.field_violations] == ["replicas"]
            err = await status(scale("", 3))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "job_id" in (err.details() or "")
            err = await status(scale("nothing", 3))
            assert err.code() == grpc.StatusCode.NOT_FOUND
            err = await status(scale(train.job_id, 3))
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert (err.details() or "").startswith("spec.kind: ")
            again = await bob.Scale(scale(serve.job_id, 2))  # the count it has: the job, unchanged
            assert again.spec.replicas == 2
            await bob.Cancel(jobs_pb2.CancelJobRequest(job_id=serve.job_id))
            err = await status(scale(serve.job_id, 3))
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "is Cancelled" in (err.details() or "")
            assert [x["code"] for x in s.audit() if x["action"] == "scale"] == [
                "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "OK", "FAILED_PRECONDITION"]

    asyncio.run(main())
