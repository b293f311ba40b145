"""End-to-end checks of the real-Kubernetes test bed (tests/testbed/testbed.py).

Needs the binaries from tests/testbed/build (built on first use: minutes on a
cold machine, milliseconds afterwards) and openssl. Runs everything on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

try:  # rootdir on sys.path (python -m pytest from the repo root)
    from tests.testbed.testbed import (
        DEFAULT_NODES,
        FAIL_ANNOTATION,
        GPU_PRODUCT_LABEL,
        GPU_RESOURCE,
        HOST,
        Testbed,
    )
except ImportError:  # tests/testbed itself on sys.path (pytest's default "prepend" import mode)
    from testbed import (  # type: ignore[no-redef]
        DEFAULT_NODES,
        FAIL_ANNOTATION,
        GPU_PRODUCT_LABEL,
        GPU_RESOURCE,
        HOST,
        Testbed,
    )

# The first test may build the binaries (a few minutes cold, see README.md), which
# is longer than the project's default per-test timeout (pytest-timeout).
pytestmark = [pytest.mark.kube, pytest.mark.timeout(1800)]

K8S_VERSION = "v1.36.3"
H100 = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture(scope="module")
def tb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    bed = Testbed.start(tmp_path_factory.mktemp("testbed"))
    try:
        yield bed
    finally:
        bed.stop()


def _job(name: str, gpus: int, product: str | None, annotations: dict[str, str] | None = None) -> dict:
    pod_spec: dict = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "train",
                # Never pulled: kwok plays the kubelet.
                "image": "registry.invalid/federator/train:latest",
                "resources": {"limits": {GPU_RESOURCE: gpus, "cpu": "4", "memory": "16Gi"}},
            }
        ],
    }
    if product:
        pod_spec["nodeSelector"] = {GPU_PRODUCT_LABEL: product}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "backoffLimit": 0,
            "template": {"metadata": {"annotations": annotations or {}}, "spec": pod_spec},
        },
    }


def _job_pods(tb: Testbed, cluster: str, job: str) -> list[dict]:
    return tb.kubectl_json(cluster, "get", "pods", "-n", "default", "-l", f"job-name={job}")["items"]


def _wait(what: str, pred, timeout: float = 60.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = pred()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def test_host_apiserver_answers(tb: Testbed) -> None:
    out = json.loads(tb.kubectl(HOST, "version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"] == K8S_VERSION
    assert out["clientVersion"]["gitVersion"] == K8S_VERSION
    assert tb.kubectl(HOST, "get", "--raw", "/readyz").stdout.strip() == "ok"
    # The host carries no nodes; the admin is system:masters.
    assert tb.kubectl_json(HOST, "get", "nodes")["items"] == []
    assert tb.kubectl(HOST, "auth", "can-i", "*", "*").stdout.strip() == "yes"


def test_kubeconfigs_use_https_with_ca(tb: Testbed) -> None:
    for name, handle in tb.clusters.items():
        assert handle.server.startswith("https://127.0.0.1:")
        kc = yaml.safe_load(handle.kubeconfig.read_text())
        cluster = kc["clusters"][0]["cluster"]
        assert cluster["server"] == handle.server
        assert "certificate-authority-data" in cluster
        assert "insecure-skip-tls-verify" not in cluster
        assert kc["users"][0]["user"]["token"] == handle.token
        assert handle.ca_file.is_file(), name
    assert len({h.server for h in tb.clusters.values()}) == 3


@pytest.mark.parametrize("member", ["member-a", "member-b"])
def test_member_lists_its_gpu_nodes(tb: Testbed, member: str) -> None:
    nodes = {n["metadata"]["name"]: n for n in tb.kubectl_json(member, "get", "nodes")["items"]}
    expected = {spec.name: spec for spec in DEFAULT_NODES[member]}
    assert set(nodes) == set(expected)
    for name, spec in expected.items():
        node = nodes[name]
        assert node["status"]["allocatable"][GPU_RESOURCE] == str(spec.gpus)
        assert node["status"]["capacity"][GPU_RESOURCE] == str(spec.gpus)
        assert node["status"]["allocatable"]["cpu"] == "64"
        assert node["status"]["allocatable"]["memory"] == "512Gi"
        assert node["status"]["allocatable"]["pods"] == "110"
        assert node["metadata"]["labels"][GPU_PRODUCT_LABEL] == spec.gpu_product
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
        assert not node["spec"].get("taints")
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", name


def test_default_fleet_shape() -> None:
    def count(member: str, product: str, gpus: int) -> int:
        return sum(1 for n in DEFAULT_NODES[member] if n.gpu_product == product and n.gpus == gpus)

    assert count("member-a", H100, 8) == 2
    assert count("member-a", "NVIDIA-A100-SXM4-80GB", 4) == 1
    assert count("member-b", "NVIDIA-A100-SXM4-80GB", 8) == 2
    assert count("member-b", "NVIDIA-L40S", 4) == 2


def test_gpu_job_runs_on_h100_and_completes(tb: Testbed) -> None:
    name = f"train-h100-{uuid.uuid4().hex[:6]}"
    tb.apply("member-a", _job(name, 8, H100))
    h100_nodes = {n.name for n in DEFAULT_NODES["member-a"] if n.gpu_product == H100}

    def pod_running() -> dict | None:
        pods = _job_pods(tb, "member-a", name)
        return pods[0] if pods and pods[0]["status"].get("phase") in ("Running", "Succeeded") else None

    pod = _wait("the job's pod to run", pod_running)
    assert pod["spec"]["nodeName"] in h100_nodes
    # kwok keeps a Job's pod Running for ~3 s before completing it, so a test can observe it.
    assert pod["status"]["phase"] == "Running"

    tb.kubectl("member-a", "wait", "--for=condition=Complete", f"job/{name}", "-n", "default", "--timeout=60s")
    job = tb.kubectl_json("member-a", "get", "job", name, "-n", "default")
    assert job["status"]["succeeded"] == 1
    pods = _job_pods(tb, "member-a", name)
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    assert pods[0]["spec"]["nodeName"] in h100_nodes


def test_job_larger_than_any_node_stays_pending(tb: Testbed) -> None:
    name = f"train-too-big-{uuid.uuid4().hex[:6]}"
    tb.apply("member-a", _job(name, 16, None))

    def unschedulable() -> dict | None:
        pods = _job_pods(tb, "member-a", name)
        if not pods:
            return None
        for c in pods[0]["status"].get("conditions") or []:
            if c["type"] == "PodScheduled" and c["status"] == "False" and c.get("reason") == "Unschedulable":
                return pods[0]
        return None

    pod = _wait("the scheduler to mark the pod Unschedulable", unschedulable)
    assert "nvidia.com/gpu" in json.dumps(pod["status"]["conditions"])
    time.sleep(2)
    pods = _job_pods(tb, "member-a", name)
    assert len(pods) == 1
    assert pods[0]["status"]["phase"] == "Pending"
    assert not pods[0]["spec"].get("nodeName")
    job = tb.kubectl_json("member-a", "get", "job", name, "-n", "default")
    assert not job["status"].get("succeeded")
    tb.kubectl("member-a", "delete", "job", name, "-n", "default", "--cascade=foreground", "--wait=false")


def test_member_b_job_lands_on_l40s(tb: Testbed) -> None:
    name = f"infer-l40s-{uuid.uuid4().hex[:6]}"
    tb.apply("member-b", _job(name, 4, "NVIDIA-L40S"))
    tb.kubectl("member-b", "wait", "--for=condition=Complete", f"job/{name}", "-n", "default", "--timeout=60s")
    pods = _job_pods(tb, "member-b", name)
    l40s = {n.name for n in DEFAULT_NODES["member-b"] if n.gpu_product == "NVIDIA-L40S"}
    assert pods[0]["spec"]["nodeName"] in l40s


def test_fail_annotation_fails_the_job(tb: Testbed) -> None:
    name = f"train-fails-{uuid.uuid4().hex[:6]}"
    tb.apply("member-b", _job(name, 1, None, {FAIL_ANNOTATION: "true"}))
    tb.kubectl("member-b", "wait", "--for=condition=Failed", f"job/{name}", "-n", "default", "--timeout=60s")
    pods = _job_pods(tb, "member-b", name)
    assert [p["status"]["phase"] for p in pods] == ["Failed"]


def test_stop_leaves_no_processes(tmp_path: Path) -> None:
    bed = Testbed.start(tmp_path / "small", members=("member-a",), nodes={"member-a": []})
    pids = bed.pids()
    assert set(pids) == {
        "etcd",
        "host-apiserver",
        "member-a-apiserver",
        "member-a-controller-manager",
        "member-a-scheduler",
        "member-a-kwok",
    }
    bed.stop()
    bed.stop()  # idempotent
    for name, pid in pids.items():
        assert not os.path.exists(f"/proc/{pid}"), f"{name} (pid {pid}) still running"


_WITHOUT_FEDERATOR = """
import importlib.abc, runpy, sys
class NoFederator(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "federator" or name.startswith("federator."):
            raise ImportError(f"{name}: not on this python3")
        return None
sys.meta_path.insert(0, NoFederator())
sys.path.insert(0, sys.argv[1])
ports = runpy.run_path(sys.argv[1] + "/testbed.py", run_name="testbed")["_free_ports"](3)
print(len(set(ports)))
"""


def test_the_test_bed_runs_on_a_python3_without_the_federator_package() -> None:
    """`tests/testbed/up` runs testbed.py with the machine's python3, where federator is not installed."""
    here = str(Path(__file__).parent)
    out = subprocess.run([sys.executable, "-c", _WITHOUT_FEDERATOR, here], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"
