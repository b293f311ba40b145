"""`federator logs` on a real member: the Kubernetes agent, with the RBAC deploy/kubernetes/rbac-agent.yaml grants it
(as its own service account), reads its own placement's pods' logs through the real API server.

The test bed's nodes are kwok's: no kubelet and no container runtime, so no log exists there. The API server
answers `pods/NAME/log` by proxying to the node's kubelet port (10250 on the node's address, 127.0.0.1 here),
where nothing listens: HTTP 500 naming the kubelet URL it tried. So what is tested for real is everything up to
the kubelet: the RBAC (get pods/log granted in the workload namespace and nowhere else, as the agent's own
service account), the selection (the placement's pods, this agent's, numbered by completion index; a container
the pod lacks) and the request the API server took and passed on (container, tailLines, limitBytes: in its
error). The bounds on real log text are tests/backends/kube/test_kube_pod_logs.py's, against the API's
documented semantics.

A follow (`federator logs -f`: agent.proto LogsRequest.timestamps and since_time) is the same read with the API's
sinceTime and timestamps=true: what the API server passed on to the kubelet is checked the same way. A pod that
prints lines over time needs a kubelet; the cutting of real dated lines is tests/server/test_log_follow_grpc.py's
(a real agent whose simulated placement prints a line every 50 ms, and a scripted one that dates lines to the
nanosecond as the kubelet does).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from federator.agent.backend import ReplicaOutput
from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

from kube_support import WORKLOADS, Testbed, own_bed, service_account_kubeconfig
from support import until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

MEMBER = "member-a"
PID = PlacementId("talk-abc.g1.member-a")
SPEC = JobSpec(name="talk", kind=JobKind.TRAINING, replicas=2, resources=Resources(cpu_milli=1000),
               pod_template_json=json.dumps({"metadata": {"annotations": {
                   "pod-complete.stage.kwok.x-k8s.io/delay": "600s"}}}))
AGENT = "system:serviceaccount:federator-system:federator-agent"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with own_bed(tmp_path_factory.mktemp("pod-logs-bed"), members=(MEMBER,)) as tb:
        yield tb


def _can(bed: Testbed, namespace: str) -> str:
    proc = bed.kubectl(MEMBER, "auth", "can-i", "get", "pods", "--subresource=log", "-n", namespace, "--as", AGENT,
                       check=False)
    return proc.stdout.strip()


def test_the_agent_may_read_its_pods_logs_in_its_namespace_only(bed: Testbed) -> None:
    assert _can(bed, WORKLOADS) == "yes"
    assert _can(bed, "default") == "no"
    assert _can(bed, "kube-system") == "no"


def test_the_agent_reads_its_own_pods_of_the_placement_through_the_real_api_server(bed: Testbed,
                                                                                    tmp_path: Path) -> None:
    kubeconfig = service_account_kubeconfig(bed, MEMBER, "federator-agent", tmp_path / "agent.kubeconfig")
    got: list[list[ReplicaOutput] | str] = []

    def running() -> bool:
        pods = json.loads(bed.kubectl(MEMBER, "get", "pods", "-n", WORKLOADS, "-o", "json").stdout)["items"]
        return sum(p["status"].get("phase") == "Running" for p in pods) == 2

    async def main() -> None:
        api = KubeApi.connect(kubeconfig)
        backend = KubeBackend(api, namespace=WORKLOADS, cluster=MEMBER, sync_timeout=60)
        await backend.start(lambda *_, **__: None)
        try:
            got.append(await backend.logs(PID, -1, "", 10, 1000))  # nothing launched yet
            assert await backend.launch(Placement(PID, JobId("talk-abc"), MEMBER, "east", 2, "", 1), SPEC) is None
            await until(running, timeout=60)
            assert backend.placements()[PID] in (JobPhase.PLACED, JobPhase.RUNNING)
            got.append(await backend.logs(PID, -1, "", 10, 1000))
            got.append(await backend.logs(PID, 1, "", 10, 1000))
            got.append(await backend.logs(PID, 0, "no-such", 10, 1000))
            got.append(await backend.logs_since(PID, 1, "", 10_000, 1000, since=1_765_000_000.0))
        finally:
            await backend.stop()

    asyncio.run(main())
    nothing, every, one, unknown, followed = got
    assert isinstance(nothing, str) and nothing.startswith(f"placement {PID}: no pods of this agent's in namespace "
                                                           f"{WORKLOADS} (not started yet")
    assert isinstance(every, list) and [(o.replica, o.pod.startswith("talk-abc"), o.text) for o in every] == \
        [(0, True, ""), (1, True, "")]
    for out in every:
        # kwok nodes have no kubelet: the API server took the request (RBAC passed, the pod and its first container
        # exist) and proxied it to the node's kubelet port, where nothing answers (measured: HTTP 500, `Get
        # "https://127.0.0.1:10250/containerLogs/...": dial tcp 127.0.0.1:10250: connect: connection refused`).
        # The request as it left: the container read, the tail, and 4 x the replica's share of 1000 bytes.
        assert out.error.startswith("reading its log: HTTP 500"), out.error
        assert f"/containerLogs/{WORKLOADS}/{out.pod}/main?limitBytes=2000&tailLines=10" in out.error, out.error
    assert isinstance(one, list) and [o.replica for o in one] == [1]
    assert isinstance(unknown, list) and unknown[0].error.startswith("container 'no-such': not in this pod")
    assert isinstance(followed, list) and [o.replica for o in followed] == [1]
    # the follow's read as it left for the kubelet: from the second asked (2025-12-06T05:46:40Z), each line dated
    assert followed[0].error.startswith("reading its log: HTTP 500"), followed[0].error
    assert "sinceTime=2025-12-06T05%3A46%3A40Z" in followed[0].error, followed[0].error
    assert "tailLines=10000&timestamps=true" in followed[0].error, followed[0].error
