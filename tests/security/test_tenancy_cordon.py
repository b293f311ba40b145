"""Cordon and Uncordon over the real gRPC API with mTLS: admins only, audited, every status a client must handle,
and what `ClusterService.List` then says of the cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from test_tenancy_api import Served, served

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.model import ClusterCapacity
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import user_files


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("alice", "admin"):
        issue(c, Identity(IdentityKind.USER, user))
    return c


@asynccontextmanager
async def clusters(s: Served, certs: CertsDir, user: str) -> AsyncIterator[jobs_pb2_grpc.ClusterServiceStub]:
    async with grpc.aio.secure_channel(s.target, user_files(certs, user).channel_credentials()) as ch:
        yield jobs_pb2_grpc.ClusterServiceStub(ch)


def test_only_an_admin_may_cordon_and_each_call_is_audited(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, clusters(s, certs, "alice") as alice, \
                clusters(s, certs, "admin") as admin:
            s.fed.report(s.fed.connect(cluster="m1", region="r", labels={}),
                         ClusterCapacity(cpu_milli_allocatable=8000, cpu_milli_free=8000))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await alice.Cordon(jobs_pb2.CordonClusterRequest(cluster="m1"))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "only an admin may cordon" in (err.value.details() or "")
            assert s.fed.cordons.get("m1") is None

            reply = await admin.Cordon(jobs_pb2.CordonClusterRequest(cluster="m1", reason="driver upgrade"))
            assert (reply.cordoned, reply.changed, reply.known, reply.cordoned_by, reply.reason) == \
                (True, True, True, "admin", "driver upgrade")
            again = await admin.Cordon(jobs_pb2.CordonClusterRequest(cluster="m1", reason="other words"))
            assert (again.changed, again.reason, again.cordoned_at) == (False, "driver upgrade", reply.cordoned_at)

            [m1] = (await alice.List(jobs_pb2.ListClustersRequest())).clusters  # anyone sees it
            assert (m1.state, m1.cordoned, m1.cordoned_by, m1.cordon_reason) == ("Ready", True, "admin",
                                                                                 "driver upgrade")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await alice.Uncordon(jobs_pb2.UncordonClusterRequest(cluster="m1"))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            done = await admin.Uncordon(jobs_pb2.UncordonClusterRequest(cluster="m1"))
            assert (done.cordoned, done.changed, done.cordoned_by, done.quarantine_lifted) == (False, True, "admin",
                                                                                            False)
            [m1] = (await alice.List(jobs_pb2.ListClustersRequest())).clusters
            assert not m1.cordoned and not m1.cordoned_by
            assert not (await admin.Uncordon(jobs_pb2.UncordonClusterRequest(cluster="m1"))).changed

            ahead = await admin.Cordon(jobs_pb2.CordonClusterRequest(cluster="new-provider-1"))
            assert ahead.changed and not ahead.known  # cordoned before its agent ever connects

            lines = [(x["action"], x["result"], x["code"], x["rule"]) for x in s.audit()
                     if x["action"] in ("cordon", "uncordon")]
            refused, accepted = ("refused", "PERMISSION_DENIED", "admin"), ("accepted", "OK", "admin")
            assert lines == [("cordon", *refused), ("cordon", *accepted), ("cordon", *accepted),
                             ("uncordon", *refused), ("uncordon", *accepted), ("uncordon", *accepted),
                             ("cordon", *accepted)]

    asyncio.run(main())


@pytest.mark.parametrize(("cluster", "reason", "field"), [
    ("", "", "cluster"), ("Not_A_Name", "", "cluster"), ("m1", "x" * 300, "reason"), ("m1", "a\x07b", "reason"),
])
def test_a_bad_request_is_invalid_argument_naming_the_field(certs: CertsDir, tmp_path: Path, cluster: str,
                                                             reason: str, field: str) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, clusters(s, certs, "admin") as admin:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await admin.Cordon(jobs_pb2.CordonClusterRequest(cluster=cluster, reason=reason))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (err.value.details() or "").startswith(f"{field}: ")
            status = rpc_status.from_call(err.value)
            assert status is not None
            detail = error_details_pb2.BadRequest()
            status.details[0].Unpack(detail)
            assert [v.field for v in detail.field_violations] == [field]
            assert not s.fed.cordons.names()

    asyncio.run(main())
