"""Brought workloads run to the end under their real controllers (JobSet, LeaderWorkerSet, Kubeflow Trainer).

Its own test bed: member-b runs the JobSet, LWS and Kubeflow Trainer controllers
built from their Go modules (`Testbed.start(controllers=...)`) and Trainer's own
torch-distributed ClusterTrainingRuntime; kwok runs the pods they make.
Kinds whose controller cannot run here are skipped with the reason, their
objects are checked against the real CRDs in test_kube_workload_kinds_testbed.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, WORKLOADS, Kube, Testbed, federation, own_bed
from support import eventually, federator_cli
from workload_crds import module_dir
from workload_objects import fresh

pytestmark = [pytest.mark.kube, pytest.mark.timeout(900)]

RUN_ON = {"member-b": ["jobset", "lws", "trainer"]}
TRAINER = ("github.com/kubeflow/trainer/v2", "v2.0.0")
TORCH_RUNTIME = "manifests/base/runtimes/torch_distributed.yaml"


def _controllers_available() -> str:
    """Why the test bed cannot run the controllers ("" when it can)."""
    if "controllers" not in inspect.signature(Testbed.start).parameters:
        return "the test bed cannot start workload controllers yet (Testbed.start has no controllers=...)"
    runnable = set(getattr(inspect.getmodule(Testbed), "CONTROLLERS", ()))
    missing = {n for names in RUN_ON.values() for n in names} - runnable
    return f"the test bed cannot run {sorted(missing)}" if missing else ""


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    why = _controllers_available()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("kube-controllers")
    with own_bed(work / "bed", controllers=RUN_ON) as bed:
        # A TrainJob names a runtime that holds its pod templates: Trainer's own torch one.
        bed.kubectl("member-b", "apply", "-f", str(module_dir(*TRAINER) / TORCH_RUNTIME))
        with federation(bed, work) as k:

            def kinds() -> str:
                return str((k.json("host", "get", "mc", "member-b").get("status") or {}).get("workloadKinds", ""))

            eventually(lambda: all(k in kinds() for k in ("JobSet", "LeaderWorkerSet", "TrainJob")), timeout=90,
                       what="member-b to advertise JobSet, LeaderWorkerSet and TrainJob")
            yield k


def _apply(kube: Kube, name: str, workload: dict[str, Any], **spec: Any) -> None:
    kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE}, "spec": {"workload": workload, **spec}}))


def _small(obj: dict[str, Any]) -> dict[str, Any]:
    """1 GPU a pod, so the test bed's nodes hold it whatever else runs."""
    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("requests", "limits"):
                if isinstance(node.get(key), dict) and "nvidia.com/gpu" in node[key]:
                    node[key]["nvidia.com/gpu"] = 1
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(obj)
    return obj


def _placed(fed: Kube, resource: str, placement_id: str) -> list[dict[str, Any]]:
    """member-b's objects of this resource that a placement made."""
    return [o for o in fed.json("member-b", "get", resource, "-n", WORKLOADS)["items"]
            if o["metadata"]["annotations"]["federator.io/placement-id"] == placement_id]


def test_a_jobset_runs_to_succeeded_under_the_jobset_controller(fed: Kube) -> None:
    _apply(fed, "pretrain", _small(fresh("JobSet")), acceleratorModels=["A100"])
    try:
        eventually(lambda: fed.phase("pretrain") == "Succeeded", timeout=180,
                   what=lambda: f"the JobSet job Succeeded\n{fed.logs()}")
        status = fed.fj("pretrain")["status"]  # type: ignore[index]
        assert status["cluster"] == "member-b"
        (js,) = _placed(fed, "jobsets.jobset.x-k8s.io", status["placementId"])
        assert any(c["type"] == "Completed" and c["status"] == "True" for c in js["status"]["conditions"])
        fed.kubectl("host", "delete", "fj", "pretrain", "--timeout=60s")  # done, and the JobSet goes with it
        eventually(lambda: not fed.json("member-b", "get", "jobsets.jobset.x-k8s.io,jobs", "-n", WORKLOADS)["items"],
                   timeout=60, what="the finished JobSet and its Jobs deleted with the FederatedJob")
    finally:
        fed.kubectl("host", "delete", "fj", "pretrain", "--wait=false", "--ignore-not-found", check=False)


def test_an_lws_job_runs_under_the_lws_controller(fed: Kube) -> None:
    lws = _small(fresh("LeaderWorkerSet"))
    lws["spec"]["replicas"], lws["spec"]["leaderWorkerTemplate"]["size"] = 1, 2
    _apply(fed, "llm-serve", lws, acceleratorModels=["A100"])
    try:
        eventually(lambda: fed.phase("llm-serve") == "Running", timeout=180,
                   what=lambda: f"the LWS job Running\n{fed.logs()}")
        pods = fed.json("member-b", "get", "pods", "-n", WORKLOADS, "-l", "app.kubernetes.io/managed-by=federator")
        assert len([p for p in pods["items"] if p["status"].get("phase") == "Running"]) >= 2  # leader + worker
        fed.kubectl("host", "delete", "fj", "llm-serve", "--timeout=60s")
        eventually(lambda: not fed.json("member-b", "get", "leaderworkersets.leaderworkerset.x-k8s.io", "-n",
                                        WORKLOADS)["items"], timeout=60, what="the LWS deleted with its job")
    finally:
        fed.kubectl("host", "delete", "fj", "llm-serve", "--wait=false", "--ignore-not-found", check=False)


