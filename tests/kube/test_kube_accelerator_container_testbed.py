"""On the test bed (a real API server, kwok nodes): a FederatedJob whose first container is a log shipper lands with
its accelerators on the container its annotation names, and one whose sidecar asks for accelerators of its own is
refused, naming the field (outside testers S1, F5; template_accelerators.py)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, Kube
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"  # kwok: how long a Job's pod runs


def _job(name: str, pod: dict[str, Any]) -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "replicas": 1, "acceleratorModels": ["H100"],
                 "resources": {"nvidia.com/gpu": 2, "cpu": "1", "memory": "1Gi"},
                 "template": {"metadata": {"annotations": {DELAY: "1s",
                                                           "federator.io/accelerator-container": "trainer"}},
                              "spec": pod}}})


def test_the_accelerators_land_on_the_named_container_and_a_sidecars_own_are_refused(kube: Kube) -> None:
    pod = {"containers": [{"name": "logshipper", "image": "ship:1"}, {"name": "trainer", "image": "train:1"}]}
    kube.kubectl("host", "apply", "-f", "-", input=_job("named-trainer", pod))
    try:
        def rendered() -> list[dict[str, Any]]:
            pid = ((kube.fj("named-trainer") or {}).get("status") or {}).get("placementId")
            return [j for j in kube.member_jobs("member-a")
                    if pid and j["metadata"]["annotations"].get("federator.io/placement-id") == pid]
        eventually(lambda: bool(rendered()), timeout=120, what=lambda: f"the member's Job\n{kube.logs()}")
        shipper, trainer = rendered()[0]["spec"]["template"]["spec"]["containers"]
        assert trainer["resources"]["limits"] == {"nvidia.com/gpu": "2"}
        assert trainer["resources"]["requests"]["nvidia.com/gpu"] == "2"
        assert "nvidia.com/gpu" not in str(shipper.get("resources"))
    finally:
        kube.kubectl("host", "delete", "fj", "named-trainer", "-n", JOBS_NAMESPACE, "--wait=false", check=False)

    sidecar = {**pod, "initContainers": [{"name": "proxy", "image": "p:1", "restartPolicy": "Always",
                                          "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}
    kube.kubectl("host", "apply", "-f", "-", input=_job("sidecar-gpus", sidecar), check=False)
    try:
        eventually(lambda: kube.phase("sidecar-gpus") == "Failed", timeout=60, what=lambda: f"Failed\n{kube.logs()}")
        message = kube.fj("sidecar-gpus")["status"]["message"]  # type: ignore[index]
        assert "spec.template.spec.initContainers[0].resources.limits[nvidia.com/gpu]: a pod template may not ask " \
               "for an accelerator itself" in message
    finally:
        kube.kubectl("host", "delete", "fj", "sidecar-gpus", "-n", JOBS_NAMESPACE, "--wait=false", check=False)
