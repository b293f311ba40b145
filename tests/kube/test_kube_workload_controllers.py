"""Brought workloads run to the end under their real controllers (JobSet, LeaderWorkerSet) on a member.

Its own test bed: member-b runs the JobSet and LWS controllers built from their
Go modules (`Testbed.start(controllers=...)`); kwok runs the pods they make.
Kinds whose controller cannot run here are skipped with the reason, their
objects are checked against the real CRDs in test_kube_workload_kinds_testbed.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kube_support import (
    CRDS,
    JOBS_NAMESPACE,
    RBAC,
    REGIONS,
    WORKLOADS,
    Kube,
    KubeFederation,
    Testbed,
    service_account_kubeconfig,
)
from support import eventually
from workload_objects import fresh

pytestmark = [pytest.mark.kube, pytest.mark.timeout(900)]

RUN_ON = {"member-b": ["jobset", "lws"]}


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
    bed = Testbed.start(work / "bed", controllers=RUN_ON)  # type: ignore[call-arg]
    fed = None
    try:
        bed.kubectl("host", "apply", "-f", str(CRDS))
        bed.kubectl("host", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        bed.kubectl("host", "apply", "-f", str(RBAC / "rbac-federator.yaml"))
        for member in bed.members:
            bed.kubectl(member, "apply", "-f", str(RBAC / "rbac-agent.yaml"))
        host = service_account_kubeconfig(bed, "host", "federator", work / "federator.kubeconfig")
        fed = KubeFederation(workdir=work, tls=False, serve_args=[
            "--kubeconfig", str(host), "--watch-namespace", JOBS_NAMESPACE, "--lease-namespace", "federator-system",
            "--report-interval", "0.5", "--cycle-interval", "0.2"])
        fed.start_server(timeout=60)
        for member in bed.members:
            kubeconfig = service_account_kubeconfig(bed, member, "federator-agent", work / f"agent-{member}.kubeconfig")
            fed.start_kube_agent(member, kubeconfig=kubeconfig, region=REGIONS[member])
        k = Kube(bed, fed, work)

        def kinds() -> str:
            return str((k.json("host", "get", "mc", "member-b").get("status") or {}).get("workloadKinds", ""))

        eventually(lambda: "JobSet" in kinds() and "LeaderWorkerSet" in kinds(), timeout=90,
                   what="member-b to advertise JobSet and LeaderWorkerSet")
        yield k
    finally:
        if fed is not None:
            fed.stop()
        bed.stop()


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


def test_a_jobset_runs_to_succeeded_under_the_jobset_controller(fed: Kube) -> None:
    _apply(fed, "pretrain", _small(fresh("JobSet")), gpuModels=["A100"])
    try:
        eventually(lambda: fed.phase("pretrain") == "Succeeded", timeout=180,
                   what=f"the JobSet job Succeeded\n{fed.logs()}")
        status = fed.fj("pretrain")["status"]  # type: ignore[index]
        assert status["cluster"] == "member-b"
        (js,) = [o for o in fed.json("member-b", "get", "jobsets.jobset.x-k8s.io", "-n", WORKLOADS)["items"]
                 if o["metadata"]["annotations"]["federator.io/placement-id"] == status["placementId"]]
        assert any(c["type"] == "Completed" and c["status"] == "True" for c in js["status"]["conditions"])
        fed.kubectl("host", "delete", "fj", "pretrain", "--timeout=60s")  # done, and the JobSet goes with it
        eventually(lambda: not fed.json("member-b", "get", "jobsets.jobset.x-k8s.io,jobs", "-n", WORKLOADS)["items"],
                   timeout=60, what="the finished JobSet and its Jobs deleted with the FederatedJob")
    finally:
        fed.kubectl("host", "delete", "fj", "pretrain", "--wait=false", "--ignore-not-found", check=False)


def test_an_lws_job_runs_under_the_lws_controller(fed: Kube) -> None:
    lws = _small(fresh("LeaderWorkerSet"))
    lws["spec"]["replicas"], lws["spec"]["leaderWorkerTemplate"]["size"] = 1, 2
    _apply(fed, "llm-serve", lws, gpuModels=["A100"])
    try:
        eventually(lambda: fed.phase("llm-serve") == "Running", timeout=180,
                   what=f"the LWS job Running\n{fed.logs()}")
        pods = fed.json("member-b", "get", "pods", "-n", WORKLOADS, "-l", "app.kubernetes.io/managed-by=federator")
        assert len([p for p in pods["items"] if p["status"].get("phase") == "Running"]) >= 2  # leader + worker
        fed.kubectl("host", "delete", "fj", "llm-serve", "--timeout=60s")
        eventually(lambda: not fed.json("member-b", "get", "leaderworkersets.leaderworkerset.x-k8s.io", "-n",
                                        WORKLOADS)["items"], timeout=60, what="the LWS deleted with its job")
    finally:
        fed.kubectl("host", "delete", "fj", "llm-serve", "--wait=false", "--ignore-not-found", check=False)


@pytest.mark.skip(reason="Kubeflow Trainer v2.0.0's manager cannot run as a plain process here: it always starts "
                         "its cert-controller rotator, which waits for a kubelet to mount its webhook Secret "
                         "(tests/testbed/workload_controllers.py NOT_RUNNABLE); TrainJob objects are checked against "
                         "the real CRD in test_kube_workload_kinds_testbed.py")
def test_a_trainjob_runs_to_succeeded_under_the_trainer() -> None:
    raise AssertionError("kept for the day the trainer runs on the test bed")


@pytest.mark.skip(reason="no KubeRay or Kubeflow training-operator (v1) is built for the test bed (not among the "
                         "controllers the issue names); RayJob and PyTorchJob objects are checked against their real "
                         "CRDs in test_kube_workload_kinds_testbed.py")
def test_a_rayjob_and_a_pytorchjob_run_to_succeeded() -> None:
    raise AssertionError("kept for the day their operators run on the test bed")
