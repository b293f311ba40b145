"""Kubernetes mode: a gRPC Submit may make its FederatedJob only in a namespace the queue's namespaceSelector
selects, as a kubectl-made one; never in kube-* nor the federator's own namespace.

Red-team finding: mallory, over gRPC, submitted to `research-b` (which selects only namespaces labelled
federator.io/tenant=team-b) with spec.namespace team-a, kube-system and federator-system, and the federator
made the FederatedJobs there. The real gRPC edge (mTLS, the tenancy policy) over a fake host API server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.backends.kube.api import KubeError, NotFoundError
from federator.backends.kube.namespace_gate import HostNamespaces
from federator.backends.kube.options import KubeOptions
from federator.jobfile import parse_job
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, RevocationList
from federator.security.authz import Authorizer, tenancy_from_document
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import server_files, user_files
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

POLICY = {
    "tenancy": {"admins": {"users": ["admin"]}},
    "queues": {
        "research-a": {"namespaceSelector": {"matchLabels": {"federator.io/tenant": "team-a"}}},
        "research-b": {"namespaceSelector": {"matchLabels": {"federator.io/tenant": "team-b"}}},
        "open": {"weight": 1},
    },
}
NAMESPACES = {"team-a": {"federator.io/tenant": "team-a"}, "team-b": {"federator.io/tenant": "team-b"},
              "plain": {}, "kube-system": {}, "federator-system": {}}


class Namespaces:
    """The host API server, as far as namespaces go (`away`: every request fails)."""

    server = "https://host.invalid"

    def __init__(self) -> None:
        self.away: KubeError | None = None
        self.reads = 0

    def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        self.reads += 1
        if self.away is not None:
            raise self.away
        if name not in NAMESPACES:
            raise NotFoundError(404, f'namespaces "{name}" not found')
        return {"metadata": {"name": name, "labels": NAMESPACES[name]}}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("mallory", "admin"):
        issue(c, Identity(IdentityKind.USER, user))
    return c


class Served:
    def __init__(self, fed: Federator, target: str, api: Namespaces) -> None:
        self.fed, self.target, self.api = fed, target, api


@asynccontextmanager
async def client(s: Served, certs: CertsDir, user: str) -> AsyncIterator[jobs_pb2_grpc.JobServiceStub]:
    async with grpc.aio.secure_channel(s.target, user_files(certs, user).channel_credentials()) as ch:
        yield jobs_pb2_grpc.JobServiceStub(ch)


def spec(name: str, *, queue: str, namespace: str) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"kind": "training", "queue": queue, "resources": {"cpu": "1"}}})))


async def _serve(certs: CertsDir, tmp_path: Path) -> tuple[grpc.aio.Server, Served]:
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0)
    authz = Authorizer(tenancy_from_document(POLICY))
    api = Namespaces()
    gate = HostNamespaces(api, authz, own=["federator-system"])  # type: ignore[arg-type]
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(
        JobService(fed, Authenticator(revocations=RevocationList(None)), authz=authz,
                   audit=AuditLog(tmp_path / "audit.jsonl"), namespaces=gate), server)
    port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials())
    await server.start()
    return server, Served(fed, f"127.0.0.1:{port}", api)


async def _refused(stub: jobs_pb2_grpc.JobServiceStub, name: str, queue: str, namespace: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Submit(spec(name, queue=queue, namespace=namespace))
    return err.value


@pytest.mark.parametrize(("queue", "namespace", "rule"), [
    ("research-b", "team-a", "namespace-selector"),
    ("research-b", "plain", "namespace-selector"),
    ("research-b", "nowhere", "namespace-selector"),  # no such namespace: no labels, so not selected
    ("research-b", "kube-system", "reserved-namespace"),
    ("open", "kube-public", "reserved-namespace"),
    ("open", "federator-system", "reserved-namespace"),
], ids=["other-tenant", "unlabelled", "missing", "kube-system", "kube-star-open-queue", "federators-own"])
def test_a_grpc_job_is_refused_a_namespace_its_queue_does_not_select_or_a_reserved_one(
        certs: CertsDir, tmp_path: Path, queue: str, namespace: str, rule: str) -> None:
    async def main() -> None:
        server, s = await _serve(certs, tmp_path)
        try:
            for user in ("mallory", "admin"):  # the rule is the namespace's, not the caller's: admins too
                async with client(s, certs, user) as stub:
                    err = await _refused(stub, f"j-{user}", queue, namespace)
                said = err.details() or ""
                assert err.code() == grpc.StatusCode.PERMISSION_DENIED, said
                assert said.startswith(f"spec.namespace: {rule}"), said
                assert repr(namespace) in said, said
                if rule == "namespace-selector":
                    assert repr(queue) in said and "federator.io/tenant=team-b" in said, said
            assert s.fed.jobs == {}
        finally:
            await server.stop(0)

    asyncio.run(main())


def test_a_grpc_job_in_a_namespace_its_queue_selects_or_under_an_open_queue_is_accepted(
        certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        server, s = await _serve(certs, tmp_path)
        try:
            async with client(s, certs, "mallory") as stub:
                assert (await stub.Submit(spec("b", queue="research-b", namespace="team-b"))).job.spec.namespace \
                    == "team-b"
                reads = s.api.reads
                await stub.Submit(spec("o", queue="open", namespace="plain"))
                assert s.api.reads == reads  # no selector applies: the namespace is not read
                # the host API server away: UNAVAILABLE (retry), not a verdict, and nothing stored
                s.api.away = KubeError(0, "connection refused")
                err = await _refused(stub, "later", "research-b", "team-b")
                assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
                assert "spec.namespace" in (err.details() or "") and "research-b" in (err.details() or "")
            assert sorted(j.spec.name for j in s.fed.jobs.values()) == ["b", "o"]
        finally:
            await server.stop(0)

    asyncio.run(main())


def test_the_federators_own_namespace_is_its_pods_or_its_named_lease_namespace_not_a_fallback() -> None:
    assert "default" not in KubeOptions(lease_namespace="default").own_namespaces()
    assert "fed-ns" in KubeOptions(lease_namespace="fed-ns", lease_namespace_given=True).own_namespaces()
