"""A provider drains its own clusters with their certificates (security/provider_rights.py), over real gRPC with
mTLS and provider CAs in the trust file: its own cluster and its other clusters, never another provider's nor
the federation's; it ends the drains it made and no admin's cordon; every call audited with rule `provider`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.model import ClusterCapacity
from federator.security import provider_rights
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator
from federator.security.pki import CertsDir, Identity, IdentityKind, create_ca, init_ca, issue
from federator.security.provider_usage import usage_refusal
from federator.security.tls import TlsFiles, cluster_files, server_files, user_files
from federator.security.trust import load_trust
from federator.server.federator import Federator
from federator.server.services import ClusterService
from federator.store.sqlite import SqliteJobStore

from support import audit_lines


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    issue(c, Identity(IdentityKind.USER, "admin"))
    issue(c, Identity(IdentityKind.CLUSTER, "east-1"))  # the federation's own cluster
    for provider, clusters in (("acme", ("acme-1", "acme-2")), ("beta", ("beta-1",))):
        create_ca(c.provider(provider), common_name=f"{provider} provider CA")
        for name in clusters:
            issue(c.provider(provider), Identity(IdentityKind.CLUSTER, name))
    c.trust.write_text("providers:\n"
                       "  acme: {ca: providers/acme/ca.crt, clusters: ['acme-*']}\n"
                       "  beta: {ca: providers/beta/ca.crt, clusters: ['beta-*']}\n")
    return c


@dataclass
class Served:
    fed: Federator
    target: str
    audit: Path

    def lines(self) -> list[tuple[str, str, str, str]]:
        out = []
        for x in audit_lines(self.audit):
            out.append((x["action"], x["object"]["name"], x["result"], x["rule"]))
        return out


@asynccontextmanager
async def served(certs: CertsDir, tmp_path: Path) -> AsyncIterator[Served]:
    """ClusterService over mTLS, client certificates from the federation's CA and each provider's, judged by
    the trust file as `federator serve --trust` does."""
    trust = load_trust(certs.trust, federation_ca=certs.ca_cert)
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0)
    audit = AuditLog(tmp_path / "audit.jsonl")
    server = grpc.aio.server()
    jobs_pb2_grpc.add_ClusterServiceServicer_to_server(ClusterService(fed, Authenticator(trust=trust), audit=audit),
                                                       server)
    port = server.add_secure_port("127.0.0.1:0",
                                  server_files(certs).server_credentials(client_roots=trust.bundle_pem()))
    await server.start()
    try:
        for name in ("acme-1", "acme-2", "beta-1", "east-1"):
            fed.report(fed.connect(cluster=name, region="r", labels={}),
                       ClusterCapacity(cpu_milli_allocatable=8000, cpu_milli_free=8000))
        yield Served(fed, f"127.0.0.1:{port}", tmp_path / "audit.jsonl")
    finally:
        await server.stop(0)
        audit.close()
        fed.store.close()


def provider_files(certs: CertsDir, provider: str, cluster: str) -> TlsFiles:
    """A provider's cluster certificate, the server checked against the federation's CA (as the CLI does)."""
    own = cluster_files(certs.provider(provider), cluster)
    return TlsFiles(certs.ca_cert, own.cert, own.key)


@asynccontextmanager
async def stub(s: Served, files: TlsFiles) -> AsyncIterator[jobs_pb2_grpc.ClusterServiceStub]:
    async with grpc.aio.secure_channel(s.target, files.channel_credentials()) as ch:
        yield jobs_pb2_grpc.ClusterServiceStub(ch)


async def refused(call: object, request: object, words: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(request)  # type: ignore[operator]
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert words in (err.value.details() or ""), err.value.details()


def test_a_provider_drains_its_own_clusters_and_never_another_providers(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, stub(s, provider_files(certs, "acme", "acme-1")) as acme, \
                stub(s, cluster_files(certs, "east-1")) as east, stub(s, user_files(certs, "admin")) as admin:
            drain = jobs_pb2.DrainClusterRequest
            reply = await acme.Drain(drain(cluster="acme-1", reason="driver upgrade, ticket 4711"))
            assert (reply.changed, reply.drained_by) == (True, "provider acme (cluster acme-1)")
            sibling = await acme.Drain(drain(cluster="acme-2"))  # another cluster the trust file binds to acme
            assert sibling.changed and s.fed.cordons.draining()["acme-2"].by == "provider acme (cluster acme-1)"
            await refused(acme.Drain, drain(cluster="beta-1"),
                          "the certificate of cluster 'acme-1' may drain only the clusters the trust file binds to "
                          "provider 'acme', not 'beta-1': it belongs to provider 'beta' (rule: provider)")
            await refused(acme.Drain, drain(cluster="east-1"), "no provider claims it (rule: provider)")
            await refused(east.Drain, drain(cluster="acme-1"), "may drain only its own cluster 'east-1'")
            assert (await east.Drain(drain(cluster="east-1"))).drained_by == "cluster east-1"
            assert sorted(s.fed.cordons.draining()) == ["acme-1", "acme-2", "east-1"]  # never beta-1

            uncordon = jobs_pb2.UncordonClusterRequest
            await admin.Cordon(jobs_pb2.CordonClusterRequest(cluster="beta-1", reason="investigating"))
            await refused(acme.Uncordon, uncordon(cluster="beta-1"), "may uncordon only the clusters")
            ended = await acme.Uncordon(uncordon(cluster="acme-2"))  # the drain its provider made
            assert (ended.changed, ended.drain_ended, ended.cordoned_by) == \
                (True, True, "provider acme (cluster acme-1)")
            await admin.Cordon(jobs_pb2.CordonClusterRequest(cluster="acme-2", reason="an admin's"))
            await refused(acme.Uncordon, uncordon(cluster="acme-2"),
                          "is cordoned by 'admin', an admin ends that (rule: provider)")
            assert s.fed.cordons.get("acme-2") is not None and s.fed.cordons.get("beta-1") is not None
            await refused(acme.Cordon, jobs_pb2.CordonClusterRequest(cluster="acme-1"),
                          "not the certificate of cluster acme-1")  # Cordon stays an admin's

            provider = [line[:3] for line in s.lines() if line[3] == "provider"]
            assert provider == [("drain", "acme-1", "accepted"), ("drain", "acme-2", "accepted"),
                                ("drain", "beta-1", "refused"), ("drain", "east-1", "refused"),
                                ("drain", "acme-1", "refused"), ("drain", "east-1", "accepted"),
                                ("uncordon", "beta-1", "refused"), ("uncordon", "acme-2", "accepted"),
                                ("uncordon", "acme-2", "refused")]

    asyncio.run(main())


def test_an_admins_cordon_or_drain_takes_a_providers_cordon_over_and_the_provider_cannot_end_it(
        certs: CertsDir, tmp_path: Path) -> None:
    """In 0.7.0's first cut an admin's Cordon of a provider-drained cluster was "already cordoned", the provider's `by`
    kept, so the provider's Uncordon ended what the admin believed was their hold."""
    async def main() -> None:
        async with served(certs, tmp_path) as s, stub(s, provider_files(certs, "acme", "acme-1")) as acme, \
                stub(s, provider_files(certs, "acme", "acme-2")) as acme2, \
                stub(s, user_files(certs, "admin")) as admin:
            drain, uncordon = jobs_pb2.DrainClusterRequest, jobs_pb2.UncordonClusterRequest
            provider = "provider acme (cluster acme-1)"
            assert (await acme.Drain(drain(cluster="acme-1", reason="driver upgrade"))).changed
            held = await admin.Cordon(jobs_pb2.CordonClusterRequest(cluster="acme-1", reason="incident 12"))
            assert (held.changed, held.cordoned_by, held.reason) == (True, "admin", "incident 12")
            cordon = s.fed.cordons.get("acme-1")
            assert cordon is not None and (cordon.by, cordon.reason) == ("admin", "incident 12")
            assert cordon.drain is not None and cordon.drain.by == provider  # the provider's drain goes on
            again = await admin.Cordon(jobs_pb2.CordonClusterRequest(cluster="acme-1", reason="other words"))
            assert (again.changed, again.cordoned_by, again.reason) == (False, "admin", "incident 12")
            for certificate in (acme, acme2):  # any of the provider's certificates
                await refused(certificate.Uncordon, uncordon(cluster="acme-1"),
                              "cluster 'acme-1' is cordoned by 'admin', an admin ends that (rule: provider)")
            again_drain = await acme.Drain(drain(cluster="acme-1", reason="take it back"))
            assert (again_drain.changed, again_drain.drained_by) == (False, provider)
            assert s.fed.cordons.get("acme-1") == cordon  # a provider's drain never takes an admin's cordon over

            assert (await acme2.Drain(drain(cluster="acme-2", reason="rack swap"))).changed
            took = await admin.Drain(drain(cluster="acme-2", reason="hold it"))
            assert (took.changed, took.drained_by, took.reason) == \
                (True, "provider acme (cluster acme-2)", "rack swap")  # the drain that holds goes on
            cordon2 = s.fed.cordons.get("acme-2")
            assert cordon2 is not None and (cordon2.by, cordon2.reason) == ("admin", "hold it")
            await refused(acme2.Uncordon, uncordon(cluster="acme-2"), "is cordoned by 'admin'")

            ended = await admin.Uncordon(uncordon(cluster="acme-1"))
            assert (ended.changed, ended.drain_ended, ended.cordoned_by) == (True, True, "admin")
            assert s.fed.cordons.get("acme-1") is None and "acme-2" in s.fed.cordons.draining()

            lines = audit_lines(s.audit)
            said = [(x["action"], x["object"]["name"], x["result"], x["rule"], x["message"]) for x in lines]
            assert said == [
                ("drain", "acme-1", "accepted", "provider", "0 job(s) to move"),
                ("cordon", "acme-1", "accepted", "admin", f"took over the cordon of {provider}"),
                ("cordon", "acme-1", "accepted", "admin", "already cordoned"),
                ("uncordon", "acme-1", "refused", "provider", said[3][4]),
                ("uncordon", "acme-1", "refused", "provider", said[4][4]),
                ("drain", "acme-1", "accepted", "provider", "already drained"),
                ("drain", "acme-2", "accepted", "provider", "0 job(s) to move"),
                ("drain", "acme-2", "accepted", "admin",
                 "0 job(s) to move; took over the cordon of provider acme (cluster acme-2)"),
                ("uncordon", "acme-2", "refused", "provider", said[8][4]),
                ("uncordon", "acme-1", "accepted", "admin", "")]

    asyncio.run(main())


