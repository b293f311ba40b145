"""The real workload controllers on a test-bed member: JobSet, Kueue, LeaderWorkerSet, Kubeflow Trainer.

Each controller is the project's own binary, built from the Go module proxy by
tests/testbed/build-controllers, started by ``Testbed.start(controllers=...)``
with the CRDs and webhooks of its own module. Everything is checked through
kubectl against the member's real API server; kwok plays the kubelets.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

try:  # rootdir on sys.path (python -m pytest from the repo root)
    from tests.testbed import workload_controllers as wc
    from tests.testbed.testbed import Testbed
except ImportError:  # tests/testbed itself on sys.path
    import workload_controllers as wc  # type: ignore[no-redef]

    from testbed import Testbed  # type: ignore[no-redef]

# The first run may build the controllers (minutes cold, see README.md).
pytestmark = [pytest.mark.kube, pytest.mark.timeout(3600)]

MEMBER = "member-a"


@pytest.fixture(scope="module")
def tb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    bed = Testbed.start(tmp_path_factory.mktemp("controllers"), members=(MEMBER,),
                        controllers={MEMBER: ("jobset", "kueue", "lws", "trainer")})
    try:
        yield bed
    finally:
        bed.stop()


def eventually(pred: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = pred()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def _true(obj: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def _pods(tb: Testbed, selector: str) -> list[dict[str, Any]]:
    return list(tb.kubectl_json(MEMBER, "get", "pods", "-n", "default", "-l", selector)["items"])


def test_every_controller_runs_with_its_webhooks_registered(tb: Testbed) -> None:
    assert set(tb.controllers[MEMBER]) == {"jobset", "kueue", "lws", "trainer"}
    hooks = tb.kubectl(MEMBER, "get", "mutatingwebhookconfigurations", "-o", "name").stdout.split()
    assert {"mutatingwebhookconfiguration.admissionregistration.k8s.io/jobset-mutating-webhook-configuration",
            "mutatingwebhookconfiguration.admissionregistration.k8s.io/kueue-mutating-webhook-configuration",
            "mutatingwebhookconfiguration.admissionregistration.k8s.io/lws-mutating-webhook-configuration",
            } <= set(hooks)
    crds = tb.kubectl(MEMBER, "get", "crds", "-o", "name").stdout
    for name in ("jobsets.jobset.x-k8s.io", "workloads.kueue.x-k8s.io", "leaderworkersets.leaderworkerset.x-k8s.io"):
        assert name in crds


def test_a_jobset_runs_to_completed(tb: Testbed) -> None:
    tb.apply(MEMBER, {
        "apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet",
        "metadata": {"name": "js-train", "namespace": "default"},
        "spec": {"replicatedJobs": [{"name": "workers", "replicas": 1, "template": {"spec": {
            "parallelism": 2, "completions": 2, "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}}}]},
    })
    done = eventually(lambda: _true(tb.kubectl_json(MEMBER, "get", "jobset", "js-train", "-n", "default"),
                                    "Completed"), "JobSet js-train Completed")
    assert done
    # The JobSet webhook labelled the pods (its pod webhook ran: it is registered and reachable).
    pods = _pods(tb, "jobset.sigs.k8s.io/jobset-name=js-train")
    assert len(pods) == 2 and all(p["spec"].get("nodeName") for p in pods)


def test_kueue_admits_a_suspended_job_whole_and_it_completes(tb: Testbed) -> None:
    tb.apply(MEMBER, [
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "gpus"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "cq"},
         "spec": {"namespaceSelector": {}, "resourceGroups": [{
             "coveredResources": ["nvidia.com/gpu"],
             "flavors": [{"name": "gpus", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 16}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
         "metadata": {"name": "lq", "namespace": "default"}, "spec": {"clusterQueue": "cq"}},
    ])
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "kueue-gang", "namespace": "default", "labels": {"kueue.x-k8s.io/queue-name": "lq"}},
        "spec": {"suspend": True, "parallelism": 2, "completions": 2, "completionMode": "Indexed",
                 "backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{
                     "name": "main", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}},
    }
    tb.apply(MEMBER, job)
    workload = eventually(lambda: [w for w in tb.kubectl_json(MEMBER, "get", "workloads.kueue.x-k8s.io",
                                                             "-n", "default")["items"]
                                   if _true(w, "Admitted")], "Kueue Workload of kueue-gang Admitted")
    assert workload[0]["metadata"]["ownerReferences"][0]["name"] == "kueue-gang"
    eventually(lambda: _true(tb.kubectl_json(MEMBER, "get", "job", "kueue-gang", "-n", "default"), "Complete"),
               "Job kueue-gang Complete after Kueue unsuspended it")

    # 24 GPUs do not fit a 16-GPU ClusterQueue: Kueue keeps it suspended and says why.
    big = {**job, "metadata": {**job["metadata"], "name": "kueue-too-big"},
           "spec": {**job["spec"], "parallelism": 3, "completions": 3}}
    tb.apply(MEMBER, big)

    def pending_message() -> str:
        for w in tb.kubectl_json(MEMBER, "get", "workloads.kueue.x-k8s.io", "-n", "default")["items"]:
            if w["metadata"]["ownerReferences"][0]["name"] == "kueue-too-big":
                for c in (w.get("status") or {}).get("conditions") or []:
                    if c.get("type") == "QuotaReserved" and c.get("status") == "False":
                        return str(c.get("message", ""))
        return ""

    message = eventually(pending_message, "Kueue's reason for kueue-too-big")
    assert "nvidia.com/gpu" in message, message
    assert tb.kubectl_json(MEMBER, "get", "job", "kueue-too-big", "-n", "default")["spec"]["suspend"] is True


def test_a_leaderworkerset_makes_its_groups(tb: Testbed) -> None:
    tb.apply(MEMBER, {
        "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
        "metadata": {"name": "lws-serve", "namespace": "default"},
        "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {"containers": [{
            "name": "main", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "4"}}}]}}}},
    })

    def running() -> list[dict[str, Any]]:
        pods = _pods(tb, "leaderworkerset.sigs.k8s.io/name=lws-serve")
        return pods if len(pods) == 4 and all(p["status"].get("phase") == "Running" for p in pods) else []

    pods = eventually(running, "4 LWS pods Running (2 groups of leader + worker)")
    groups = {p["metadata"]["labels"].get("leaderworkerset.sigs.k8s.io/group-index") for p in pods}
    assert groups == {"0", "1"}  # labels the LWS pod webhook sets


def _torch_runtime(tb: Testbed) -> None:
    """Trainer's own torch-distributed ClusterTrainingRuntime, from its module (its webhook validates it)."""
    runtime = wc.module_dir("trainer") / "manifests" / "base" / "runtimes" / "torch_distributed.yaml"
    tb.kubectl(MEMBER, "apply", "-f", str(runtime))


