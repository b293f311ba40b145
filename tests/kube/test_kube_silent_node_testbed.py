"""A node under a running gang stops answering, and the gang's other rank then crashes: the gang was stopped by the
member, and its job is queued again, not Failed for good in the user's words (outside pretraining QA, P1).

On the test bed kwok plays every kubelet: with member-a's kwok paused (SIGSTOP) no node there is heartbeated, so
the member's node lifecycle controller turns them NotReady (Unknown) after its grace period and taints them
unreachable, and their pods stay Running for the 300 s toleration, as real nodes that lost power. (Removing one
node's kwok annotation does not stop kwok heartbeating it: tried, the node stayed Ready.) The surviving rank's crash is
what the kubelet writes for a container that exited 1 (status subresource), as test_kube_pod_exits.py does.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, WORKLOADS, Kube
from support import eventually

try:
    from tests.testbed.testbed import DELAY_ANNOTATION, Testbed
except ImportError:  # kube_support put tests/testbed on sys.path
    from testbed import DELAY_ANNOTATION, Testbed  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

NAME = "silent-gang"


def _pods(kube: Kube, pid: str) -> list[dict[str, Any]]:
    return kube.json("member-a", "get", "pods", "-n", WORKLOADS, "-l", f"federator.io/placement-id={pid}")["items"]


def _ready(kube: Kube, node: str) -> str:
    conditions = kube.json("member-a", "get", "node", node)["status"].get("conditions") or []
    return next((c["status"] for c in conditions if c.get("type") == "Ready"), "")


def test_a_rank_that_crashes_after_its_peers_node_stopped_answering_is_queued_again(kube: Kube,
                                                                                     testbed: Testbed) -> None:
    job = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
           "metadata": {"name": NAME, "namespace": JOBS_NAMESPACE},
           "spec": {"kind": "training", "replicas": 2, "resources": {"nvidia.com/gpu": 8, "cpu": "2"},
                    "acceleratorModels": ["H100"],
                    "template": {"metadata": {"annotations": {DELAY_ANNOTATION: "900s"}}}}}
    kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(job))
    kwok = testbed._health["member-a"][4].popen.pid  # member-a's kubelets
    silent, paused = "", False
    try:
        eventually(lambda: kube.phase(NAME) == "Running", timeout=120, what=lambda: f"{NAME} Running\n{kube.logs()}")
        pid = kube.fj(NAME)["status"]["placementId"]  # type: ignore[index]
        pods = sorted(_pods(kube, pid), key=lambda p: p["metadata"]["name"])
        assert len({p["spec"]["nodeName"] for p in pods}) == 2, "one replica per H100 node"
        survivor, lost = pods
        silent = lost["spec"]["nodeName"]
        os.kill(kwok, signal.SIGSTOP)  # the kubelets go quiet
        paused = True
        eventually(lambda: _ready(kube, silent) == "Unknown", timeout=180,
                   what=lambda: f"{silent} NotReady (Ready {_ready(kube, silent)!r})")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        main = survivor["spec"]["containers"][0]
        status = {"status": {"phase": "Failed", "containerStatuses": [{
            "name": main["name"], "image": main["image"], "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}}}]}}
        kube.kubectl("member-a", "patch", "pod", "-n", WORKLOADS, survivor["metadata"]["name"],
                     "--subresource=status", "--type=merge", "-p", json.dumps(status))

        def requeued() -> bool:
            said = "\n".join(kube.event_messages(NAME))
            return "stopped answering (NotReady" in said and "exited with code 1" in said

        eventually(requeued, timeout=120, what=lambda: f"{NAME} re-queued for {silent} (it says "
                                                       f"{kube.event_messages(NAME)!r}, phase {kube.phase(NAME)})")
        assert kube.phase(NAME) != "Failed", kube.fj(NAME)
    finally:
        kube.kubectl("host", "delete", "fj", NAME, "--wait=false", check=False)
        if paused:
            os.kill(kwok, signal.SIGCONT)
            eventually(lambda: _ready(kube, silent) == "True", timeout=120, what=f"{silent} Ready again")
