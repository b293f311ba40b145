"""MemberCluster objects tell the truth about clusters no federator hears from; the federator deletes one only
when it forgot that Lost cluster (server/leases.py), and forgets a Lost cluster whose object an operator deleted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from federator.backends.kube.api import MEMBER_CLUSTERS, NotFoundError, Resource
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.store import KubeJobStore
from federator.model import AgentFeature, ClusterCapacity, ClusterState
from federator.server.clusters import awaited
from federator.server.federator import Federator
from federator.store import SqliteJobStore


class FakeApi:
    """MemberClusters in memory; records every write."""

    server = "https://host.invalid"

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = {o["metadata"]["name"]: o for o in objects}
        self.writes: list[tuple[str, str, dict[str, Any]]] = []

    def list(self, res: Resource, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        assert res == MEMBER_CLUSTERS
        return {"metadata": {"resourceVersion": "1"}, "items": list(self.objects.values())}

    def patch(self, res: Resource, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        if name not in self.objects:
            raise NotFoundError(404, f"memberclusters {name} not found")
        self.writes.append(("patch/" + (subresource or ""), name, body))
        obj = self.objects[name]
        for key, value in body.items():
            obj[key] = {**(obj.get(key) or {}), **value}
        return obj

    def create(self, res: Resource, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self.writes.append(("create", body["metadata"]["name"], body))
        self.objects[body["metadata"]["name"]] = body
        return body

    def delete(self, res: Resource, name: str, namespace: str | None = None, **_: Any) -> None:
        self.writes.append(("delete", name, {}))
        self.objects.pop(name, None)


def member(name: str, state: str, *, region: str = "east") -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name},
            "spec": {"region": region, "labels": {"tier": "gold"}},
            "status": {"state": state, "connected": state == "Ready", "lastReportTime": "2025-01-02T03:04:05.000000Z",
                       "acceleratorsFree": 8, "acceleratorsTotal": 16}}


@pytest.fixture
def now() -> list[float]:
    return [1_000_000.0]


def controller(tmp_path: Path, api: FakeApi, now: list[float],
               forget_lost_after: float = 86_400.0) -> tuple[Federator, FederatedJobController]:
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), clock=lambda: now[0], lost_after_seconds=60.0,
                    forget_lost_after=forget_lost_after)
    ctl = FederatedJobController(fed, api, KubeJobStore(api), clock=lambda: now[0])  # type: ignore[arg-type]
    return fed, ctl


def state_of(api: FakeApi, name: str) -> tuple[str, bool]:
    status = api.objects[name]["status"]
    return status["state"], status["connected"]


def test_a_cluster_whose_agent_has_not_come_back_is_partitioned_then_lost_never_a_stale_ready(
        tmp_path: Path, now: list[float]) -> None:
    api = FakeApi([member("ghost", "Ready"), member("gone", "Lost", region="west")])
    fed, ctl = controller(tmp_path, api, now)
    asyncio.run(ctl.adopt_members())
    assert fed.clusters["ghost"].state is ClusterState.PARTITIONED
    assert fed.clusters["gone"].state is ClusterState.LOST
    assert (fed.clusters["gone"].region, fed.clusters["gone"].labels) == ("west", {"tier": "gold"})

    asyncio.run(ctl.write_members())
    assert state_of(api, "ghost") == ("Partitioned", False)
    assert state_of(api, "gone") == ("Lost", False)
    assert api.objects["ghost"]["status"]["lastReportTime"] == "2025-01-02T03:04:05.000000Z"  # as last heard

    now[0] += 61  # past --lost-after with no agent
    fed.check_leases()
    asyncio.run(ctl.write_members())
    assert state_of(api, "ghost") == ("Lost", False)
    assert not [w for w in api.writes if w[0] == "delete"]  # history: kept (until forgotten, a day later)


def test_a_cluster_that_connects_is_ready_again(tmp_path: Path, now: list[float]) -> None:
    api = FakeApi([member("ghost", "Lost")])
    fed, ctl = controller(tmp_path, api, now)
    asyncio.run(ctl.adopt_members())
    rec = fed.connect(cluster="ghost", region="east", labels={})
    fed.report(rec, ClusterCapacity())
    asyncio.run(ctl.write_members())
    assert state_of(api, "ghost") == ("Ready", True)


def test_a_cluster_whose_agent_cannot_reach_its_api_says_so_until_it_can(tmp_path: Path, now: list[float]) -> None:
    """QA F5: Partitioned with the agent's words in status.message (server/member_health.py), gone once Ready."""
    api = FakeApi([])
    fed, ctl = controller(tmp_path, api, now)
    rec = fed.connect(cluster="member-b", region="east", labels={})
    fed.report(rec, ClusterCapacity())
    fed.report(rec, ClusterCapacity(), unreachable="GET /readyz: read timed out")
    asyncio.run(ctl.write_members())
    assert state_of(api, "member-b") == ("Partitioned", True)
    assert api.objects["member-b"]["status"]["message"] == (
        "member-b's agent cannot reach its API server since 1970-01-12T13:46:40Z (GET /readyz: read timed out)")
    fed.report(rec, ClusterCapacity())
    asyncio.run(ctl.write_members())
    assert state_of(api, "member-b") == ("Ready", True)
    assert api.objects["member-b"]["status"]["message"] is None  # null: the merge patch removes it


