"""Drain over the real gRPC API with mTLS: admins only, audited, idempotent, a bad request naming its field, and
Uncordon ending it (its reply says so)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from test_tenancy_api import served
from test_tenancy_cordon import certs, clusters  # noqa: F401  (the module's fixture, and its stub helper)

from federator.api.v1 import jobs_pb2
from federator.model import ClusterCapacity
from federator.security.pki import CertsDir


def test_only_an_admin_may_drain_and_each_call_is_audited(certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    async def main() -> None:
        async with served(certs, tmp_path) as s, clusters(s, certs, "alice") as alice, \
                clusters(s, certs, "admin") as admin:
            s.fed.report(s.fed.connect(cluster="m1", region="r", labels={}),
                         ClusterCapacity(cpu_milli_allocatable=8000, cpu_milli_free=8000))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await alice.Drain(jobs_pb2.DrainClusterRequest(cluster="m1", reason="mine now"))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "only an admin may drain a member cluster (rule: admin)" in (err.value.details() or "")
            assert s.fed.cordons.names() == frozenset()

            reply = await admin.Drain(jobs_pb2.DrainClusterRequest(cluster="m1", reason="hardware swap"))
            assert (reply.changed, reply.known, reply.drained_by, reply.reason, reply.jobs, reply.waiting) == \
                (True, True, "admin", "hardware swap", 0, "")
            again = await admin.Drain(jobs_pb2.DrainClusterRequest(cluster="m1", reason="other words"))
            assert (again.changed, again.reason, again.drained_at) == (False, "hardware swap", reply.drained_at)
            [m1] = (await alice.List(jobs_pb2.ListClustersRequest())).clusters  # anyone sees its progress
            assert (m1.cordoned, m1.cordoned_by, m1.draining, m1.drain_jobs_left) == \
                (True, "admin", "drained by admin: hardware swap", 0)

            with pytest.raises(grpc.aio.AioRpcError) as err:
                await admin.Drain(jobs_pb2.DrainClusterRequest(cluster="M_1"))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (err.value.details() or "").startswith("cluster: ")

            done = await admin.Uncordon(jobs_pb2.UncordonClusterRequest(cluster="m1"))
            assert (done.changed, done.cordoned, done.drain_ended) == (True, False, True)
            [m1] = (await alice.List(jobs_pb2.ListClustersRequest())).clusters
            assert (m1.cordoned, m1.draining, m1.drain_jobs_left) == (False, "", 0)

            lines = [(x["action"], x["result"]) for x in s.audit() if x["action"] in ("drain", "uncordon")]
            assert lines == [("drain", "refused"), ("drain", "accepted"), ("drain", "accepted"),
                             ("drain", "failed"), ("uncordon", "accepted")]

    asyncio.run(main())
