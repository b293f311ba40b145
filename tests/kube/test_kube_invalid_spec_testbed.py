"""A FederatedJob a member's kube-apiserver refuses as invalid fails at once with the API server's words.

Outside QA (an ML engineer on the test bed): a container port name over 15 characters passes the federator's
checks and the CRD schema, but a member's kube-apiserver refuses the Job (422 Invalid). The agent answered a plain
refusal, and the job was placed and refused again for minutes, until --max-refusals. Now the agent says the object
is invalid (Ack.invalid); the test bed's two members have no provider label (one provider, the federation's own),
so the first such answer fails the job (server/invalid_specs.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, Kube
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]


def bad_port_job(name: str) -> str:
    doc: dict[str, Any] = {
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "resources": {"nvidia.com/gpu": 1, "cpu": "2"}, "acceleratorModels": ["H100"],
                 "template": {"spec": {"containers": [{
                     "name": "main", "image": "busybox",
                     "ports": [{"name": "metrics-exporter-port", "containerPort": 9100}]}]}}},
    }
    return yaml.safe_dump(doc)


def test_a_job_the_member_api_server_refuses_as_invalid_fails_with_its_words(kube: Kube) -> None:
    kube.kubectl("host", "apply", "-f", "-", input=bad_port_job("bad-port"))
    try:
        eventually(lambda: kube.phase("bad-port") == "Failed", timeout=60,
                   what=lambda: f"bad-port Failed\n{kube.fj('bad-port')}\n{kube.logs()}")
        status = kube.fj("bad-port")["status"]  # type: ignore[index]
        assert status["pendingReason"]["code"] == "InvalidSpec", status
        message = status["message"]
        assert "the job's spec is invalid" in message, message
        assert "ports[0].name" in message and "metrics-exporter-port" in message, message
        assert "HTTP 422 Invalid" in message, message
        assert "refused 10 times" not in message
    finally:
        kube.kubectl("host", "delete", "fj", "bad-port", "--timeout=60s", check=False)
