"""A quarantine outlives a restart in Kubernetes mode, on a real API server (the host of the test bed): kept in
the MemberCluster's annotation `federator.io/quarantine` (backends/kube/quarantines.py), which the CRD keeps
whatever its version, and read back by the next federator from the listing it makes at start."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator

import pytest

from federator.backends.kube.api import KubeApi
from federator.backends.kube.host import KubeMode
from federator.backends.kube.options import KubeOptions
from federator.backends.kube.quarantines import ANNOTATION
from federator.model import ClusterState
from federator.model.quarantine import Held
from federator.security.authz import Submitter
from federator.server.blame import Blame
from federator.server.federator import Federator
from federator.timestamps import utc_seconds

from builders import cluster, pool
from kube_support import Testbed, host_alone

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "quarantines"
H100 = "NVIDIA-H100-80GB-HBM3"
JSONPATH = "jsonpath={.metadata.annotations.federator\\.io/quarantine}"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with host_alone(tmp_path_factory.mktemp("quarantine-bed"), NAMESPACE) as bed:
        yield bed


async def _started(host: Testbed) -> tuple[Federator, KubeMode]:
    """A federator in Kubernetes mode as `federator serve --kubeconfig` starts one (no leader election)."""
    api = KubeApi.connect(host.host.kubeconfig)
    kube = KubeMode(KubeOptions(kubeconfig=host.host.kubeconfig, namespace=NAMESPACE, leader_elect=False), api,
                    None)
    fed = Federator(store=kube.store)
    await kube.start(fed, on_lost=lambda: None)
    return fed, kube


async def _stopped(fed: Federator, kube: KubeMode) -> None:
    await fed.early.quarantine.writes.close()  # as server/app.py does at stop
    await kube.stop()
    kube.store.close()


def test_a_quarantine_is_kept_on_the_membercluster_and_held_by_the_next_federator(host: Testbed) -> None:
    async def main() -> Held:
        fed, kube = await _started(host)
        for name in ("liar", "good"):
            fed.report(fed.connect(cluster=name, region="east", labels={}),
                       cluster(name, "east", pool(H100, nodes=1, free=8)).capacity)
        assert kube.controller is not None
        await kube.controller.write_members()
        now, held = fed.clock(), None
        for who in ("alice", "bob", "alice"):  # three confirmed early failures of two owners (server/blame.py)
            held = fed.early.quarantine.confirm(Blame("liar", Submitter(user=who), now), now) or held
        assert held is not None
        await _stopped(fed, kube)
        return held

    held = asyncio.run(main())
    kept = json.loads(host.kubectl("host", "get", "mc", "liar", "-o", JSONPATH).stdout)
    assert kept == {"until": utc_seconds(math.ceil(held.until)), "reason": held.why}
    host.kubectl("host", "annotate", "mc", "good",  # one that ended while no federator ran
                 f'{ANNOTATION}={{"until": "2020-01-01T00:00:00Z", "reason": "long ago"}}')

    async def again() -> None:
        fed, kube = await _started(host)  # a restart, or a failover to another replica
        assert fed.early.quarantine.holding("liar", fed.clock()) == Held(math.ceil(held.until), held.why)
        assert fed.early.quarantine.holding("good", fed.clock()) is None
        for name in ("liar", "good"):  # their agents are back: Ready, liar quarantined from the first cycle
            fed.report(fed.connect(cluster=name, region="east", labels={}),
                       cluster(name, "east", pool(H100, nodes=1, free=8)).capacity)
        assert {c.name: c.state for c in fed.cycles.snapshot().clusters} == \
            {"liar": ClusterState.QUARANTINED, "good": ClusterState.READY}
        await fed.early.quarantine.writes.close()
        assert host.kubectl("host", "get", "mc", "good", "-o", JSONPATH).stdout == ""  # the ended one, deleted

        assert fed.early.quarantine.lift("liar") is not None  # `federator uncordon liar`
        await _stopped(fed, kube)

    asyncio.run(again())
    assert host.kubectl("host", "get", "mc", "liar", "-o", JSONPATH).stdout == ""
