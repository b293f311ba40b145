"""The agent owns what it made on the member, on a real kube-apiserver (the test bed's host, alone, with LWS's own
CRD): `kubectl scale lws` and `kubectl set image` are put back while the agent runs, and an image edit and a model
pin removed while no agent ran are put back by the next one, from the record on the object (drift.py).

Outside inference team F4: the LWS stayed at 2 groups, and the image edit and the removed node selector were never
reverted nor reported."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.workloads import adapter_for
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources

from kube_support import Testbed, host_alone
from support import eventually, until
from workload_crds import crd_file

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "serving"
POOL = "example.com/pool"  # stands in for nvidia.com/gpu.product: the host alone has no GPU node to pin to
TEMPLATE = {"spec": {"containers": [{"name": "server", "image": "busybox:1.36", "command": ["sleep", "1d"]}],
                     "nodeSelector": {POOL: "h100"}}}
SERVE = JobSpec(name="chat", kind=JobKind.INFERENCE, replicas=2, resources=Resources(cpu_milli=100),
                pod_template_json=json.dumps(TEMPLATE))
LWS = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "llm"},
       "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {"containers": [
           {"name": "vllm", "image": "busybox:1.36", "resources": {"requests": {"cpu": "100m"}}}]}}}}}
GROUPS = JobSpec(name="llm", kind=JobKind.INFERENCE, replicas=2, resources=Resources(cpu_milli=100),
                 workload_json=json.dumps(LWS), group_size=2)
CHAT = Placement(PlacementId("chat-abc.g1.host"), JobId("chat-abc"), "host", "east", 2, "", 1)
LLM = Placement(PlacementId("llm-abc.g1.host"), JobId("llm-abc"), "host", "east", 2, "", 1)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with host_alone(tmp_path_factory.mktemp("drift-bed"), NAMESPACE) as bed:
        path = crd_file("LeaderWorkerSet")
        bed.kubectl("host", "apply", "--server-side", "-f", str(path))
        bed.kubectl("host", "wait", "--for=condition=Established", "--timeout=60s",
                    f"crd/{yaml.safe_load(path.read_text())['metadata']['name']}")
        yield bed


def test_an_lws_scale_and_an_image_edit_are_put_back_and_so_are_edits_made_while_no_agent_ran(host: Testbed) -> None:
    dep = adapter_for({"apiVersion": "apps/v1", "kind": "Deployment"}).member_name(CHAT.placement_id)
    lws = adapter_for(LWS).member_name(LLM.placement_id)

    def get(resource: str, name: str) -> dict[str, Any]:
        out = host.kubectl("host", "get", resource, name, "-n", NAMESPACE, "-o", "json")
        return dict(json.loads(out.stdout))

    def pod(name: str = dep) -> dict[str, Any]:
        return dict(get("deployment", name)["spec"]["template"]["spec"])

    async def agent(work: Any) -> None:
        backend = KubeBackend(KubeApi.connect(host.host.kubeconfig), namespace=NAMESPACE, cluster="host",
                              sync_timeout=60)
        await backend.start(lambda *_, **__: None)
        try:
            await work(backend)
        finally:
            await backend.stop()

    async def first(backend: KubeBackend) -> None:
        assert await backend.launch(CHAT, SERVE) is None
        assert await backend.launch(LLM, GROUPS) is None
        await until(lambda: backend._workload(CHAT.placement_id) is not None
                    and backend._workload(LLM.placement_id) is not None)
        assert get("leaderworkersets", lws)["spec"]["replicas"] == 1
        host.kubectl("host", "scale", "leaderworkerset", lws, "-n", NAMESPACE, "--replicas=2")
        host.kubectl("host", "set", "image", f"deployment/{dep}", "-n", NAMESPACE, "server=evil/image:1")
        await until(lambda: get("leaderworkersets", lws)["spec"]["replicas"] == 1, timeout=30)
        await until(lambda: pod()["containers"][0]["image"] == "busybox:1.36", timeout=30)

    asyncio.run(agent(first))
    # No agent runs: the member's operator swaps the image and takes the model pin off.
    host.kubectl("host", "patch", "deployment", dep, "-n", NAMESPACE, "--type=json", "-p", json.dumps([
        {"op": "remove", "path": "/spec/template/spec/nodeSelector"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil/image:1"}]))
    assert "nodeSelector" not in pod() and pod()["containers"][0]["image"] == "evil/image:1"

    async def restarted(backend: KubeBackend) -> None:
        await until(lambda: pod().get("nodeSelector") == {POOL: "h100"}, timeout=30)
        assert pod()["containers"][0]["image"] == "busybox:1.36"

    asyncio.run(agent(restarted))
    eventually(lambda: get("leaderworkersets", lws)["spec"]["replicas"] == 1, timeout=5, what="LWS at 1 group")