def test_a_known_cluster_is_not_adopted_over(tmp_path: Path, now: list[float]) -> None:
    api = FakeApi([member("member-a", "Lost")])
    fed, ctl = controller(tmp_path, api, now)
    fed.connect(cluster="member-a", region="east", labels={})
    asyncio.run(ctl.adopt_members())
    assert fed.clusters["member-a"].connected


@pytest.mark.parametrize(("state", "recreated"), [
    pytest.param("Partitioned", True, id="partitioned-is-recreated"),
    pytest.param("Lost", False, id="lost-stays-deleted"),
])
def test_an_operator_may_delete_a_lost_clusters_object(tmp_path: Path, now: list[float], state: str,
                                                       recreated: bool) -> None:
    api = FakeApi([member("old", state)])
    fed, ctl = controller(tmp_path, api, now)
    asyncio.run(ctl.adopt_members())
    del api.objects["old"]  # kubectl delete mc old
    asyncio.run(ctl.write_members())
    assert ("old" in api.objects) == recreated


def test_a_member_clusters_region_is_the_record_and_an_agent_claiming_another_is_refused(tmp_path: Path,
                                                                                          now: list[float]) -> None:
    """spec.region is the cluster's recorded region (server/cluster_regions.py; outside compliance QA C2): written
    by an admin before the agent first connects, it binds; an agent claiming another is refused over real gRPC,
    told to delete the object (no `federator forget` in Kubernetes mode), and the object keeps its region."""
    import grpc

    from federator.api.v1 import agent_pb2, agent_pb2_grpc
    from federator.security.auth import Authenticator
    from federator.server.services import AgentService

    api = FakeApi([member("acme-1", "Lost", region="west")])
    fed, ctl = controller(tmp_path, api, now)
    asyncio.run(ctl.adopt_members())

    async def claim(region: str) -> grpc.aio.AioRpcError | None:
        server = grpc.aio.server()
        agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed, Authenticator(insecure=True), kube=True),
                                                          server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                hello = agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster="acme-1", region=region))
                call = agent_pb2_grpc.AgentServiceStub(ch).Connect(iter([hello]))
                try:
                    await call.read()
                    return None
                except grpc.aio.AioRpcError as err:
                    return err
                finally:
                    call.cancel()
        finally:
            await server.stop(0)
            fed.cycles.close()

    refused = asyncio.run(claim("east"))
    assert refused is not None and refused.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "registered in region 'west'" in (refused.details() or "")
    assert "kubectl delete mc acme-1" in (refused.details() or "")
    asyncio.run(ctl.write_members())
    assert fed.clusters["acme-1"].region == "west" and api.objects["acme-1"]["spec"]["region"] == "west"
    assert asyncio.run(claim("west")) is None  # its recorded region: welcomed


