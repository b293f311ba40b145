"""Cordons on a real API server (the host of the test bed): the CRD keeps the fields (a structural schema prunes
what it does not list), `kubectl patch mc` is read back, `federator cordon` is written where kubectl shows it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from federator.backends.kube.api import KubeApi
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.cordons import BY_HAND, KubeCordonStore
from federator.backends.kube.store import KubeJobStore
from federator.jobfile import parse_job
from federator.model import ClusterState, JobPhase
from federator.model.cordon import Cordon
from federator.server.federator import Federator

from builders import cluster, pool
from kube_support import Testbed, host_alone

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "cordons"
H100 = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with host_alone(tmp_path_factory.mktemp("cordon-bed"), NAMESPACE) as bed:
        yield bed


def test_kubectl_and_federator_cordon_agree_on_the_membercluster(host: Testbed) -> None:
    async def main() -> None:
        api = KubeApi.connect(host.host.kubeconfig)
        store = KubeJobStore(api, namespace=NAMESPACE)
        fed = Federator(store=store)
        ctl = FederatedJobController(fed, api, store, namespace=NAMESPACE)
        fed.cordons.attach(KubeCordonStore(api), load=False)
        try:
            rec = fed.connect(cluster="east-1", region="east", labels={})
            fed.report(rec, cluster("east-1", "east", pool(H100, nodes=1, free=8)).capacity)
            await ctl.write_members()

            host.kubectl("host", "patch", "mc", "east-1", "--type", "merge",
                         "-p", '{"spec":{"cordoned":true,"cordonReason":"rack 7 down"}}')
            await ctl.read_cordons(every=0)
            assert fed.cordons.get("east-1") is not None
            assert fed.cordons.get("east-1").reason == "rack 7 down"  # type: ignore[union-attr]
            assert fed.cordons.get("east-1").by == BY_HAND  # type: ignore[union-attr]
            assert [c.state for c in fed.cycles.snapshot().clusters] == [ClusterState.CORDONED]

            await ctl.write_members()  # the federator's own writes leave the cordon alone
            host.kubectl("host", "patch", "mc", "east-1", "--type", "merge", "-p", '{"spec":{"cordoned":null}}')
            await ctl.read_cordons(every=0)
            assert fed.cordons.get("east-1") is None

            assert await fed.cordons.cordon("east-1", Cordon("admin", 1_700_000_000.0, "driver upgrade"))
            shown = host.kubectl("host", "get", "mc", "east-1", "-o",
                                 "jsonpath={.spec.cordoned} {.spec.cordonedBy} {.spec.cordonedAt}").stdout
            assert shown == "true admin 2023-11-14T22:13:20Z"
            assert "true" in host.kubectl("host", "get", "mc", "east-1").stdout.splitlines()[1].split()
            await ctl.read_cordons(every=0)
            assert fed.cordons.get("east-1") == Cordon("admin", 1_700_000_000.0, "driver upgrade")
            assert await fed.cordons.uncordon("east-1") is not None
            assert host.kubectl("host", "get", "mc", "east-1", "-o", "jsonpath={.spec}").stdout.count("cordon") == 0

            job = fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                        "metadata": {"name": "after", "namespace": NAMESPACE},
                                        "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 1}}}))
            fed.schedule_once()
            assert job.phase is JobPhase.PLACED
        finally:
            store.close()

    asyncio.run(main())

