"""Every PERMISSION_DENIED (and UNAUTHENTICATED) carries a google.rpc.ErrorInfo naming the rule, over real mTLS.

Outside portal QA (m3, re-test N4): "the user may not use queue globex" and "the portal's delegate grant is wrong"
arrived as bare PERMISSION_DENIED, told apart only by words, which the contract forbids a client to parse. Each
refusal of the job, cluster, identity and usage services now says its rule as ErrorInfo.reason (domain
federator.io), the rule's audit name as metadata["rule"], and the object refused as the caller sent it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from federator.accounting import SqliteUsageStore
from federator.api.v1 import identity_pb2, identity_pb2_grpc, jobs_pb2, jobs_pb2_grpc, usage_pb2, usage_pb2_grpc
from federator.scheduler import Scheduler
from federator.scheduler.policy import policy_from_document
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, Token
from federator.security.authz import Authorizer, tenancy_from_document
from federator.security.pki import CertsDir
from federator.security.tls import server_files
from federator.server.cluster_service import ClusterService
from federator.server.federator import Federator
from federator.server.identity_service import IdentityService
from federator.server.job_service import JobService
from federator.server.usage_service import UsageService
from federator.store import SqliteJobStore
from tests.security import test_delegation
from tests.security.test_delegation import Served, as_user, certs, channel, spec  # noqa: F401  (certs: the fixture)

VIEW_ONLY = """
tenancy:
  admins: {users: [admin]}
  groups:
    acme: {users: [carol, alice], jobs: view}
  delegates:
    portal: {users: ["*"], groups: [acme]}
queues:
  acme: {access: {groups: [acme]}, namespaces: [acme-jobs]}
  open: {weight: 1}
"""


@asynccontextmanager
async def served(certs: CertsDir, tmp_path: Path, policy: str = test_delegation.POLICY) -> AsyncIterator[Served]:  # noqa: F811
    """The four user-facing services over mTLS and a token port, as `federator serve` registers them."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0,
                    scheduler=Scheduler(policy_from_document(yaml.safe_load(policy))))
    auth = Authenticator(tokens=[Token("t-portal", "portal")])
    authz = Authorizer(tenancy_from_document(yaml.safe_load(policy)))
    audit = AuditLog(tmp_path / "audit.jsonl")
    usage = SqliteUsageStore(Path(":memory:"))
    server = grpc.aio.server()
    clusters = ClusterService(fed, auth, authz=authz, audit=audit)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, auth, authz=authz, audit=audit), server)
    jobs_pb2_grpc.add_ClusterServiceServicer_to_server(clusters, server)
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageService(clusters, usage), server)
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityService(clusters), server)
    port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials())
    token_port = server.add_secure_port("127.0.0.1:0",
                                        server_files(certs).server_credentials(require_client_auth=False))
    await server.start()
    try:
        yield Served(fed, authz, f"127.0.0.1:{port}", f"127.0.0.1:{token_port}", tmp_path / "audit.jsonl", usage)
    finally:
        await server.stop(0)
        audit.close()
        fed.store.close()


