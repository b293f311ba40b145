"""`kubectl delete fj` while the member's agent is away, then a federator restart, on a real API server.

Outside QA F7: the delete returned at once and the cancel went with the object; the federator that started next
knew no such job, and the agent's workload was an orphan held for --orphan-grace. The federator runs in this process
(store, controller and its informer) against the test bed's host; the member's agent is played by calls on the
federator, as the server tests do: what is tested is the host side, the record on the MemberCluster that outlives
the FederatedJob and the federator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import yaml

from federator.backends.kube.api import KubeApi
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.store import KubeJobStore
from federator.model import ClusterCapacity, JobPhase
from federator.server.federator import Federator
from federator.server.orphans import DELETED_REASON

from builders import cluster, pool
from kube_support import Testbed, host_alone
from support import accepted, cancels_sent

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "deletions"
H100 = "NVIDIA-H100-80GB-HBM3"
RECORD = r"jsonpath={.metadata.annotations.federator\.io/unconfirmed-cancels}"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with host_alone(tmp_path_factory.mktemp("deletion-bed"), NAMESPACE) as bed:
        yield bed



def _capacity(*placement_ids: str) -> ClusterCapacity:
    return replace(cluster("member-a", "east", pool(H100, nodes=2, free=8)).capacity,
                   placement_ids=frozenset(placement_ids))



def _federator(api: KubeApi) -> tuple[Federator, KubeJobStore, FederatedJobController]:
    store = KubeJobStore(api, namespace=NAMESPACE)
    fed = Federator(store=store, orphan_grace=1800.0)
    return fed, store, FederatedJobController(fed, api, store, namespace=NAMESPACE)


def test_a_federatedjob_deleted_while_its_agent_is_away_is_cancelled_at_the_resync_after_a_restart(
        host: Testbed) -> None:
    def kubectl(*args: str, stdin: str | None = None) -> str:
        return str(host.kubectl("host", *args, input=stdin).stdout)

    doc = yaml.safe_dump({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                          "metadata": {"name": "q-train", "namespace": NAMESPACE},
                          "spec": {"kind": "training", "replicas": 2,
                                   "resources": {"cpu": "1", "nvidia.com/gpu": 8}}})

    async def main() -> None:
        api = KubeApi.connect(host.host.kubeconfig)
        fed, store, ctl = _federator(api)
        await ctl.start()
        try:
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(rec, _capacity())
            await ctl.write_members()
            kubectl("apply", "-f", "-", stdin=doc)
            await accepted(fed, NAMESPACE, "q-train")
            job = fed.get("q-train")
            fed.schedule_once()
            (pid,) = [p.placement_id for p in job.placements]
            fed.job_update(rec, pid, JobPhase.RUNNING, "")
            fed.disconnect(rec)  # the agent is away

            started = time.monotonic()
            await asyncio.to_thread(kubectl, "delete", "fj", "q-train", "-n", NAMESPACE, "--timeout=60s")
            assert time.monotonic() - started < 30  # returned without waiting for the agent
            assert pid in kubectl("get", "mc", "member-a", "-o", RECORD)
        finally:
            await ctl.stop()
            store.close()

        fed, store, ctl = _federator(api)  # the federator restarted: a helm upgrade, a drain, a failover
        await ctl.start()
        try:
            assert not fed.jobs
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.job_update(rec, pid, JobPhase.RUNNING, "")  # the agent's re-sync names what it holds
            assert cancels_sent(rec) == {pid: DELETED_REASON}  # at once, not after --orphan-grace
            fed.report(rec, _capacity(pid))
            assert fed.metrics.registry.get_sample_value(
                "federator_orphan_placements", {"cluster": "member-a"}) == 0  # no orphan, no alert

            fed.job_update(rec, pid, JobPhase.CANCELLED, "cancelled: workload deleted")  # the member confirms
            await ctl.cancels.flush(fed.orphans.cancels.unwritten(), recreate=ctl.recreate())
            assert kubectl("get", "mc", "member-a", "-o", RECORD) == ""
        finally:
            await ctl.stop()
            store.close()

    asyncio.run(main())