def test_a_trainjob_becomes_a_jobset_and_completes_under_the_trainer(tb: Testbed) -> None:
    _torch_runtime(tb)
    tb.apply(MEMBER, {
        "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
        "metadata": {"name": "tune", "namespace": "default"},
        "spec": {"runtimeRef": {"name": "torch-distributed"},
                 "trainer": {"image": "busybox", "command": ["sh", "-c", "true"], "numNodes": 2,
                             "resourcesPerNode": {"limits": {"nvidia.com/gpu": "1"}}}},  # beside the LWS groups
    })

    def complete() -> bool:
        return _true(tb.kubectl_json(MEMBER, "get", "trainjob", "tune", "-n", "default"), "Complete")

    try:
        eventually(complete, "TrainJob tune Complete")
    except AssertionError:
        state = tb.kubectl(MEMBER, "get", "trainjob,jobset,jobs,pods", "-n", "default", "-o", "wide").stdout
        raise AssertionError(f"TrainJob tune not Complete:\n{state}") from None
    js = tb.kubectl_json(MEMBER, "get", "jobset", "tune", "-n", "default")
    assert js["metadata"]["ownerReferences"][0]["kind"] == "TrainJob" and _true(js, "Completed")
    pods = _pods(tb, "jobset.sigs.k8s.io/jobset-name=tune")
    assert len(pods) == 2 and all(p["spec"].get("nodeName") for p in pods)
    env = {e["name"]: e.get("value") for e in pods[0]["spec"]["containers"][0].get("env") or []}
    assert env.get("PET_NNODES") == "2", env  # the torch plugin's rendezvous environment


