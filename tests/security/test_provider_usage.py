"""A provider reads its own clusters' usage with their certificates (security/provider_usage.py), over real gRPC
with mTLS and provider CAs in the trust file: its clusters only, by cluster, model or provider; never another
provider's cluster, nor anything that names a tenant (outside billing QA F6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from federator.accounting import SqliteUsageStore, UsageRecord
from federator.api.v1 import usage_pb2, usage_pb2_grpc
from federator.security.auth import Authenticator
from federator.security.pki import CertsDir
from federator.security.tls import TlsFiles, cluster_files, server_files, user_files
from federator.security.trust import load_trust
from federator.server.federator import Federator
from federator.server.services import ClusterService
from federator.server.usage_service import UsageService
from federator.store.sqlite import SqliteJobStore
from tests.security.test_provider_drain import certs  # noqa: F401  (the fixture: a federation CA, two providers' CAs)

H100, L40S = "NVIDIA-H100-80GB-HBM3", "NVIDIA-L40S"
NOW = 2_000.0


def record(job: str, queue: str, cluster: str, provider: str, model: str, milli: int) -> UsageRecord:
    """`milli` thousandths of accelerators for 10 s, from 1000, in region r<the cluster's digit>."""
    return UsageRecord(f"{job}.g1.{cluster}", job, queue, f"user-of-{queue}", queue, cluster, provider, model,
                       milli, 1_000.0, 1_010.0, region=f"r{cluster[-1]}", vendor="nvidia")


RECORDS = [record("a", "org-a", "acme-1", "acme", H100, 8_000),     # 80
           record("b", "org-b", "acme-2", "acme", L40S, 4_000),     # 40
           record("c", "org-a", "beta-1", "beta", H100, 16_000),    # 160
           record("d", "org-c", "east-1", "", H100, 2_000)]         # 20


@asynccontextmanager
async def served(certs: CertsDir, tmp_path: Path, records: list[UsageRecord] = RECORDS,  # noqa: F811
                 members: tuple[str, ...] = ()) -> AsyncIterator[str]:
    """UsageService over mTLS, judged by the trust file as `federator serve --trust` does, on `records`, with
    these member clusters connected."""
    trust = load_trust(certs.trust, federation_ca=certs.ca_cert)
    fed = Federator(store=SqliteJobStore(Path(":memory:")), clock=lambda: NOW)
    for name in members:
        fed.connect(cluster=name, region="r", labels={})
    usage = SqliteUsageStore(tmp_path / "usage.db")
    usage.put(records)
    server = grpc.aio.server()
    usage_pb2_grpc.add_UsageServiceServicer_to_server(
        UsageService(ClusterService(fed, Authenticator(trust=trust)), usage), server)
    port = server.add_secure_port("127.0.0.1:0",
                                  server_files(certs).server_credentials(client_roots=trust.bundle_pem()))
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
        usage.close()
        fed.store.close()


def provider_files(certs: CertsDir, provider: str, cluster: str) -> TlsFiles:  # noqa: F811
    own = cluster_files(certs.provider(provider), cluster)
    return TlsFiles(certs.ca_cert, own.cert, own.key)


async def get(target: str, files: TlsFiles, **asked: object) -> usage_pb2.UsageResponse:
    async with grpc.aio.secure_channel(target, files.channel_credentials()) as ch:
        return await usage_pb2_grpc.UsageServiceStub(ch).Get(usage_pb2.UsageRequest(**asked))  # type: ignore[arg-type]


def rows(resp: usage_pb2.UsageResponse) -> dict[str, float]:
    return {r.key: r.accelerator_seconds for r in resp.rows} | {"TOTAL": resp.total.accelerator_seconds}


async def refused(target: str, files: TlsFiles, words: str, **asked: object) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await get(target, files, **asked)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value.details()
    assert words in (err.value.details() or ""), err.value.details()