@pytest.mark.parametrize(("by", "made"), [
    ("provider acme (cluster acme-1)", True), ("cluster east-1", True),
    ("admin", False), ("kubectl", False), ("anonymous", False), ("alice.smith-2", False),
    ("provider acme", False),  # a provider's maintenance, never held as a cordon an admin takes over
], ids=lambda v: str(v))
def test_provider_made_tells_a_providers_by_from_any_user_name(by: str, made: bool) -> None:
    assert provider_rights.provider_made(by) is made


def test_the_refusals_of_a_cluster_not_its_own_share_one_wording() -> None:
    """Drain, Uncordon and a usage `cluster` filter say the same "not its own" words (`not_its_own`), only the
    verb differs; Uncordon's is checked here since the service asks `drain_refusal` first and never reaches it."""
    acme, east = provider_rights.ProviderCaller("acme-1", "acme"), provider_rights.ProviderCaller("east-1")
    assert provider_rights.uncordon_refusal(acme, "beta-1", "admin", None) == (
        "the certificate of cluster 'acme-1' may uncordon only the clusters the trust file binds to provider "
        "'acme', not 'beta-1': no provider claims it (rule: provider)")
    assert provider_rights.drain_refusal(east, "acme-1", None) == (
        "the certificate of cluster 'east-1' may drain only its own cluster 'east-1' (a certificate of the "
        "federation's CA speaks for that one only), not 'acme-1': no provider claims it (rule: provider)")
    assert usage_refusal(east, by="", queue="", cluster="acme-1", trust=None) == (
        "the certificate of cluster 'east-1' may read the usage only of its own cluster 'east-1' (a certificate of "
        "the federation's CA speaks for that one only), not of 'acme-1': no provider claims it (rule: provider)")
