"""A MemberCluster whose spec.region contradicts the region its certificate binds, on a real API server (0.16.0).

Before, every Hello of its agent was refused, each refusal a WARNING naming one half of the problem, and `kubectl get
mc` said Partitioned, then Lost, with no word of why. Now (server/region_mismatch.py) the refusal names both regions,
whence each comes and both fixes; the federator logs it once; the MemberCluster carries the condition RegionMismatch
(kept by the CRD's status schema: a field it lacks is pruned without a word) and one Warning Event, which `kubectl
describe mc` lists; and a Hello admitted once the two agree clears the condition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.backends.kube.api import EVENTS, MEMBER_CLUSTERS, KubeApi
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.events import EventRecorder
from federator.backends.kube.resources import member_cluster
from federator.backends.kube.store import KubeJobStore
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, RevocationList
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import TlsFiles, server_files
from federator.server.federator import Federator
from federator.server.services import AgentService

from kube_support import Testbed, host_bed
from support import until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "region-mismatch"
MEMBER = "north-1"
host = host_bed(NAMESPACE)


@asynccontextmanager
async def agent_port(fed: Federator, certs: CertsDir, audit: AuditLog) -> AsyncIterator[str]:
    """The AgentService of a Kubernetes-mode federator over mTLS, as `federator serve --kubeconfig` runs it."""
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(
        AgentService(fed, Authenticator(revocations=RevocationList(None)), audit=audit, kube=True), server)
    port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials(require_client_auth=True))
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def hello(target: str, certs: CertsDir, region: str) -> grpc.aio.AioRpcError | None:
    """One agent stream saying Hello for MEMBER in `region` with its own certificate: None if welcomed."""
    me = Identity(IdentityKind.CLUSTER, MEMBER)
    creds = TlsFiles(certs.ca_cert, certs.cert(me), certs.key(me)).channel_credentials()
    async with grpc.aio.secure_channel(target, creds) as ch:
        call = agent_pb2_grpc.AgentServiceStub(ch).Connect()
        await call.write(agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster=MEMBER, region=region)))
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as err:
            return err
        assert first.WhichOneof("body") == "welcome", first
        call.cancel()
        return None


def test_a_member_clusters_region_against_its_certificates_is_a_condition_and_one_event(
        host: Testbed, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    certs = CertsDir(tmp_path / "certs")
    init_ca(certs)
    issue(certs, Identity(IdentityKind.CLUSTER, MEMBER), region="north")  # its provider bound it to north

    async def main() -> None:
        api = KubeApi.connect(host.host.kubeconfig)
        # The admin's record, written before the agent first connects: east
        api.create(MEMBER_CLUSTERS, member_cluster(MEMBER, region="east", labels={}))
        events = EventRecorder(api, instance="federator-test")
        store = KubeJobStore(api, namespace=NAMESPACE, events=events)
        fed = Federator(store=store)
        ctl = FederatedJobController(fed, api, store, namespace=NAMESPACE)
        await ctl.adopt_members()
        assert fed.clusters[MEMBER].region == "east"
        audit = AuditLog(tmp_path / "audit.jsonl")
        async with agent_port(fed, certs, audit) as target:
            for claimed in ("north", "east", "north"):  # the agent's region (0.16.0: its certificate's), or --region
                err = await hello(target, certs, claimed)
                assert err is not None and err.code() is grpc.StatusCode.PERMISSION_DENIED, err
                assert err.details() == (
                    f"hello.region: cluster {MEMBER!r} is in region 'east' by its MemberCluster's spec.region, and "
                    "its certificate binds region 'north'; the two must agree, so no Hello of it is admitted: if it "
                    "is in 'east', issue it a certificate with --region east; if it is in 'north', an admin stops "
                    f"its agent and, once the cluster is Lost, forgets it (`kubectl delete mc {MEMBER}`), and the "
                    "agent's next Hello registers it in 'north'")
                await ctl.write_members()

            status = api.get(MEMBER_CLUSTERS, MEMBER)["status"]
            (condition,) = status["conditions"]
            assert (condition["type"], condition["status"], condition["reason"]) == (
                "RegionMismatch", "True", "BoundElsewhere")
            assert "'east' by its MemberCluster's spec.region" in condition["message"]
            assert "its certificate binds region 'north'" in condition["message"]
            events.close()

            def warned() -> list[dict[str, object]]:
                return [e for e in api.list(EVENTS, "default", field_selector=f"involvedObject.name={MEMBER}")["items"]
                        if e["reason"] == "RegionMismatch"]

            await until(lambda: bool(warned()), timeout=60)
            (event,) = warned()  # three refusals, three writes: one Event
            assert (event["type"], event["involvedObject"]["kind"]) == ("Warning", "MemberCluster")
            assert event["involvedObject"]["uid"] == api.get(MEMBER_CLUSTERS, MEMBER)["metadata"]["uid"]
            said = [r for r in caplog.records if "said once until it changes" in r.getMessage()]
            assert len(said) == 1, [r.getMessage() for r in caplog.records]

            # The admin's fix, the cluster being in east after all: a certificate bound to east. Admitted, and the
            # condition goes with the next write.
            issue(certs, Identity(IdentityKind.CLUSTER, MEMBER), region="east")
            assert await hello(target, certs, "east") is None
            await until(lambda: fed.clusters[MEMBER].region_mismatch is None, timeout=30)
            await ctl.write_members()
            assert "conditions" not in api.get(MEMBER_CLUSTERS, MEMBER)["status"]
        audit.close()
        api.delete(MEMBER_CLUSTERS, MEMBER)

    with caplog.at_level(logging.WARNING, logger="federator.server"):
        asyncio.run(main())