def test_jobs_of_long_names_run_under_the_jobset_and_lws_controllers(fed: Kube) -> None:
    """QA findings 1 and 2: a JobSet named in 20 characters was refused by JobSet's webhook (its pods' names
    over 63), and an LWS named in 26 never got its worker pods (their controller-revision-hash label over 63)."""
    trainer, server = "llama3-70b-sft-lr3e5", "llama-405b-chat-serve-prod"
    lws = _small(fresh("LeaderWorkerSet"))
    lws["spec"]["replicas"], lws["spec"]["leaderWorkerTemplate"]["size"] = 1, 2
    _apply(fed, trainer, _small(fresh("JobSet")), acceleratorModels=["A100"])
    _apply(fed, server, lws, acceleratorModels=["A100"])
    try:
        eventually(lambda: fed.phase(trainer) == "Succeeded", timeout=180,
                   what=lambda: f"the long-named JobSet job Succeeded\n{fed.logs()}")
        eventually(lambda: fed.phase(server) == "Running", timeout=180,
                   what=lambda: f"the long-named LWS job Running\n{fed.logs()}")
        status = fed.fj(server)["status"]  # type: ignore[index]
        (copy,) = _placed(fed, "leaderworkersets.leaderworkerset.x-k8s.io", status["placementId"])
        pods = fed.json("member-b", "get", "pods", "-n", WORKLOADS, "-l",
                        f"leaderworkerset.sigs.k8s.io/name={copy['metadata']['name']}")["items"]
        assert sorted(p["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/worker-index"] for p in pods
                      if p["status"].get("phase") == "Running") == ["0", "1"]  # the leader and its worker
    finally:
        for name in (trainer, server):
            fed.kubectl("host", "delete", "fj", name, "--wait=false", "--ignore-not-found", check=False)


def test_a_trainjob_runs_to_succeeded_under_the_trainer(fed: Kube) -> None:
    _apply(fed, "tune", _small(fresh("TrainJob")), acceleratorModels=["A100"])
    try:
        eventually(lambda: fed.phase("tune") == "Succeeded", timeout=180,
                   what=lambda: f"the TrainJob job Succeeded\n{fed.logs()}")
        status = fed.fj("tune")["status"]  # type: ignore[index]
        assert status["cluster"] == "member-b"
        (tj,) = _placed(fed, "trainjobs.trainer.kubeflow.org", status["placementId"])
        assert any(c["type"] == "Complete" and c["status"] == "True" for c in tj["status"]["conditions"])
        # The trainer made a JobSet of it (same name, owned by the TrainJob), which the JobSet controller ran.
        js = fed.json("member-b", "get", "jobsets.jobset.x-k8s.io", tj["metadata"]["name"], "-n", WORKLOADS)
        assert js["metadata"]["ownerReferences"][0]["kind"] == "TrainJob"
        assert any(c["type"] == "Completed" and c["status"] == "True" for c in js["status"]["conditions"])
        assert js["metadata"]["labels"]["federator.io/placement-id"] == tj["metadata"]["labels"][
            "federator.io/placement-id"]  # spec.labels reached the JobSet
        pods = fed.json("member-b", "get", "pods", "-n", WORKLOADS, "-l",
                        f"jobset.sigs.k8s.io/jobset-name={tj['metadata']['name']}")["items"]
        assert len(pods) == 2 and all(p["status"]["phase"] == "Succeeded" for p in pods)
        # The chosen model's node selector went in through spec.podSpecOverrides.
        assert all(p["spec"]["nodeSelector"].get("nvidia.com/gpu.product") == "NVIDIA-A100-SXM4-80GB"
                   for p in pods), [p["spec"].get("nodeSelector") for p in pods]
        # `federator logs` finds the TrainJob's pods (they carry no placement label: Trainer puts spec.labels on
        # the JobSet only) and reads each: kwok has no kubelet, so each replica's read fails at the kubelet, past
        # the finding. Before, "no pods of this agent's".
        out = federator_cli("logs", f"{JOBS_NAMESPACE}/tune", *fed.fed.client_args())
        assert "no pods of this agent's" not in out.stdout + out.stderr, out.stdout + out.stderr
        names = sorted(p["metadata"]["name"] for p in pods)
        assert all(name in out.stdout + out.stderr for name in names), (names, out.stdout, out.stderr)
        fed.kubectl("host", "delete", "fj", "tune", "--timeout=60s")
        left = "trainjobs.trainer.kubeflow.org,jobsets.jobset.x-k8s.io,jobs"
        eventually(lambda: not fed.json("member-b", "get", left, "-n", WORKLOADS)["items"],
                   timeout=60, what="the TrainJob, its JobSet and Jobs deleted with the FederatedJob")
    finally:
        fed.kubectl("host", "delete", "fj", "tune", "--wait=false", "--ignore-not-found", check=False)


@pytest.mark.skip(reason="no KubeRay or Kubeflow training-operator (v1) is built for the test bed (not among the "
                         "controllers the issue names); RayJob and PyTorchJob objects are checked against their real "
                         "CRDs in test_kube_workload_kinds_testbed.py")
def test_a_rayjob_and_a_pytorchjob_run_to_succeeded() -> None:
    raise AssertionError("kept for the day their operators run on the test bed")