def test_the_objects_region_wins_over_an_agent_that_connected_before_the_objects_were_read(
        tmp_path: Path, now: list[float]) -> None:
    """gRPC serves before a new federator reads the MemberClusters: an agent that connected in between claiming
    another region has its stream ended (PERMISSION_DENIED, the words its next Hello gets) and the record takes the
    object's region, which is written back, not the agent's."""
    from federator.server.outbox import EndCode

    api = FakeApi([member("acme-1", "Ready", region="west")])
    fed, ctl = controller(tmp_path, api, now)
    rec = fed.connect(cluster="acme-1", region="east", labels={})
    asyncio.run(ctl.adopt_members())
    assert rec.region == "west"
    ending = rec.outbox.ending
    assert ending is not None and ending.code is EndCode.PERMISSION_DENIED
    assert "registered in region 'west', and its agent claims 'east'" in ending.message
    assert fed.metrics.registry.get_sample_value("federator_agent_region_changes_refused_total",
                                                 {"cluster": "acme-1"}) == 1.0
    fed.report(rec, ClusterCapacity())
    asyncio.run(ctl.write_members())
    assert api.objects["acme-1"]["spec"]["region"] == "west"


def test_deleting_a_lost_clusters_object_forgets_the_cluster(tmp_path: Path, now: list[float]) -> None:
    """docs/kubernetes.md: "To forget a cluster for good, kubectl delete mc NAME once it is Lost"; the
    federator kept it in its registry, its scrape and `get clusters` until it restarted."""
    api = FakeApi([member("old", "Lost"), member("kept", "Lost")])
    fed, ctl = controller(tmp_path, api, now)
    asyncio.run(ctl.adopt_members())
    asyncio.run(ctl.write_members())
    del api.objects["old"]  # kubectl delete mc old
    now[0] += 31  # the next rewrite of its status finds it gone
    asyncio.run(ctl.write_members())
    assert set(fed.clusters) == {"kept"}
    assert "old" not in api.objects


def test_a_cluster_the_federator_forgets_by_itself_loses_its_object(tmp_path: Path, now: list[float]) -> None:
    api = FakeApi([member("retired", "Lost")])
    fed, ctl = controller(tmp_path, api, now, forget_lost_after=600.0)
    asyncio.run(ctl.adopt_members())
    asyncio.run(ctl.write_members())
    now[0] += 601
    fed.check_leases()
    assert "retired" not in fed.clusters
    asyncio.run(ctl.write_members())
    assert "retired" not in api.objects and ("delete", "retired", {}) in api.writes


def test_kubectl_get_mc_shows_a_providers_maintenance_and_a_clamped_report(tmp_path: Path, now: list[float]) -> None:
    """A cluster its provider has in maintenance, whose report was clamped to the provider's maxAccelerators, was
    plain Ready in `kubectl get mc` (only `federator get clusters` said Ready,Cordoned,OverBound). The status says
    both, named as jobs.proto's ClusterStatus, and the State column's field the words `get clusters` shows; both
    go (null: the merge patch removes them) once they end."""
    from federator.server.over_bound import clamped_message

    api = FakeApi([])
    fed, ctl = controller(tmp_path, api, now)
    rec = fed.connect(cluster="member-b", region="east", labels={})
    fed.report(rec, ClusterCapacity())
    fed.cordons.maintenance.reported("member-b", "driver upgrade, ticket 4711", provider="acme", now=1_700_000_000.0)
    rec.over_bound = clamped_message(reported_milli=68_000, bound=64, provider="acme")  # as AgentService sets it
    asyncio.run(ctl.write_members())
    status = api.objects["member-b"]["status"]
    assert (status["state"], status["stateSummary"]) == ("Ready", "Ready,Cordoned,OverBound")
    assert (status["maintenance"], status["maintenanceSince"]) == ("driver upgrade, ticket 4711",
                                                                   "2023-11-14T22:13:20.000000Z")
    assert status["overBound"].startswith("capacity.accelerator_pools: 68 accelerators in all")

    fed.cordons.maintenance.reported("member-b", "", provider="acme", now=now[0])
    rec.over_bound = ""
    asyncio.run(ctl.write_members())
    status = api.objects["member-b"]["status"]
    assert status["stateSummary"] == "Ready"
    assert (status["maintenance"], status["maintenanceSince"], status["overBound"]) == (None, None, None)


