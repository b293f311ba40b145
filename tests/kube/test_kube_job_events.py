"""Kubernetes Events on FederatedJobs: `kubectl get events` tells where a job was placed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, Kube
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]


def test_a_placed_job_has_a_placed_event(kube: Kube) -> None:
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
           "metadata": {"name": "with-events", "namespace": JOBS_NAMESPACE},
           "spec": {"kind": "training", "replicas": 1, "gpuModels": ["H100"],
                    "resources": {"nvidia.com/gpu": 8, "cpu": "2"},
                    "template": {"metadata": {"annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "600s"}}}}}
    kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(doc))
    try:
        eventually(lambda: kube.phase("with-events") in ("Placed", "Running"), timeout=120,
                   what=f"with-events placed\n{kube.logs()}")
        uid = kube.fj("with-events")["metadata"]["uid"]  # type: ignore[index]

        def placed() -> list[dict[str, Any]]:
            return list(kube.json("host", "get", "events", "-n", JOBS_NAMESPACE, "--field-selector",
                                  "involvedObject.kind=FederatedJob,involvedObject.name=with-events,reason=Placed")
                        ["items"])

        eventually(lambda: bool(placed()), timeout=60, what=f"a Placed event\n{kube.logs()}")
        (event,) = placed()
        assert event["involvedObject"]["uid"] == uid
        assert event["type"] == "Normal"
        assert event["message"].startswith("placed in member-a (1x on NVIDIA-H100-80GB-HBM3)")
        table = kube.kubectl("host", "get", "events", "-n", JOBS_NAMESPACE, "--field-selector",
                             "involvedObject.name=with-events").stdout
        assert "Placed" in table and "federatedjob/with-events" in table
    finally:
        kube.kubectl("host", "delete", "fj", "with-events", "--timeout=60s", "--ignore-not-found", check=False)
