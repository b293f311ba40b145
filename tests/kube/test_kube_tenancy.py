"""Tenancy in Kubernetes mode: a Queue's namespaceSelector, and the ClusterRoles users are bound to."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, Kube, queue_yaml
from support import eventually, federator_cli

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]


def _job(name: str, queue: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "replicas": 1, "queue": queue, "resources": {"cpu": "1"}},
    })


def _valid(kube: Kube, name: str) -> str:
    obj = kube.json("host", "get", "queue", name)
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return ""
    return next((c["status"] for c in status.get("conditions") or [] if c["type"] == "Valid"), "")


def _team_a_queue(kube: Kube, queue: str) -> str:
    """A Queue for namespaces labelled federator.io/tenant=team-a only, once the federator has accepted it."""
    kube.kubectl("host", "apply", "-f", "-", input=queue_yaml(queue, {
        "weight": 1, "namespaceSelector": {"matchLabels": {"federator.io/tenant": "team-a"}}}))
    eventually(lambda: _valid(kube, queue) == "True", timeout=60,
               what=lambda: f"Queue {queue} accepted\n{kube.logs()}")
    return queue


def _audit(kube: Kube) -> list[dict[str, Any]]:
    path = kube.workdir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_federated_job_from_a_namespace_its_queue_does_not_select_waits_with_the_reason_until_it_does(
        kube: Kube) -> None:
    """Outside QA G1: a GitOps tool applies the job and the namespace label (or the Queue) in no guaranteed order.
    The job waits Pending, pendingReason QueueNotAllowed, with a Warning Event and an audit line, and the same
    object is admitted once the namespace is labelled; before, it was Failed for good."""
    queue = _team_a_queue(kube, "team-a-only")
    try:
        kube.kubectl("host", "apply", "-f", "-", input=_job("outsider", queue))

        def reason() -> str:
            status = (kube.fj("outsider") or {}).get("status") or {}
            return str((status.get("pendingReason") or {}).get("code", ""))

        eventually(lambda: reason() == "QueueNotAllowed", timeout=60, what=lambda: f"outsider waits\n{kube.logs()}")
        status = kube.fj("outsider")["status"]  # type: ignore[index]
        assert status["phase"] == "Pending" and "jobId" not in status
        [placed] = [c for c in status["conditions"] if c["type"] == "Placed"]
        assert (placed["status"], placed["reason"]) == ("False", "QueueNotAllowed")
        assert f"namespace {JOBS_NAMESPACE!r} may not use queue {queue!r}" in status["message"]
        assert "federator.io/tenant=team-a" in status["message"]

        def events() -> list[dict[str, Any]]:
            return list(kube.json("host", "get", "events", "-n", JOBS_NAMESPACE, "--field-selector",
                                  "involvedObject.name=outsider,reason=QueueNotAllowed")["items"])

        [event] = eventually(events, timeout=30, what="the QueueNotAllowed Event")
        assert event["type"] == "Warning" and "namespaceSelector" in event["message"]
        assert event["message"].startswith("waits, judged again every 5s: ")
        lines = _audit(kube)
        assert [x for x in lines if x["action"] == "queue.change" and x["object"]["name"] == queue]
        [refusal] = [x for x in lines if x["action"] == "federatedjob.refuse" and x["object"]["name"] == "outsider"]
        assert (refusal["result"], refusal["rule"], refusal["object"]["queue"]) == (
            "refused", "namespace-selector", queue)

        # the namespace gains the label: the waiting job is admitted, and so is its next job
        kube.kubectl("host", "label", "namespace", JOBS_NAMESPACE, "federator.io/tenant=team-a")
        kube.kubectl("host", "apply", "-f", "-", input=_job("insider", queue))
        for name in ("outsider", "insider"):
            eventually(lambda name=name: kube.phase(name) in ("Placed", "Running", "Succeeded"), timeout=120,
                       what=lambda name=name: f"{name} placed\n{kube.logs()}")
        assert len(events()) == 1  # said once while it waited
    finally:
        kube.kubectl("host", "label", "namespace", JOBS_NAMESPACE, "federator.io/tenant-", check=False)
        kube.kubectl("host", "delete", "fj", "outsider", "insider", "-n", JOBS_NAMESPACE, "--ignore-not-found",
                     "--wait=false", check=False)
        kube.kubectl("host", "delete", "queue", queue, "--ignore-not-found")


def test_a_queue_with_a_bad_namespace_selector_is_invalid_naming_the_field(kube: Kube) -> None:
    queue = "bad-selector"
    kube.kubectl("host", "apply", "-f", "-", input=queue_yaml(queue, {
        "namespaceSelector": {"matchExpressions": [{"key": "tier", "operator": "In"}]}}))
    try:
        eventually(lambda: _valid(kube, queue) == "False", timeout=60,
                   what=lambda: f"Queue {queue} refused\n{kube.logs()}")
        [cond] = kube.json("host", "get", "queue", queue)["status"]["conditions"]
        assert "spec.namespaceSelector.matchExpressions[0].values" in cond["message"]
    finally:
        kube.kubectl("host", "delete", "queue", queue, "--ignore-not-found")


def _can(kube: Kube, user: str, *args: str) -> bool:
    proc = kube.kubectl("host", "auth", "can-i", *args, f"--as={user}", check=False)
    return proc.stdout.strip() == "yes"


def test_federator_user_and_viewer_cluster_roles(kube: Kube) -> None:
    kube.kubectl("host", "create", "namespace", "team-u", check=False)
    kube.kubectl("host", "-n", "team-u", "create", "rolebinding", "alice-federator", "--clusterrole=federator-user",
                 "--user=alice", check=False)
    kube.kubectl("host", "create", "clusterrolebinding", "bob-federator-viewer", "--clusterrole=federator-viewer",
                 "--user=bob", check=False)
    try:
        assert _can(kube, "alice", "create", "federatedjobs.federator.io", "-n", "team-u")
        assert _can(kube, "alice", "delete", "federatedjobs.federator.io", "-n", "team-u")
        assert _can(kube, "alice", "list", "events", "-n", "team-u")
        assert not _can(kube, "alice", "create", "federatedjobs.federator.io", "-n", "default")
        assert not _can(kube, "alice", "patch", "federatedjobs.federator.io", "--subresource=status", "-n", "team-u")
        assert not _can(kube, "alice", "create", "queues.federator.io")
        assert _can(kube, "bob", "list", "queues.federator.io")
        assert _can(kube, "bob", "get", "memberclusters.federator.io")
        assert _can(kube, "bob", "list", "federatedjobs.federator.io", "-n", "team-u")
        assert not _can(kube, "bob", "create", "federatedjobs.federator.io", "-n", "team-u")
        # (aggregation into edit/view needs kube-controller-manager's aggregation controller, which the test bed's
        # host does not run: tests/deploy/test_helm_charts.py checks the aggregation labels instead)
    finally:
        kube.kubectl("host", "delete", "namespace", "team-u", "--wait=false", check=False)
        kube.kubectl("host", "delete", "clusterrolebinding", "bob-federator-viewer", check=False)


def _grpc_submit(kube: Kube, tmp: Path, name: str, queue: str, namespace: str) -> subprocess.CompletedProcess[str]:
    """`federator submit` over gRPC (the federator's insecure listener: the caller is the admin)."""
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"kind": "training", "replicas": 1, "queue": queue, "resources": {"cpu": "1"}}}))
    return federator_cli("submit", "-f", str(path), *kube.fed.client_args())


