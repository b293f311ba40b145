"""On the test bed (a real API server, kwok nodes): a FederatedJob whose template pins the product label the agent
pins the placed pool with is refused when placement could choose another value (`[A100]` selects member-a's and
member-b's A100s, and any other A100 model), and honoured when the job names the pinned model: the pods carry the
user's value, never one written over it (outside QA new60 N1; template_pins.py)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, Kube
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"  # kwok: how long a Job's pod runs
PRODUCT = "nvidia.com/gpu.product"
A100_80 = "NVIDIA-A100-SXM4-80GB"


def _job(name: str, models: list[str]) -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "replicas": 1, "acceleratorModels": models,
                 "resources": {"nvidia.com/gpu": 4, "cpu": "1", "memory": "1Gi"},
                 "template": {"metadata": {"annotations": {DELAY: "1s"}},
                              "spec": {"nodeSelector": {PRODUCT: A100_80},
                                       "containers": [{"name": "t", "image": "t:1"}]}}}})


def test_a_pin_is_refused_where_placement_may_not_honour_it_and_kept_where_it_does(kube: Kube) -> None:
    kube.kubectl("host", "apply", "-f", "-", input=_job("pin-family", ["A100"]), check=False)
    try:
        eventually(lambda: kube.phase("pin-family") == "Failed", timeout=60, what=lambda: f"Failed\n{kube.logs()}")
        message = kube.fj("pin-family")["status"]["message"]  # type: ignore[index]
        assert f"spec.template.spec.nodeSelector[{PRODUCT}]: pins the pods to '{A100_80}'" in message
        assert f"name {A100_80} in spec.acceleratorModels" in message
    finally:
        kube.kubectl("host", "delete", "fj", "pin-family", "-n", JOBS_NAMESPACE, "--wait=false", check=False)

    kube.kubectl("host", "apply", "-f", "-", input=_job("pin-exact", [A100_80]))
    try:
        def rendered() -> list[dict[str, Any]]:
            pid = ((kube.fj("pin-exact") or {}).get("status") or {}).get("placementId")
            return [j for cluster in ("member-a", "member-b") for j in kube.member_jobs(cluster)
                    if pid and j["metadata"]["annotations"].get("federator.io/placement-id") == pid]
        eventually(lambda: bool(rendered()), timeout=120, what=lambda: f"the member's Job\n{kube.logs()}")
        pod = rendered()[0]["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {PRODUCT: A100_80}
    finally:
        kube.kubectl("host", "delete", "fj", "pin-exact", "-n", JOBS_NAMESPACE, "--wait=false", check=False)
