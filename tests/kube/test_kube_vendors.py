"""A federation of several accelerator vendors on the test bed, driven through kubectl.

Members: NVIDIA (device plugin), Huawei Ascend 910B (MindCluster; and a 310P3
node cut into static vNPU templates), AMD MI300X
(ROCm), NVIDIA MIG (mixed strategy), time-sliced NVIDIA, a DRA member whose
GPUs exist only as ResourceSlices of the test bed's fake DRA driver, and a
member of a vendor the built-in catalog does not know ("acme", fictional),
which joins through the accelerator catalog the agent chart's
`acceleratorCatalog` value renders (real `helm template`). A real federator
and one real agent per member run as processes, with the RBAC of
deploy/kubernetes.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_support import WORKLOADS, Kube, own_bed, ready_members, service_account_kubeconfig, serving
from support import ROOT, eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(900)]

import sys  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402

from testbed import NodeSpec  # noqa: E402

NAMESPACE = "vendors"
MEMBERS = ("nvidia", "ascend", "amd", "mig", "shared", "dra", "acme")
DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"
# What an operator writes in the charts' values to add a vendor (docs/kubernetes.md, "Adding a vendor").
ACME_CATALOG = {"vendors": {"acme": {
    "resources": ["acme.example/npu"], "productLabel": "acme.example/npu.product",
    "memoryLabel": "acme.example/npu.memory", "memoryUnit": "Gi", "modelPrefix": "Acme-",
    "models": [{"name": "Acme-X1", "memoryMiB": 65536, "family": "Acme-X"}]}}}


def _fleet() -> dict[str, list[Any]]:
    fleet = vendors.vendor_fleet(tuple(m for m in MEMBERS if m not in ("dra", "acme")))
    # The DRA member's GPUs are H200s, a model no other member has, so a job can ask for them by name.
    fleet["dra"] = vendors.dra_gpu_nodes("dra-h200", 1, product_name="NVIDIA H200", memory="143771Mi")
    # MindCluster static vNPU: one 310P3 node's chips cut by npu-smi into 8 x 2 and 2 x 4 AI cores
    fleet["ascend"].append(NodeSpec("ascend-vnpu-0", "", 0,
                                    extended={"huawei.com/Ascend310P-2c": "8", "huawei.com/Ascend310P-4c": "2"},
                                    labels={"accelerator": "huawei-Ascend310P", "huawei.com/npu.chip.name": "310P3"}))
    fleet["acme"] = [NodeSpec("acme-x1-0", "", 0, extended={"acme.example/npu": "8"},
                              labels={"acme.example/npu.product": "X1", "acme.example/npu.memory": "64"})]
    return fleet


def _catalog_from_the_agent_chart(workdir: Path) -> Path:
    """The catalog file the agent chart mounts for `acceleratorCatalog` (rendered by the real helm)."""
    spec = importlib.util.spec_from_file_location("fetch_tools", ROOT / "scripts" / "fetch_tools.py")
    assert spec and spec.loader
    tools = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tools)
    values = workdir / "catalog-values.yaml"
    values.write_text(yaml.safe_dump({"acceleratorCatalog": ACME_CATALOG}))
    chart = ROOT / "deploy" / "helm" / "federator-agent"
    proc = subprocess.run([str(tools.helm()), "template", "agent", str(chart),
                           "-f", str(chart / "ci" / "test-values.yaml"), "-f", str(values)],
                          capture_output=True, text=True, check=True)
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-accelerator-catalog")]
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"]
    flag = "--accelerator-catalog=/etc/federator/accelerator-catalog/accelerators.yaml"
    assert flag in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    path = workdir / "accelerators.yaml"
    path.write_text(cm["data"]["accelerators.yaml"])
    return path


@pytest.fixture(scope="module")
def vkube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    workdir = tmp_path_factory.mktemp("vendor-federation")
    with own_bed(tmp_path_factory.mktemp("vendor-testbed"), members=MEMBERS, nodes=_fleet()) as bed:
        bed.kubectl("host", "create", "namespace", NAMESPACE)
        catalog = _catalog_from_the_agent_chart(workdir)
        with serving(bed, workdir, "--accelerator-catalog", str(catalog), watch=NAMESPACE) as fed:
            for member in MEMBERS:
                kubeconfig = service_account_kubeconfig(bed, member, "federator-agent", workdir / f"agent-{member}.kc")
                # Only the acme member's operator installed the chart with the catalog value; the others run built-in.
                extra = ["--accelerator-catalog", str(catalog)] if member == "acme" else []
                fed.start_kube_agent(member, kubeconfig=kubeconfig, region=member, extra_args=extra)
            k = Kube(bed, fed, workdir)
            eventually(lambda: ready_members(k) == sorted(MEMBERS), timeout=90,
                       what=lambda: f"every vendor member Ready\n{k.logs()}")
            yield k


def _pools(k: Kube, member: str) -> dict[str, dict[str, Any]]:
    status = k.json("host", "get", "mc", member).get("status") or {}
    pools = status.get("accelerators") or status.get("gpus") or []
    return {p["model"]: p for p in pools}


def _apply(k: Kube, doc: dict[str, Any]) -> None:
    doc.setdefault("apiVersion", "federator.io/v1alpha1")
    doc.setdefault("kind", "FederatedJob")
    doc["metadata"]["namespace"] = NAMESPACE
    k.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(doc))


def _status(k: Kube, name: str) -> dict[str, Any]:
    return dict((k.fj(name, NAMESPACE) or {}).get("status") or {})


def _pods(k: Kube, member: str, placement: str) -> list[dict[str, Any]]:
    return list(k.json(member, "get", "pods", "-n", WORKLOADS, "-l",
                       f"federator.io/placement-id={placement}")["items"])


def test_every_member_reports_its_vendors_devices(vkube: Kube) -> None:
    expect = {
        "nvidia": {"NVIDIA-H100-80GB-HBM3": 8},
        # the chip label 910B3, named as the catalog names it; a pool per vNPU template of the 310P3 node
        "ascend": {"Ascend910B3": 16, "Ascend310P3-vNPU-2c": 8, "Ascend310P3-vNPU-4c": 2},
        "amd": {"AMD-Instinct-MI300X": 8},  # the labeller's AMD_Instinct_MI300X_OAM, named as the catalog names it
        "mig": {"NVIDIA-H100-80GB-HBM3-MIG-1g.10gb": 14, "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb": 4},
        "shared": {"NVIDIA-L4-SHARED": 4},
        "dra": {"NVIDIA-H200": 8},
        "acme": {"Acme-X1": 8},  # a vendor only the operator's catalog knows
    }

    def reported() -> bool:
        return all({m: p["total"] for m, p in _pools(vkube, member).items()} == want
                   for member, want in expect.items())

    eventually(reported, timeout=60, what=lambda: f"pools {expect}; got {[_pools(vkube, m) for m in MEMBERS]}")
    table = vkube.kubectl("host", "get", "mc", "-o", "wide").stdout
    columns = ",".join(f"{k}:.status.accelerators[*].{f}" for k, f in (
        ("VENDOR", "vendor"), ("MODELS", "model"), ("TOTAL", "total"), ("FREE", "free"), ("SHARING", "sharing")))
    pools = vkube.kubectl("host", "get", "mc", "-o", f"custom-columns=NAME:.metadata.name,{columns}").stdout
    (vkube.workdir / "get-mc-wide.txt").write_text(table + "\n" + pools)
    print(table, pools)
    (ascend_row,) = [line for line in table.splitlines() if line.startswith("ascend ")]
    assert "Ascend910B3 16/16" in ascend_row, table  # the MODELS column of `kubectl get mc -o wide`
    assert _pools(vkube, "ascend")["Ascend910B3"]["family"] == "Ascend910B"
    vnpu = _pools(vkube, "ascend")["Ascend310P3-vNPU-2c"]
    assert (vnpu["sharing"], vnpu["unitMilli"], vnpu["family"], vnpu["resourceName"]) == (
        "MIG", 250, "Ascend310P", "huawei.com/Ascend310P-2c")


def test_a_dra_placement_creates_a_claim_that_kube_scheduler_allocates_and_the_pod_runs(vkube: Kube) -> None:
    _apply(vkube, {"metadata": {"name": "on-dra"}, "spec": {
        "kind": "training", "replicas": 1, "resources": {"nvidia.com/gpu": 2, "cpu": "2"},
        "acceleratorModels": ["H200"],
        "template": {"metadata": {"annotations": {DELAY: "600s"}}}}})
    try:
        eventually(lambda: _status(vkube, "on-dra").get("phase") == "Running", timeout=120,
                   what=lambda: f"on-dra Running: {_status(vkube, 'on-dra')}\n{vkube.logs()}")
        status = _status(vkube, "on-dra")
        assert status["cluster"] == "dra"
        (pod,) = _pods(vkube, "dra", status["placementId"])
        spec = pod["spec"]
        assert "nvidia.com/gpu" not in (spec["containers"][0]["resources"].get("limits") or {})
        assert spec["containers"][0]["resources"]["claims"] == [{"name": "accelerators"}]
        (ref,) = spec["resourceClaims"]
        templates = vkube.json("dra", "get", "resourceclaimtemplates", "-n", WORKLOADS)["items"]
        (template,) = [t for t in templates if t["metadata"]["name"] == ref["resourceClaimTemplateName"]]
        owner = template["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("Job", pod["metadata"]["labels"]["job-name"])
        claim_name = pod["status"]["resourceClaimStatuses"][0]["resourceClaimName"]
        claim = vkube.json("dra", "get", "resourceclaim", claim_name, "-n", WORKLOADS)
        results = claim["status"]["allocation"]["devices"]["results"]
        assert len(results) == 2 and {r["pool"] for r in results} == {"dra-h200-0"}
        assert pod["spec"]["nodeName"] == "dra-h200-0" and pod["status"]["phase"] == "Running"
        eventually(lambda: _pools(vkube, "dra")["NVIDIA-H200"]["free"] == 6, timeout=30,
                   what="the member to report the two allocated devices used")
    finally:
        vkube.kubectl("host", "delete", "fj", "on-dra", "-n", NAMESPACE, "--timeout=60s", check=False)
    eventually(lambda: not vkube.json("dra", "get", "resourceclaimtemplates", "-n", WORKLOADS)["items"],
               timeout=60, what="the claim template deleted with its workload")


def test_a_fractional_replica_lands_on_a_member_that_shares_gpus(vkube: Kube) -> None:
    _apply(vkube, {"metadata": {"name": "half-gpu"}, "spec": {
        "kind": "inference", "replicas": 2, "resources": {"nvidia.com/gpu": "500m", "cpu": "1"}}})
    try:
        eventually(lambda: _status(vkube, "half-gpu").get("phase") == "Running", timeout=120,
                   what=lambda: f"half-gpu Running: {_status(vkube, 'half-gpu')}\n{vkube.logs()}")
        status = _status(vkube, "half-gpu")
        placements = status["placements"]
        assert {p["cluster"] for p in placements} <= {"mig", "shared"}
        for p in placements:
            for pod in _pods(vkube, p["cluster"], p["placementId"]):
                limits = pod["spec"]["containers"][0]["resources"]["limits"]
                if p["cluster"] == "mig":
                    assert limits == {"nvidia.com/mig-3g.40gb": "1"}, limits
                else:
                    assert limits == {"nvidia.com/gpu": "2"}, limits  # 2 of 4 time-slicing replicas
                assert pod["status"]["phase"] == "Running"
        print(json.dumps(placements, indent=1))
    finally:
        vkube.kubectl("host", "delete", "fj", "half-gpu", "-n", NAMESPACE, "--timeout=60s", check=False)


def test_a_fraction_stays_pending_naming_what_is_missing_where_no_member_shares_that_model(vkube: Kube) -> None:
    # Asked as a user asks AMD devices (nvidia.com/gpu would stay on NVIDIA pools, another reason).
    _apply(vkube, {"metadata": {"name": "half-mi300x"}, "spec": {
        "kind": "inference", "replicas": 1, "resources": {"amd.com/gpu": "500m", "cpu": "1"},
        "acceleratorModels": ["MI300X"]}})
    try:
        def reason() -> dict[str, Any]:
            return dict(_status(vkube, "half-mi300x").get("pendingReason") or {})

        eventually(lambda: reason().get("code") == "SharingUnavailable", timeout=60,
                   what=lambda: f"a SharingUnavailable pending reason: {_status(vkube, 'half-mi300x')}")
        message = reason()["message"]
        assert "amd offers no shared or MIG device for a 500m replica: AMD-Instinct-MI300X (None)" in message
        assert _status(vkube, "half-mi300x")["phase"] == "Pending"
        print(vkube.kubectl("host", "get", "fj", "half-mi300x", "-n", NAMESPACE, "-o", "wide").stdout, message)
    finally:
        vkube.kubectl("host", "delete", "fj", "half-mi300x", "-n", NAMESPACE, "--timeout=60s", check=False)


def test_an_ascend_placement_asks_for_the_mindcluster_resource_and_pins_the_chip(vkube: Kube) -> None:
    # Users write the family (Ascend910B); the member's nodes are labelled with the chip (910B3).
    _apply(vkube, {"metadata": {"name": "on-ascend"}, "spec": {
        "kind": "training", "replicas": 2, "resources": {"cpu": "2"},
        "accelerators": [{"model": "Ascend910B", "count": 8}],
        "template": {"metadata": {"annotations": {DELAY: "600s"}},
                     "spec": {"containers": [{"name": "train", "image": "registry.invalid/llm-train:cann8"}]}}}})
    try:
        eventually(lambda: _status(vkube, "on-ascend").get("phase") == "Running", timeout=120,
                   what=lambda: f"on-ascend Running: {_status(vkube, 'on-ascend')}\n{vkube.logs()}")
        status = _status(vkube, "on-ascend")
        assert status["cluster"] == "ascend"
        pods = _pods(vkube, "ascend", status["placementId"])
        assert len(pods) == 2 and {p["spec"]["nodeName"] for p in pods} == {"ascend-910b-0", "ascend-910b-1"}
        for pod in pods:
            main = pod["spec"]["containers"][0]
            assert main["resources"]["limits"] == {"huawei.com/Ascend910": "8"}
            assert "nvidia.com/gpu" not in main["resources"]["requests"]
            assert pod["spec"]["nodeSelector"]["huawei.com/npu.chip.name"] == "910B3"
            assert main["image"] == "registry.invalid/llm-train:cann8"
    finally:
        vkube.kubectl("host", "delete", "fj", "on-ascend", "-n", NAMESPACE, "--timeout=60s", check=False)


def test_ascend_vnpus_serve_a_fraction_of_the_chip_and_a_template_named_by_model(vkube: Kube) -> None:
    """Outside QA, V2: the vNPUs were left out; a 250m replica now takes a 2-core template, one a replica, and a
    job naming the 4-core template takes those; neither takes a whole chip, nor a 910B."""
    _apply(vkube, {"metadata": {"name": "ocr-vnpu"}, "spec": {
        "kind": "inference", "replicas": 3, "resources": {"huawei.com/Ascend310P": "250m", "cpu": "1"}}})
    _apply(vkube, {"metadata": {"name": "asr-vnpu"}, "spec": {
        "kind": "inference", "replicas": 2, "resources": {"cpu": "1"},
        "accelerators": [{"model": "Ascend310P3-vNPU-4c", "count": 1}]}})
    try:
        for name, template in (("ocr-vnpu", "2c"), ("asr-vnpu", "4c")):
            eventually(lambda n=name: _status(vkube, n).get("phase") == "Running", timeout=120,
                       what=lambda n=name: f"{n} Running: {_status(vkube, n)}\n{vkube.logs()}")
            (placement,) = _status(vkube, name)["placements"]
            assert (placement["cluster"], placement["acceleratorModel"]) == ("ascend", f"Ascend310P3-vNPU-{template}")
            pods = _pods(vkube, "ascend", placement["placementId"])
            assert len(pods) == placement["replicas"]
            for pod in pods:
                assert pod["spec"]["containers"][0]["resources"]["limits"] == {f"huawei.com/Ascend310P-{template}": "1"}
                assert pod["spec"]["nodeSelector"]["huawei.com/npu.chip.name"] == "310P3"
                assert pod["spec"]["nodeName"] == "ascend-vnpu-0" and pod["status"]["phase"] == "Running"
        eventually(lambda: {m: p["free"] for m, p in _pools(vkube, "ascend").items()} == {
            "Ascend910B3": 16, "Ascend310P3-vNPU-2c": 5, "Ascend310P3-vNPU-4c": 0}, timeout=60,
            what=lambda: f"3 of 8 2c and both 4c taken: {_pools(vkube, 'ascend')}")
        print(vkube.kubectl("host", "get", "fj", "-n", NAMESPACE, "-o", "wide").stdout,
              vkube.kubectl("host", "get", "mc", "ascend", "-o", "wide").stdout)
    finally:
        for name in ("ocr-vnpu", "asr-vnpu"):
            vkube.kubectl("host", "delete", "fj", name, "-n", NAMESPACE, "--timeout=60s", check=False)


def test_a_job_moves_to_its_ascend_alternative_when_the_nvidia_member_is_full(vkube: Kube) -> None:
    _apply(vkube, {"metadata": {"name": "fill-h100"}, "spec": {
        "kind": "training", "replicas": 1, "resources": {"nvidia.com/gpu": 8, "cpu": "1"},
        "acceleratorModels": ["H100"],
        "template": {"metadata": {"annotations": {DELAY: "600s"}}}}})
    try:
        eventually(lambda: _status(vkube, "fill-h100").get("cluster") == "nvidia", timeout=120,
                   what=lambda: f"fill-h100 on nvidia: {_status(vkube, 'fill-h100')}")
        _apply(vkube, {"metadata": {"name": "either"}, "spec": {
            "kind": "training", "replicas": 1, "resources": {"cpu": "1"},
            "accelerators": [
                {"model": "H100", "count": 8},
                {"model": "Ascend910B", "count": 8,
                 "template": {"spec": {"containers": [{"image": "registry.invalid/llm-train:cann8"}]}}}],
            "template": {"metadata": {"annotations": {DELAY: "600s"}},
                         "spec": {"containers": [{"name": "train", "image": "registry.invalid/llm-train:cuda12"}]}}}})
        eventually(lambda: _status(vkube, "either").get("phase") == "Running", timeout=120,
                   what=lambda: f"either Running: {_status(vkube, 'either')}\n{vkube.logs()}")
        status = _status(vkube, "either")
        assert status["cluster"] == "ascend"
        (pod,) = _pods(vkube, "ascend", status["placementId"])
        main = pod["spec"]["containers"][0]
        assert main["image"] == "registry.invalid/llm-train:cann8"
        assert main["resources"]["limits"] == {"huawei.com/Ascend910": "8"}
        print(vkube.kubectl("host", "get", "fj", "-n", NAMESPACE, "-o", "wide").stdout)
    finally:
        for name in ("either", "fill-h100"):
            vkube.kubectl("host", "delete", "fj", name, "-n", NAMESPACE, "--timeout=60s", check=False)


def test_a_vendor_added_by_the_catalog_value_runs_jobs_without_code(vkube: Kube) -> None:
    pool = _pools(vkube, "acme")["Acme-X1"]
    assert (pool["vendor"], pool["family"], pool["resourceName"], pool["memoryMiB"]) == (
        "acme", "Acme-X", "acme.example/npu", 65536)
    _apply(vkube, {"metadata": {"name": "on-acme"}, "spec": {
        "kind": "training", "replicas": 1, "resources": {"cpu": "1"},
        "accelerators": [{"model": "Acme-X", "count": 4}],  # the family the operator's catalog names
        "template": {"metadata": {"annotations": {DELAY: "600s"}}}}})
    try:
        eventually(lambda: _status(vkube, "on-acme").get("phase") == "Running", timeout=120,
                   what=lambda: f"on-acme Running: {_status(vkube, 'on-acme')}\n{vkube.logs()}")
        status = _status(vkube, "on-acme")
        assert status["cluster"] == "acme"
        (pod,) = _pods(vkube, "acme", status["placementId"])
        assert pod["spec"]["containers"][0]["resources"]["limits"] == {"acme.example/npu": "4"}
        assert pod["spec"]["nodeSelector"]["acme.example/npu.product"] == "X1"
        assert pod["spec"]["nodeName"] == "acme-x1-0" and pod["status"]["phase"] == "Running"
        print(vkube.kubectl("host", "get", "fj", "on-acme", "-n", NAMESPACE, "-o", "wide").stdout)
    finally:
        vkube.kubectl("host", "delete", "fj", "on-acme", "-n", NAMESPACE, "--timeout=60s", check=False)