def test_a_grpc_submit_obeys_the_queues_namespace_selector_and_never_makes_a_job_in_kube_namespaces(
        kube: Kube, tmp_path: Path) -> None:
    """The gRPC path makes a FederatedJob in the host's namespace, as kubectl does: the same Queue
    namespaceSelector holds, and kube-* is closed to it whoever asks (red-team finding, on a real API server)."""
    queue = _team_a_queue(kube, "grpc-team-a")
    try:
        out = _grpc_submit(kube, tmp_path, "grpc-outsider", queue, JOBS_NAMESPACE)
        assert out.returncode != 0 and "spec.namespace" in out.stderr and "team-a" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
        assert kube.fj("grpc-outsider") is None  # nothing made in the namespace

        out = _grpc_submit(kube, tmp_path, "grpc-system", queue, "kube-system")
        assert out.returncode != 0 and "kube-* namespaces" in out.stderr, out.stderr
        assert kube.fj("grpc-system", namespace="kube-system") is None

        kube.kubectl("host", "label", "namespace", JOBS_NAMESPACE, "federator.io/tenant=team-a")
        out = _grpc_submit(kube, tmp_path, "grpc-insider", queue, JOBS_NAMESPACE)
        assert out.returncode == 0, out.stderr
        eventually(lambda: kube.fj("grpc-insider") is not None, timeout=60, what="its FederatedJob made")
    finally:
        kube.kubectl("host", "label", "namespace", JOBS_NAMESPACE, "federator.io/tenant-", check=False)
        kube.kubectl("host", "delete", "fj", "grpc-insider", "-n", JOBS_NAMESPACE, "--ignore-not-found",
                     "--wait=false", check=False)
        kube.kubectl("host", "delete", "queue", queue, "--ignore-not-found")
