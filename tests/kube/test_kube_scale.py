"""`kubectl scale fj` against a real API server (the host of the test bed), and the federator places the rest.

The CRD is the one the chart ships: its scale subresource and its immutability rule (spec.replicas alone may
change, on an inference job) are judged by a real kube-apiserver's CEL. The federator runs in this process (store,
controller with its informer); its member clusters are reported to it directly, as the server tests do, since what
is tested is the host side: kubectl's scale reaching the job, the job's placements, the status kubectl reads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from federator.backends.kube.api import FEDERATED_JOBS
from federator.backends.kube.workloads.common import workload_labels
from federator.model import JobPhase

from builders import cluster, pool
from kube_support import Testbed, controller_running, fj_yaml, host_alone
from support import accepted, until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "scaling"
H100 = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """A host control plane alone, with the CRDs."""
    with host_alone(tmp_path_factory.mktemp("scale-bed"), NAMESPACE) as bed:
        yield bed


def document(name: str, kind: str, replicas: int, **spec: Any) -> str:
    return fj_yaml(name, NAMESPACE, kind=kind, replicas=replicas, queue="default", **spec)



def test_kubectl_scale_places_the_extra_replicas_and_keeps_the_running_ones(host: Testbed) -> None:
    def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> Any:
        return host.kubectl("host", *args, "-n", NAMESPACE, input=stdin, check=check)

    async def main() -> None:
        async with controller_running(host, NAMESPACE) as fx:
            api, fed = fx.api, fx.fed
            for name, region in (("a", "east"), ("b", "west")):
                rec = fed.connect(cluster=name, region=region, labels={})
                fed.report(rec, cluster(name, region, pool(H100, nodes=1, free=8)).capacity)
            kubectl("apply", "-f", "-", stdin=document("chat", "inference", 2))
            await accepted(fed, NAMESPACE, "chat")
            job = fed.get("chat")
            fed.schedule_once()
            assert job.phase is JobPhase.PLACED
            before = [p.placement_id for p in job.placements]

            kubectl("scale", "fj", "chat", "--replicas=5")
            await until(lambda: job.spec.replicas == 5)
            assert job.replicas_waiting == 3 and [p.placement_id for p in job.placements] == before
            fed.schedule_once()
            assert [p.placement_id for p in job.placements][:len(before)] == before
            assert sum(p.replicas for p in job.placements) == 5 and job.replicas_waiting == 0
            scale = json.loads(host.kubectl("host", "get", "--raw", f"/apis/federator.io/v1alpha1/namespaces/"
                                            f"{NAMESPACE}/federatedjobs/chat/scale").stdout)
            assert (scale["spec"]["replicas"], scale["status"]["replicas"]) == (5, 5)
            # a HorizontalPodAutoscaler refuses a scale without a selector; this one selects the job's member pods
            key, _, value = scale["status"]["selector"].partition("=")
            assert all(workload_labels(p)[key] == value for p in job.placements)
            # `kubectl get fj -o wide` names every part of the job, not the first placement's id only; the status
            # keeps when the scale-up's replicas began to wait (WAIT counts from it), which a restart reads back
            parts = ",".join(f"{p.cluster}x{p.replicas}" for p in job.placements)
            assert len(job.placements) > 1 and job.waiting_since > job.submitted_at

            def wide() -> bool:
                return parts in kubectl("get", "fj", "chat", "-o", "wide").stdout.splitlines()[1].split()

            await until(wide)
            status = api.get(FEDERATED_JOBS, "chat", NAMESPACE)["status"]
            assert status["placementSummary"] == parts and status["waitingSince"] > status["submittedAt"]

            # the rest of the spec stays immutable, and so does a training job's count. A serving job is told the
            # blue/green way, not to delete it first, which stops every replica (outside QA F3)
            proc = kubectl("apply", "-f", "-", stdin=document("chat", "inference", 5, priority=7), check=False)
            assert proc.returncode != 0, proc.stderr
            assert "spec.priority: is immutable (an inference job may change spec.replicas alone" in proc.stderr
            image = {"spec": {"containers": [{"name": "serve", "image": "chat-server:2.4"}]}}
            proc = kubectl("apply", "-f", "-", stdin=document("chat", "inference", 5, template=image), check=False)
            assert proc.returncode != 0 and "create a second FederatedJob beside this one and delete this one once " \
                "the new one serves" in proc.stderr and "delete the FederatedJob and create it again" not in \
                proc.stderr, proc.stderr
            kubectl("apply", "-f", "-", stdin=document("train", "training", 2))
            proc = kubectl("scale", "fj", "train", "--replicas=4", check=False)
            assert proc.returncode != 0, proc.stdout
            # the reason, as `federator scale` says it; not "spec is immutable; delete ... and create it again"
            assert "spec.replicas: a training job's gang size is fixed; only inference jobs may be scaled" \
                in proc.stderr and "is immutable" not in proc.stderr, proc.stderr
            proc = kubectl("apply", "-f", "-", stdin=document("train", "training", 2, priority=7), check=False)
            assert proc.returncode != 0 and "spec.priority: is immutable; delete the FederatedJob and create it " \
                "again" in proc.stderr and "blue/green" not in proc.stderr, proc.stderr  # the rest of a gang's too

            # a scale over the API reaches the object, as kubectl scale would have made it
            fed.scale(job.job_id, 3)
            spec = api.get(FEDERATED_JOBS, "chat", NAMESPACE)["spec"]
            assert spec["replicas"] == 3

    asyncio.run(main())


def test_kubectl_scale_below_min_regions_is_refused_by_the_api_server(host: Testbed) -> None:
    """The API server's own rule, so no federator runs: the count is never written, so nothing has to undo it."""
    host.kubectl("host", "apply", "-f", "-", "-n", NAMESPACE,
                 input=document("spread", "inference", 3, regions={"minRegions": 2}))
    proc = host.kubectl("host", "scale", "fj", "spread", "--replicas=1", "-n", NAMESPACE, check=False)
    assert proc.returncode != 0
    assert "spec.regions.minRegions: is more than spec.replicas; each region needs a replica" in proc.stderr
    assert host.kubectl("host", "get", "fj", "spread", "-n", NAMESPACE, "-o", "jsonpath={.spec.replicas}").stdout == "3"
    host.kubectl("host", "scale", "fj", "spread", "--replicas=2", "-n", NAMESPACE)  # minRegions itself is allowed
