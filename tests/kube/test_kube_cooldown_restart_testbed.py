"""A federator restarted in Kubernetes mode keeps a job off the cluster it just failed on (QA new59 N7, seen on a
real host: `kill -9` of serve 11 s after a failure on member-a, and the new federator placed the job straight back
there, where it failed again, spending a restart). Against a real API server: the job's last restart (its reason
naming the cluster, and when) is what the FederatedJob's status keeps, and what the new federator reads back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from federator.backends.kube.api import FEDERATED_JOBS, KubeApi
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.events import EventRecorder
from federator.backends.kube.store import KubeJobStore
from federator.model import JobPhase, ReasonCode
from federator.server.federator import Federator

from builders import cluster, pool
from kube_support import CRDS, H100, Testbed
from support import accepted, until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "crashes"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    bed = Testbed.start(tmp_path_factory.mktemp("cooldown-bed"), members=())
    try:
        bed.kubectl("host", "apply", "-f", str(CRDS))
        bed.kubectl("host", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        bed.kubectl("host", "create", "namespace", NAMESPACE)
        yield bed
    finally:
        bed.stop()


def test_a_restarted_federator_keeps_the_job_off_the_cluster_it_failed_on_for_the_rest_of_the_cooldown(
        host: Testbed) -> None:
    api = KubeApi.connect(host.host.kubeconfig)
    now = [time.time()]  # both federators' clock, moved by hand: no wall-clock race with the 30 s

    def clock() -> float:
        return now[0]

    async def start() -> tuple[KubeJobStore, Federator, FederatedJobController]:
        store = KubeJobStore(api, namespace=NAMESPACE, events=EventRecorder(api), clock=clock)
        fed = Federator(store=store, clock=clock)
        ctl = FederatedJobController(fed, api, store, namespace=NAMESPACE, clock=clock)
        await ctl.start()
        for name in ("member-a", "member-b"):
            rec = fed.connect(cluster=name, region="east", labels={})
            fed.report(rec, cluster(name, "east", pool(H100, nodes=2, free=8)).capacity)
        return store, fed, ctl

    def last_restart() -> dict[str, Any]:
        return dict((api.get(FEDERATED_JOBS, "crashy", NAMESPACE).get("status") or {}).get("lastRestart") or {})

    async def main() -> None:
        store, fed, ctl = await start()
        try:
            host.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump({
                "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                "metadata": {"name": "crashy", "namespace": NAMESPACE},
                "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 1},
                         "failurePolicy": {"maxRestarts": 3}}}))
            await accepted(fed, NAMESPACE, "crashy")
            (job,) = fed.jobs.named("crashy")
            fed.schedule_once()
            (placement,) = job.placements
            failed_on = placement.cluster
            rec = fed.clusters[failed_on]
            fed.job_update(rec, placement.placement_id, JobPhase.RUNNING, "")
            now[0] += 3
            fed.job_update(rec, placement.placement_id, JobPhase.FAILED, "exit 1")
            assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_EARLY
            await until(lambda: last_restart().get("code") == ReasonCode.FAILED_EARLY.value)
        finally:
            await ctl.stop()
            store.close()

        now[0] += 11  # the new federator starts 11 s after the failure, as in N7
        store, fed, ctl = await start()
        try:
            (job,) = fed.jobs.named("crashy")
            assert job.phase is JobPhase.PENDING
            assert fed.refusals.avoided(job.job_id, clock()) == (failed_on,)
            fed.schedule_once()
            (placement,) = job.placements
            assert placement.cluster != failed_on  # before: straight back where it had failed
            now[0] += 20  # 34 s after the failure: the cool-down is over, as it would have been without a restart
            assert fed.refusals.avoided(job.job_id, clock()) == ()
        finally:
            await ctl.stop()
            store.close()

    asyncio.run(main())