def test_a_provider_reads_its_own_clusters_usage_and_no_other(certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    async def main() -> None:
        async with served(certs, tmp_path) as target:
            acme = provider_files(certs, "acme", "acme-1")
            assert rows(await get(target, acme, by="cluster")) == {"acme-1": 80.0, "acme-2": 40.0, "TOTAL": 120.0}
            assert rows(await get(target, acme, by="model")) == {H100: 80.0, L40S: 40.0, "TOTAL": 120.0}
            assert rows(await get(target, acme, by="provider")) == {"acme": 120.0, "TOTAL": 120.0}
            assert rows(await get(target, acme)) == {"TOTAL": 120.0}
            # its own by region and vendor too, alone or combined (capacity planners QA P9): nothing of a tenant's
            assert rows(await get(target, acme, by="vendor")) == {"nvidia": 120.0, "TOTAL": 120.0}
            assert rows(await get(target, acme, group_by=["cluster", "region"])) == {
                "acme-1 / r1": 80.0, "acme-2 / r2": 40.0, "TOTAL": 120.0}
            assert rows(await get(target, acme, by="cluster", cluster="acme-2")) == {"acme-2": 40.0, "TOTAL": 40.0}
            beta = provider_files(certs, "beta", "beta-1")
            assert rows(await get(target, beta, by="cluster")) == {"beta-1": 160.0, "TOTAL": 160.0}
            east = cluster_files(certs, "east-1")  # the federation's CA: its one cluster
            assert rows(await get(target, east, by="cluster")) == {"east-1": 20.0, "TOTAL": 20.0}
            admin = user_files(certs, "admin")  # an admin's view is unchanged: every cluster, every tenant
            assert rows(await get(target, admin, by="queue")) == {"org-a": 240.0, "org-b": 40.0, "org-c": 20.0,
                                                                  "TOTAL": 300.0}
            assert rows(await get(target, admin, by="queue", cluster="acme-2")) == {"org-b": 40.0, "TOTAL": 40.0}

    asyncio.run(main())


@pytest.mark.parametrize(("asked", "words"), [
    pytest.param({"cluster": "beta-1"}, "the certificate of cluster 'acme-1' may read the usage only of the "
                 "clusters the trust file binds to provider 'acme', not of 'beta-1': it belongs to provider 'beta' "
                 "(rule: provider)",
                 id="another-providers-cluster"),
    pytest.param({"cluster": "east-1", "by": "cluster"}, "not of 'east-1': no provider claims it (rule: provider)",
                 id="the-federations-cluster"),
    pytest.param({"by": "queue"}, "may read usage by cluster, model, provider, region or vendor only, not by "
                 "'queue': queues, users, namespaces and jobs are the tenants' (rule: provider)", id="by-queue"),
    pytest.param({"group_by": ["region", "queue"]}, "not by 'queue'", id="group-by-region-and-queue"),
    pytest.param({"by": "user"}, "not by 'user'", id="by-user"),
    pytest.param({"by": "namespace"}, "not by 'namespace'", id="by-namespace"),
    pytest.param({"by": "job"}, "not by 'job'", id="by-job"),
    pytest.param({"by": "placement"}, "not by 'placement'", id="by-placement"),  # it names the job
    pytest.param({"queue": "org-a", "by": "cluster"}, "may not ask for one queue's usage ('org-a'): queues are the "
                 "tenants' (rule: provider)", id="one-queue"),
])
def test_a_provider_is_refused_what_names_a_tenant_or_another_providers_cluster(
        certs: CertsDir, tmp_path: Path, asked: dict[str, str], words: str) -> None:  # noqa: F811
    async def main() -> None:
        async with served(certs, tmp_path) as target:
            await refused(target, provider_files(certs, "acme", "acme-1"), words, **asked)

    asyncio.run(main())


def test_a_federation_ca_cluster_certificate_speaks_for_its_one_cluster(certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    async def main() -> None:
        async with served(certs, tmp_path) as target:
            await refused(target, cluster_files(certs, "east-1"), "may read the usage only of its own cluster 'east-1' "
                          "(a certificate of the federation's CA speaks for that one only), not of 'acme-1': it "
                          "belongs to provider 'acme' (rule: provider)", cluster="acme-1")

    asyncio.run(main())


def test_a_bad_cluster_name_is_invalid_argument_for_anyone(certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    async def main() -> None:
        async with served(certs, tmp_path) as target:
            for files in (provider_files(certs, "acme", "acme-1"), user_files(certs, "admin")):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await get(target, files, cluster="Bad_Cluster")
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "cluster: 'Bad_Cluster' is not a member cluster's name" in (err.value.details() or "")

    asyncio.run(main())


def test_a_providers_usage_call_acts_for_no_user(certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    async def main() -> None:
        async with served(certs, tmp_path) as target:
            files = provider_files(certs, "acme", "acme-1")
            async with grpc.aio.secure_channel(target, files.channel_credentials()) as ch:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await usage_pb2_grpc.UsageServiceStub(ch).Get(
                        usage_pb2.UsageRequest(by="cluster"), metadata=(("x-federator-on-behalf-of", "admin"),))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "a cluster certificate (cluster acme-1) acts for no user" in (err.value.details() or "")

    asyncio.run(main())


def test_a_cluster_moved_to_another_provider_stays_the_old_ones_for_what_ran_before(
        certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    """Outside billing re-test N1: the trust file moved a cluster from one provider to another, and the new provider
    read the old one's past payout for it (and the old one lost it), the clusters being judged by today's binding.
    A payout is what was billed to the provider: each record keeps the provider its cluster had when it ran."""
    moved = [record("e", "org-a", "beta-7", "acme", H100, 8_000),   # 80: ran as acme's, the trust file says beta-*
             record("f", "org-b", "acme-9", "beta", H100, 4_000)]   # 40: ran as beta's, now bound to acme-*
    async def main() -> None:
        async with served(certs, tmp_path, [*RECORDS, *moved]) as target:
            acme = provider_files(certs, "acme", "acme-1")
            assert rows(await get(target, acme, by="cluster")) == {"acme-1": 80.0, "beta-7": 80.0, "acme-2": 40.0,
                                                                    "TOTAL": 200.0}
            beta = provider_files(certs, "beta", "beta-1")
            assert rows(await get(target, beta, by="cluster")) == {"beta-1": 160.0, "acme-9": 40.0, "TOTAL": 200.0}

    asyncio.run(main())