def test_trainers_webhooks_answer_with_the_test_bed_certificate(tb: Testbed) -> None:
    # Only Trainer has webhooks for runtimes (Kueue's TrainJob webhooks answer for TrainJobs too, in any
    # order): its validator allows one replica for the trainer's job (trainjob-ancestor-step: trainer).
    bad = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "ClusterTrainingRuntime",
           "metadata": {"name": "two-trainers"},
           "spec": {"template": {"spec": {"replicatedJobs": [{
               "name": "node", "replicas": 2,
               "template": {"metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}},
                            "spec": {"template": {"spec": {"containers": [{"name": "node", "image": "busybox"}]}}}},
           }]}}}}
    refused = tb.kubectl(MEMBER, "apply", "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0
    assert 'admission webhook "validator.clustertrainingruntime.trainer.kubeflow.org" denied' in refused.stderr, \
        refused.stderr
    assert "spec.template.spec.replicatedJobs[0].replicas" in refused.stderr
    # The rotator injects its CA only into the configuration it names; ours keeps the test bed CA.
    cfg = tb.kubectl_json(MEMBER, "get", "validatingwebhookconfiguration", "trainer-validating-webhook-configuration")
    ca = (tb.workdir / "pki" / "ca.crt").read_bytes()
    assert {base64.b64decode(h["clientConfig"]["caBundle"]) for h in cfg["webhooks"]} == {ca}
    # The kubelet's part: the rotator filled its Secret, found it "mounted", and only then started the rest.
    secret = tb.kubectl_json(MEMBER, "get", "secret", wc.TRAINER_WEBHOOK_SECRET, "-n", wc.TRAINER_NAMESPACE)
    assert {"ca.crt", "tls.crt", "tls.key"} <= set(secret["data"])
    log = tb.controllers[MEMBER]["trainer"][0].log.read_text()
    assert f"certs are ready in {wc.TRAINER_ROTATOR_CERT_DIR}" in log and "Certs ready" in log


def test_a_secret_volume_writes_every_key_and_removes_only_its_own_files(tmp_path: Path) -> None:
    data: dict[str, str] = {}
    volume = wc.SecretVolume(lambda: data or None, tmp_path / "certs")
    assert volume.sync() is False and not (tmp_path / "certs").exists()  # not filled yet: nothing mounted
    data.update({"tls.crt": base64.b64encode(b"CERT").decode(), "tls.key": base64.b64encode(b"KEY").decode()})
    assert volume.sync() is True
    assert (tmp_path / "certs" / "tls.crt").read_bytes() == b"CERT"
    assert os.stat(tmp_path / "certs" / "tls.key").st_mode & 0o777 == 0o600
    data["tls.crt"] = base64.b64encode(b"ROTATED").decode()  # the Secret changes: the file follows
    volume.sync()
    assert (tmp_path / "certs" / "tls.crt").read_bytes() == b"ROTATED"
    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == ["tls.crt", "tls.key"]  # no temp files left
    (tmp_path / "certs" / "tls.key").write_bytes(b"another test bed's")  # a shared dir: someone else wrote
    volume.stop()
    assert [p.name for p in (tmp_path / "certs").iterdir()] == ["tls.key"]


def test_the_trainer_needs_jobset_on_its_member(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="'trainer' without 'jobset': Kubeflow Trainer v2 runs every TrainJob"):
        Testbed.start(tmp_path, members=(MEMBER,), controllers={MEMBER: ("trainer",)})
