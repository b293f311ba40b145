"""A replica's container exits non-zero on a member: the job fails naming the pod and exit code (outside tester F1).

The agent's pod watch keeps only active pods, so a pod that turns Failed leaves it with a DELETED event carrying
its state before (Running). A 2 x 8 gang one of whose replicas was OOMKilled read as "pod ... was deleted in the
member cluster" (the Job controller deleting the other replica) and was re-queued again and again; a gang whose
replicas all failed read "BackoffLimitExceeded: Job has reached the specified backoff limit", naming no pod.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, WORKLOADS, Kube
from support import eventually

try:
    from tests.testbed.testbed import DELAY_ANNOTATION, FAIL_ANNOTATION
except ImportError:  # kube_support put tests/testbed on sys.path
    from testbed import DELAY_ANNOTATION, FAIL_ANNOTATION  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]


def _gang(name: str, annotations: dict[str, str]) -> str:
    """A 2 x 8 H100 gang never placed again after a failure (`failover: keep`), so its end state is the
    placement's: Failed, in the agent's words."""
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE, "annotations": {"federator.io/failover": "keep"}},
        "spec": {"kind": "training", "replicas": 2, "resources": {"nvidia.com/gpu": 8, "cpu": "2"},
                 "acceleratorModels": ["H100"], "template": {"metadata": {"annotations": annotations}}}})


def _pods(kube: Kube, pid: str) -> list[dict[str, Any]]:
    return kube.json("member-a", "get", "pods", "-n", WORKLOADS, "-l", f"federator.io/placement-id={pid}")["items"]


def _said(kube: Kube, name: str) -> str:
    """The job's status message and every Event about it, one string to search."""
    events = kube.json("host", "get", "events", "-n", JOBS_NAMESPACE,
                       "--field-selector", f"involvedObject.name={name}")["items"]
    message = str(((kube.fj(name) or {}).get("status") or {}).get("message", ""))
    return "\n".join([message, *(str(e.get("message", "")) for e in events)])


def test_a_replica_oomkilled_fails_the_gang_naming_its_exit_not_the_sibling_the_job_controller_deleted(
        kube: Kube) -> None:
    """The tester's repro: one replica's status patched to what the kubelet writes for an OOMKilled container
    (status subresource); the Job controller fails the gang (backoffLimit 0) and deletes the other replica."""
    kube.kubectl("host", "apply", "-f", "-", input=_gang("oom-gang", {DELAY_ANNOTATION: "600s"}))
    try:
        eventually(lambda: kube.phase("oom-gang") == "Running", timeout=120,
                   what=lambda: f"oom-gang Running\n{kube.logs()}")
        pid = kube.fj("oom-gang")["status"]["placementId"]  # type: ignore[index]
        victim = sorted(_pods(kube, pid), key=lambda p: p["metadata"]["name"])[0]
        name, node = victim["metadata"]["name"], victim["spec"]["nodeName"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        main = victim["spec"]["containers"][0]["name"]
        status = {"status": {"phase": "Failed", "containerStatuses": [{
            "name": main, "image": victim["spec"]["containers"][0]["image"], "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": now,
                                     "finishedAt": now}}}]}}
        kube.kubectl("member-a", "patch", "pod", "-n", WORKLOADS, name, "--subresource=status", "--type=merge",
                     "-p", json.dumps(status))
        eventually(lambda: kube.phase("oom-gang") == "Failed", timeout=90,
                   what=lambda: f"oom-gang Failed (it says {_said(kube, 'oom-gang')!r})\n{kube.logs()}")
        said = _said(kube, "oom-gang")
        assert f"pod {name} on node {node}: container {main} exited with code 137 (OOMKilled)" in said, said
        assert "was deleted in the member cluster" not in said, said
        assert kube.fj("oom-gang")["status"]["placementId"] == pid  # type: ignore[index]  # never re-placed
    finally:
        kube.kubectl("host", "delete", "fj", "oom-gang", "--wait=false", check=False)


def test_a_gang_whose_replicas_all_fail_names_a_pod_and_exit_code_not_the_backoff_limit(kube: Kube) -> None:
    """The test bed's fail annotation: every replica's container exits 1 at once."""
    kube.kubectl("host", "apply", "-f", "-", input=_gang("all-fail-gang", {FAIL_ANNOTATION: "true",
                                                                            DELAY_ANNOTATION: "5s"}))
    try:
        eventually(lambda: kube.phase("all-fail-gang") == "Failed", timeout=120,
                   what=lambda: f"all-fail-gang Failed (it says {_said(kube, 'all-fail-gang')!r})\n{kube.logs()}")
        message = str(kube.fj("all-fail-gang")["status"]["message"])  # type: ignore[index]
        assert "exited with code 1 (Error)" in message and message.count("pod ") >= 1, message
        assert "BackoffLimitExceeded" not in message, message
    finally:
        kube.kubectl("host", "delete", "fj", "all-fail-gang", "--wait=false", check=False)
