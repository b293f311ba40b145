"""What a Kubernetes-mode restart used to lose of its members, kept in the MemberCluster status, on a real API server.

The standalone store keeps them with each member (store/members.py, schema 3; tests/server/
test_member_facts_restart.py); in Kubernetes mode they were memory only, so a restart or a new leader lost, of a
member whose agent had not come back yet: its agent's Hello features (a job scaled down meanwhile had its part
there stopped whole instead of shrunk), its certificate's notAfter (FederatorClusterCertificateExpired went quiet
for an agent that cannot connect), the Resizes it owed (an agent back without the resize feature ran those parts
at their old count) and when it went Lost (--forget-lost-after began again). Here the status is the one the real
kube-apiserver stored through the CRD's status schema (a field the schema lacks is pruned without a word), read
back by a second federator's controller, as a new leader does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from federator.backends.kube.api import MEMBER_CLUSTERS, KubeApi
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.store import KubeJobStore
from federator.model import AgentFeature, ClusterState
from federator.server.federator import Federator

from builders import cluster, pool
from kube_support import Clock, Testbed, host_bed

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "member-facts"
H100 = "NVIDIA-H100-80GB-HBM3"
T0, NOT_AFTER = 1_800_000_000.0, 1_900_000_000.0
LEASE, LOST_AFTER = 10.0, 60.0


host = host_bed(NAMESPACE)


def federator(api: KubeApi, clock: Clock) -> tuple[Federator, FederatedJobController]:
    store = KubeJobStore(api, namespace=NAMESPACE, clock=clock)
    fed = Federator(store=store, clock=clock, lease_seconds=LEASE, lost_after_seconds=LOST_AFTER)
    return fed, FederatedJobController(fed, api, store, namespace=NAMESPACE, clock=clock)


def test_a_restart_keeps_a_members_features_certificate_resizes_owed_and_lost_time(
        host: Testbed, tmp_path: Path) -> None:
    async def main() -> None:
        api = KubeApi.connect(host.host.kubeconfig)
        clock = Clock(T0)
        fed, ctl = federator(api, clock)
        for name in ("east", "west"):
            rec = fed.connect(cluster=name, region=name, labels={})
            fed.report(rec, cluster(name, name, pool(H100, nodes=1)).capacity)
        east = fed.clusters["east"]  # as its Hello and handshake said, and a Resize it has not answered
        east.features, east.certificate_not_after = frozenset({AgentFeature.RESIZE}), NOT_AFTER
        east.resizes_owed = {"serve-1.g2.east"}
        await ctl.write_members()  # their objects, made while both are Ready
        fed.disconnect(fed.clusters["west"])
        clock.now += LEASE + 1
        fed.heard(east)
        fed.check_leases()
        clock.now += LOST_AFTER + 1
        fed.heard(east)
        fed.check_leases()
        lost_at = fed.clusters["west"].lost_at
        assert fed.clusters["west"].state is ClusterState.LOST and lost_at == clock.now
        await ctl.write_members()
        assert api.get(MEMBER_CLUSTERS, "east")["status"]["resizesOwed"] == ["serve-1.g2.east"]

        clock.now += 600  # a new leader, neither agent connected to it yet
        fed, ctl = federator(api, clock)
        await ctl.adopt_members()
        east, west = fed.clusters["east"], fed.clusters["west"]
        assert (east.state, east.features, east.certificate_not_after, east.resizes_owed) == (
            ClusterState.PARTITIONED, frozenset({AgentFeature.RESIZE}), NOT_AFTER, {"serve-1.g2.east"})
        assert (west.state, west.lost_at) == (ClusterState.LOST, lost_at)
        await ctl.write_members()  # and it keeps them in turn
        status = api.get(MEMBER_CLUSTERS, "east")["status"]
        assert (status["features"], status["resizesOwed"]) == (["resize"], ["serve-1.g2.east"])
        assert "lostAt" not in status and api.get(MEMBER_CLUSTERS, "west")["status"]["lostAt"]

    asyncio.run(main())
