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
           "spec": {"kind": "training", "replicas": 1, "acceleratorModels": ["H100"],
                    "resources": {"nvidia.com/gpu": 8, "cpu": "2"},
                    "template": {"metadata": {"annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "600s"}}}}}
    kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(doc))
    try:
        eventually(lambda: kube.phase("with-events") in ("Placed", "Running"), timeout=120,
                   what=lambda: f"with-events placed\n{kube.logs()}")
        uid = kube.fj("with-events")["metadata"]["uid"]  # type: ignore[index]

        def placed() -> list[dict[str, Any]]:
            return list(kube.json("host", "get", "events", "-n", JOBS_NAMESPACE, "--field-selector",
                                  "involvedObject.kind=FederatedJob,involvedObject.name=with-events,reason=Placed")
                        ["items"])

        eventually(lambda: bool(placed()), timeout=60, what=lambda: f"a Placed event\n{kube.logs()}")
        (event,) = placed()
        assert event["involvedObject"]["uid"] == uid
        assert event["type"] == "Normal"
        assert event["message"].startswith("placed in member-a (1x on NVIDIA-H100-80GB-HBM3)")
        table = kube.kubectl("host", "get", "events", "-n", JOBS_NAMESPACE, "--field-selector",
                             "involvedObject.name=with-events").stdout
        assert "Placed" in table and "federatedjob/with-events" in table
    finally:
        kube.kubectl("host", "delete", "fj", "with-events", "--timeout=60s", "--ignore-not-found", check=False)


def test_submit_warnings_become_warning_events_and_an_unknown_model_fails_naming_the_field(kube: Kube) -> None:
    """What `federator submit` prints on stderr, a kubectl user reads in `kubectl describe fj` / `get events`."""
    def doc(name: str, second: str) -> str:
        return yaml.safe_dump({
            "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
            "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"},
                     "accelerators": [{"model": "H100", "count": 8}, {"model": second, "count": 16}],
                     "template": {"spec": {"containers": [{"name": "main", "image": "llm:cuda12"}]}}}})

    kube.kubectl("host", "apply", "-f", "-", input=doc("one-image", "Ascend910B"))
    kube.kubectl("host", "apply", "-f", "-", input=doc("typo-model", "Ascend910X"))
    try:
        def warnings() -> list[dict[str, Any]]:
            return list(kube.json("host", "get", "events", "-n", JOBS_NAMESPACE, "--field-selector",
                                  "involvedObject.name=one-image,reason=SubmitWarning")["items"])

        (event,) = eventually(warnings, timeout=60, what=lambda: f"a SubmitWarning event\n{kube.logs()}")
        assert event["type"] == "Warning"
        assert event["message"].startswith("spec.accelerators[1]: runs on huawei but has no template override")
        assert kube.phase("one-image") != "Failed"  # accepted: a warning is advice

        eventually(lambda: kube.phase("typo-model") == "Failed", timeout=60,
                   what=lambda: f"typo-model refused\n{kube.logs()}")
        message = kube.fj("typo-model")["status"]["message"]  # type: ignore[index]
        assert "spec.accelerators[1].model: unknown accelerator model 'Ascend910X'" in message
        assert "the fleet has: " in message
    finally:
        kube.kubectl("host", "delete", "fj", "one-image", "typo-model", "-n", JOBS_NAMESPACE, "--ignore-not-found",
                     "--wait=false", check=False)


def test_a_federated_job_over_the_pod_security_level_fails_naming_the_field_with_an_invalid_event(
        kube: Kube) -> None:
    """A privileged container would have reached a provider's cluster: refused at submit, said in the status and
    as a Warning Event, as `kubectl describe fj` shows a Pod's refusal."""
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
           "metadata": {"name": "privileged", "namespace": JOBS_NAMESPACE},
           "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"},
                    "template": {"spec": {"containers": [{"name": "main", "image": "llm:1",
                                                          "securityContext": {"privileged": True}}]}}}}
    kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(doc))
    said = 'spec.template.spec.containers[0].securityContext.privileged: not allowed under pod security "baseline"'
    try:
        eventually(lambda: kube.phase("privileged") == "Failed", timeout=60,
                   what=lambda: f"privileged refused\n{kube.logs()}")
        assert kube.fj("privileged")["status"]["message"] == said  # type: ignore[index]

        def invalid() -> list[dict[str, Any]]:
            return list(kube.json("host", "get", "events", "-n", JOBS_NAMESPACE, "--field-selector",
                                  "involvedObject.name=privileged,reason=Invalid")["items"])

        (event,) = eventually(invalid, timeout=60, what=lambda: f"an Invalid event\n{kube.logs()}")
        assert (event["type"], event["message"]) == ("Warning", said)
        assert not [j for j in kube.member_jobs("member-a") + kube.member_jobs("member-b")
                    if j["metadata"]["annotations"].get("federator.io/job-id", "").startswith("privileged")]
    finally:
        kube.kubectl("host", "delete", "fj", "privileged", "-n", JOBS_NAMESPACE, "--ignore-not-found",
                     "--wait=false", check=False)
