"""What a provider's credentials (its clusters' certificates) may do on the job API, over real gRPC with mTLS
(outside provider QA F5): list its own cluster (state, cordon, maintenance), read-only, and drain its own clusters
(test_provider_drain.py), and nothing else; and `ClusterService.Forget`, an admin's, for a Lost cluster only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from test_tenancy_api import Served, served

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.model import ClusterCapacity, ClusterState
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import TlsFiles, cluster_files, user_files

WHY = "driver upgrade, ticket 4711"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("alice", "admin"):
        issue(c, Identity(IdentityKind.USER, user))
    for name in ("member-b", "member-c"):
        issue(c, Identity(IdentityKind.CLUSTER, name))
    return c


@asynccontextmanager
async def stubs(s: Served, files: TlsFiles) -> AsyncIterator[tuple[jobs_pb2_grpc.ClusterServiceStub,
                                                                   jobs_pb2_grpc.JobServiceStub]]:
    async with grpc.aio.secure_channel(s.target, files.channel_credentials()) as ch:
        yield jobs_pb2_grpc.ClusterServiceStub(ch), jobs_pb2_grpc.JobServiceStub(ch)


def _join(s: Served, name: str) -> None:
    s.fed.report(s.fed.connect(cluster=name, region="r", labels={}),
                 ClusterCapacity(cpu_milli_allocatable=8000, cpu_milli_free=8000))


def test_a_cluster_certificate_lists_its_own_cluster_only_and_may_do_nothing_else(certs: CertsDir,
                                                                                   tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, stubs(s, cluster_files(certs, "member-b")) as (b, b_jobs), \
                stubs(s, user_files(certs, "alice")) as (alice, _):
            for name in ("member-b", "member-c"):
                _join(s, name)
            s.fed.cordons.maintenance.reported("member-b", WHY, provider="prov", now=s.fed.clock())
            page = await b.List(jobs_pb2.ListClustersRequest(view=jobs_pb2.CLUSTER_VIEW_FULL))
            [mine] = page.clusters  # never member-c, another provider's perhaps
            assert (mine.name, mine.state, mine.maintenance, mine.cordoned) == ("member-b", "Ready", WHY, False)
            assert mine.maintenance_since > 0 and not mine.capacity.placement_ids
            assert len((await alice.List(jobs_pb2.ListClustersRequest())).clusters) == 2  # a user sees every one

            for call, request in ((b.Cordon, jobs_pb2.CordonClusterRequest(cluster="member-b")),
                                  (b.Forget, jobs_pb2.ForgetClusterRequest(cluster="member-c")),
                                  (b_jobs.List, jobs_pb2.ListJobsRequest()),
                                  (b_jobs.Cancel, jobs_pb2.CancelJobRequest(job_id="x"))):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call(request)  # type: ignore[operator]
                assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, call
                assert "not the certificate of cluster member-b" in (err.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as err:  # its own cluster only (provider_rights.py)
                await b.Uncordon(jobs_pb2.UncordonClusterRequest(cluster="member-c"))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "may uncordon only its own cluster 'member-b'" in (err.value.details() or "")
            assert s.fed.cordons.get("member-b") is None and s.fed.cordons.get("member-c") is None
            # asking to act for a user is refused, not ignored (portal re-test N7: it was served as the cluster)
            as_alice = (("x-federator-on-behalf-of", "alice"),)
            for call, request in ((b.List, jobs_pb2.ListClustersRequest()),
                                  (b.Drain, jobs_pb2.DrainClusterRequest(cluster="member-b")),
                                  (b.Uncordon, jobs_pb2.UncordonClusterRequest(cluster="member-b"))):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call(request, metadata=as_alice)  # type: ignore[operator]
                assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, call
                assert "a cluster certificate (cluster member-b) acts for no user" in (err.value.details() or "")
            assert s.fed.cordons.get("member-b") is None  # the Drain asked with the header did nothing

    asyncio.run(main())


def test_an_admin_forgets_a_lost_cluster_at_once_and_nothing_else(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, stubs(s, user_files(certs, "admin")) as (admin, _), \
                stubs(s, user_files(certs, "alice")) as (alice, _):
            _join(s, "member-c")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await admin.Forget(jobs_pb2.ForgetClusterRequest(cluster="member-c"))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "cluster 'member-c' is Ready, not Lost: only a Lost cluster may be forgotten" in \
                (err.value.details() or "")
            rec = s.fed.clusters["member-c"]
            s.fed.disconnect(rec)
            rec.state, rec.lost_at = ClusterState.LOST, s.fed.clock()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await alice.Forget(jobs_pb2.ForgetClusterRequest(cluster="member-c"))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "only an admin may forget" in (err.value.details() or "")
            assert "member-c" in s.fed.clusters

            done = await admin.Forget(jobs_pb2.ForgetClusterRequest(cluster="member-c"))
            assert (done.cluster, done.lost_at) == ("member-c", rec.lost_at)
            assert "member-c" not in s.fed.clusters
            assert not (await admin.List(jobs_pb2.ListClustersRequest())).clusters
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await admin.Forget(jobs_pb2.ForgetClusterRequest(cluster="member-c"))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert "knows no cluster 'member-c'" in (err.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await admin.Forget(jobs_pb2.ForgetClusterRequest(cluster="Bad_Name"))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            lines = [(x["action"], x["result"]) for x in s.audit() if x["action"] == "forget"]
            assert lines == [("forget", "failed"), ("forget", "refused"), ("forget", "accepted"),
                             ("forget", "failed")]

    asyncio.run(main())
