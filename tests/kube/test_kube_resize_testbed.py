"""The Kubernetes agent's backend shrinks a placement's Deployment in place on a real kube-apiserver (the host of
the test bed, alone): a Resize from 6 to 4 patches spec.replicas and the replica annotation in one merge patch,
the drift guard keeps 4 once the watch shows it, and the same Resize again (a re-sync) patches nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.workloads import REPLICAS_ANNOTATION, workload_name
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources

from kube_support import Testbed, host_alone
from support import until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "serving"
SERVE = JobSpec(name="chat", kind=JobKind.INFERENCE, replicas=6, resources=Resources(cpu_milli=100))
PID = PlacementId("chat-abc.g2.host")


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with host_alone(tmp_path_factory.mktemp("resize-bed"), NAMESPACE) as bed:
        yield bed



def test_a_resize_patches_the_deployment_from_6_to_4_and_it_stays_4(host: Testbed) -> None:
    def deployment() -> dict[str, Any]:
        out = host.kubectl("host", "get", "deployment", workload_name(PID), "-n", NAMESPACE, "-o", "json")
        return dict(json.loads(out.stdout))

    async def main() -> None:
        api = KubeApi.connect(host.host.kubeconfig)
        backend = KubeBackend(api, namespace=NAMESPACE, cluster="host", sync_timeout=60)
        await backend.start(lambda *_, **__: None)
        try:
            placement = Placement(PID, JobId("chat-abc"), "host", "east", 6, "", 2)
            assert await backend.launch(placement, SERVE) is None
            await until(lambda: backend._workload(PID) is not None)
            assert deployment()["spec"]["replicas"] == 6

            assert await backend.resize(PID, 1, 4) is None  # an old generation's order: nothing
            assert deployment()["spec"]["replicas"] == 6
            assert await backend.resize(PID, 2, 4) is None
            made = deployment()
            assert made["spec"]["replicas"] == 4 and made["metadata"]["annotations"][REPLICAS_ANNOTATION] == "4"
            await until(lambda: ((backend._workload(PID) or {}).get("spec") or {}).get("replicas") == 4)
            version = made["metadata"]["resourceVersion"]
            assert await backend.resize(PID, 2, 4) is None  # a re-sync's Resize at the count it runs
            await asyncio.sleep(1.0)  # a scale-back by the drift guard would run now
            again = deployment()
            assert again["spec"]["replicas"] == 4 and again["metadata"]["resourceVersion"] == version
        finally:
            await backend.stop()

    asyncio.run(main())