async def info(call: Awaitable[object], code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED) -> \
        tuple[str, dict[str, str]]:
    """The ErrorInfo reason and metadata a client decodes from the refusal's grpc-status-details-bin."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value
    status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
    assert status is not None, f"{err.value.details()!r} carries no status details"
    found = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(found) for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR))
    assert found.domain == "federator.io"
    assert status.message == err.value.details()
    return found.reason, dict(found.metadata)


def test_each_job_api_refusal_names_its_rule_and_object(certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    async def main() -> None:
        async with served(certs, tmp_path, VIEW_ONLY) as s, channel(s, certs, "bob") as b, \
                channel(s, certs, "carol") as c, channel(s, certs, "alice") as a, channel(s, certs, "mallory") as m, \
                channel(s, certs, "portal") as p:
            bob, carol = jobs_pb2_grpc.JobServiceStub(b), jobs_pb2_grpc.JobServiceStub(c)
            assert await info(bob.Submit(spec("x", queue="acme"))) == (
                "QUEUE_ACCESS", {"rule": "queue-access", "field": "spec.queue", "queue": "acme"})
            assert await info(bob.Submit(spec("x", queue="nope"))) == (
                "UNDECLARED_QUEUE", {"rule": "undeclared-queue", "field": "spec.queue", "queue": "nope"})
            elsewhere = spec("x", queue="acme")
            elsewhere.spec.namespace = "globex-jobs"
            assert await info(carol.Submit(elsewhere)) == (
                "QUEUE_NAMESPACES", {"rule": "queue-namespaces", "field": "spec.namespace",
                                     "namespace": "globex-jobs", "queue": "acme"})
            job = (await jobs_pb2_grpc.JobServiceStub(a).Submit(spec("alices", queue="acme"))).job
            assert await info(carol.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id))) == (
                "GROUP_VIEW_ONLY", {"rule": "group", "job_id": job.job_id, "action": "cancel"})
            # a delegate's refusals, on every service: the key at fault and the user asked for
            mallory = (jobs_pb2_grpc.JobServiceStub(m), identity_pb2_grpc.IdentityServiceStub(m),
                       usage_pb2_grpc.UsageServiceStub(m), jobs_pb2_grpc.ClusterServiceStub(m))
            for call in (mallory[0].Submit(spec("y"), metadata=as_user("alice")),
                         mallory[1].WhoAmI(identity_pb2.WhoAmIRequest(), metadata=as_user("alice")),
                         mallory[2].Get(usage_pb2.UsageRequest(), metadata=as_user("alice")),
                         mallory[3].List(jobs_pb2.ListClustersRequest(), metadata=as_user("alice"))):
                assert await info(call) == ("DELEGATE", {"rule": "delegate", "key": "x-federator-on-behalf-of",
                                                         "on_behalf_of": "alice"})
            portal = jobs_pb2_grpc.JobServiceStub(p)
            assert await info(portal.Submit(spec("z"), metadata=as_user("alice", "globex"))) == (
                "DELEGATE", {"rule": "delegate", "key": "x-federator-on-behalf-of-groups", "on_behalf_of": "alice"})
    asyncio.run(main())


def test_cluster_api_and_credential_refusals_name_theirs(certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    async def main() -> None:
        async with served(certs, tmp_path) as s, channel(s, certs, "bob") as b, \
                channel(s, certs, cluster="east-1") as e, channel(s, certs, token="not-a-token") as t:
            bob = jobs_pb2_grpc.ClusterServiceStub(b)
            assert await info(bob.Cordon(jobs_pb2.CordonClusterRequest(cluster="east-1"))) == (
                "ADMIN_ONLY", {"rule": "admin", "action": "cordon", "cluster": "east-1"})
            assert await info(bob.Forget(jobs_pb2.ForgetClusterRequest(cluster="east-1"))) == (
                "ADMIN_ONLY", {"rule": "admin", "action": "forget", "cluster": "east-1"})
            assert await info(bob.Drain(jobs_pb2.DrainClusterRequest(cluster="east-1"))) == (
                "ADMIN_ONLY", {"rule": "admin", "action": "drain", "cluster": "east-1"})
            east = jobs_pb2_grpc.ClusterServiceStub(e)
            assert await info(east.Drain(jobs_pb2.DrainClusterRequest(cluster="west-2"))) == (
                "PROVIDER_SCOPE", {"rule": "provider", "action": "drain", "cluster": "west-2"})
            assert await info(jobs_pb2_grpc.JobServiceStub(e).Get(jobs_pb2.GetJobRequest(job_id="j"))) == (
                "CREDENTIAL_KIND", {})
            assert await info(jobs_pb2_grpc.JobServiceStub(t).Get(jobs_pb2.GetJobRequest(job_id="j")),
                              grpc.StatusCode.UNAUTHENTICATED) == ("UNAUTHENTICATED", {})
    asyncio.run(main())