def test_an_admins_cordon_makes_the_state_column_say_cordoned_too(tmp_path: Path, now: list[float]) -> None:
    """`get clusters` says Ready,Cordoned for either; the spec's Cordoned column says whose (the admin's)."""
    from federator.model.cordon import Cordon

    api = FakeApi([])
    fed, ctl = controller(tmp_path, api, now)
    fed.report(fed.connect(cluster="member-a", region="east", labels={}), ClusterCapacity())
    asyncio.run(fed.cordons.cordon("member-a", Cordon("admin", now[0], "rack 7")))
    asyncio.run(ctl.write_members())
    status = api.objects["member-a"]["status"]
    assert status["stateSummary"] == "Ready,Cordoned" and status["maintenance"] is None


def test_what_the_status_keeps_of_a_member_is_read_back_and_written_again(tmp_path: Path, now: list[float]) -> None:
    """Hello features, the certificate's notAfter, the Resizes owed and the Lost time (backends/kube/member_status.py),
    as the standalone members store keeps them; a status from before the fields, or one written by hand with values
    of the wrong type, reads as none."""
    kept = {"features": ["resize", "teleport"], "certificateNotAfter": "2030-03-17T17:46:40.000000Z",
            "resizesOwed": ["serve.g2.ghost"]}
    api = FakeApi([member("ghost", "Partitioned"), member("gone", "Lost", region="west"),
                   member("old", "Partitioned"), member("odd", "Partitioned")])
    api.objects["ghost"]["status"].update(kept)
    api.objects["gone"]["status"]["lostAt"] = "2025-01-02T03:04:05.000000Z"
    api.objects["odd"]["status"].update({"features": "resize", "resizesOwed": [3, None], "lostAt": 7})
    api.objects["early"] = member("early", "Ready")
    api.objects["early"]["status"].update(kept)
    fed, ctl = controller(tmp_path, api, now)
    early = fed.connect(cluster="early", region="east", labels={})  # its agent is back first, without "resize"
    api.objects["held"] = member("held", "Ready")
    api.objects["held"]["status"].update(kept)
    fed.clusters["held"] = awaited("held", region="east", labels={}, now=now[0])  # expected back for its jobs
    asyncio.run(ctl.adopt_members())
    assert fed.clusters["held"].features == frozenset({AgentFeature.RESIZE})
    # Its own Hello and certificate stand; the Resizes it owed are taken, for its re-sync to settle.
    assert (early.features, early.certificate_not_after, early.resizes_owed) == (frozenset(), 0.0, {"serve.g2.ghost"})
    ghost, gone = fed.clusters["ghost"], fed.clusters["gone"]
    assert (ghost.features, ghost.certificate_not_after, ghost.resizes_owed) == (
        frozenset({AgentFeature.RESIZE}), 1_900_000_000.0, {"serve.g2.ghost"})
    assert gone.lost_at == 1_735_787_045.0
    for name in ("old", "odd"):
        rec = fed.clusters[name]
        assert (rec.features, rec.certificate_not_after, rec.resizes_owed) == (frozenset(), 0.0, set())
    asyncio.run(ctl.write_members())
    status = api.objects["ghost"]["status"]
    assert {k: status[k] for k in kept} == {**kept, "features": ["resize"]}  # what this federator knows
    assert status["lostAt"] is None and api.objects["gone"]["status"]["lostAt"] == "2025-01-02T03:04:05.000000Z"


def test_kubectl_get_mc_shows_a_member_whose_reports_are_refused(tmp_path: Path, now: list[float]) -> None:
    """Outside QA (vendors re-test R3): a member whose every report is refused was plain Ready. Its State column
    says ReportsRefused, as `get clusters` does, until a report is taken (server/refused_reports.py)."""
    from federator.security.limits import RejectReason
    from federator.server import refused_reports
    from federator.server.validation import Refusal

    api = FakeApi([])
    fed, ctl = controller(tmp_path, api, now)
    rec = fed.connect(cluster="member-b", region="east", labels={})
    refused_reports.refused(fed, rec, Refusal(RejectReason.MALFORMED, "capacity.accelerator_pools[1].vendor: ..."))
    asyncio.run(ctl.write_members())
    status = api.objects["member-b"]["status"]
    assert (status["state"], status["stateSummary"]) == ("Ready", "Ready,ReportsRefused")

    refused_reports.taken(rec)
    asyncio.run(ctl.write_members())
    assert api.objects["member-b"]["status"]["stateSummary"] == "Ready"
