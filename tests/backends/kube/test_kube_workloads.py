"""Placements as Jobs and Deployments, and their phase read back from status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federator.backends.kube.workloads import (
    PLACEMENT_LABEL,
    WorkloadError,
    build_workload,
    placement_label,
    placement_of,
    workload_name,
    workload_phase,
)
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

H100 = "NVIDIA-H100-80GB-HBM3"
GiB = 2**30


def placement(pid: str = "llm-abc123.g2.member-a", replicas: int = 4, model: str = H100) -> Placement:
    return Placement(placement_id=PlacementId(pid), job_id=JobId("llm-abc123"), cluster="member-a",
                     region="east", replicas=replicas, accelerator_model=model, generation=2)


def spec(kind: JobKind = JobKind.TRAINING, *, accelerator_milli: int = 8000, template: dict[str, Any] | None = None,
         annotations: tuple[tuple[str, str], ...] = ()) -> JobSpec:
    return JobSpec(name="llm", kind=kind, replicas=4,
                   resources=Resources(cpu_milli=32_000, memory_bytes=256 * GiB, accelerator_milli=accelerator_milli),
                   pod_template_json=json.dumps(template) if template is not None else "", annotations=annotations)


TRAINER = {"metadata": {"labels": {"team": "llm"}},
           "spec": {"containers": [{"name": "trainer", "image": "trainer:1", "resources": {"requests": {"cpu": "1"}},
                                    "env": [{"name": "X", "value": "1"}]},
                                   {"name": "sidecar", "image": "log:1"}],
                    "nodeSelector": {"zone": "a"}, "restartPolicy": "Always"}}


def test_training_is_an_indexed_job_with_the_gang_shape() -> None:
    job = build_workload(placement(), spec(template=TRAINER), namespace="work")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["namespace"] == "work"
    assert job["metadata"]["labels"][PLACEMENT_LABEL] == "llm-abc123.g2.member-a"
    assert job["metadata"]["labels"]["federator.io/generation"] == "2"
    s = job["spec"]
    assert (s["completionMode"], s["completions"], s["parallelism"], s["backoffLimit"]) == ("Indexed", 4, 4, 0)
    pod = s["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # a Job refuses Always
    assert pod["nodeSelector"] == {"zone": "a", "nvidia.com/gpu.product": H100}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    main, sidecar = pod["containers"]
    assert main["resources"]["requests"] == {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": "8"}
    assert main["resources"]["limits"] == {"nvidia.com/gpu": "8"}
    assert "resources" not in sidecar
    name = job["metadata"]["name"]
    for container in (main, sidecar):  # every container finds the gang's other replicas
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        assert env == {**({"X": "1"} if container is main else {}),
                       "FEDERATOR_PLACEMENT_ID": "llm-abc123.g2.member-a", "FEDERATOR_JOB_ID": "llm-abc123",
                       "FEDERATOR_REPLICAS": "4", "MASTER_ADDR": f"{name}-0.{name}", "MASTER_PORT": "29500",
                       "WORLD_SIZE": "4", "NNODES": "4", "NODE_RANK": {"fieldRef": {
                           "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}},
                       "RANK": {"fieldRef": {  # one process per pod without torchrun: env:// reads RANK
                           "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}},
                       # torchrun's own (PET_<FLAG>), as PyTorchJob sets them: a bare `torchrun train.py` is right
                       "PET_MASTER_ADDR": f"{name}-0.{name}", "PET_MASTER_PORT": "29500", "PET_NNODES": "4",
                       "PET_NODE_RANK": {"fieldRef": {
                           "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}},
                       "PET_NPROC_PER_NODE": "8"}
    assert pod["subdomain"] == name  # with the headless Service of that name: <name>-<i>.<name>
    assert s["template"]["metadata"]["labels"]["team"] == "llm"
    assert placement_of(s["template"]) == "llm-abc123.g2.member-a"


def test_a_one_replica_gang_gets_the_rendezvous_env_of_its_own() -> None:
    """Seen on a test bed: `examples/k8s/training.yaml` with `replicas: 1` got only FEDERATOR_* variables, so
    torchrun read `--nnodes=$(NNODES)` as literal text and exited. The pod is its own master: loopback,
    no DNS name, so no subdomain (and the backend makes no Service for it)."""
    job = build_workload(placement(replicas=1), spec(template=TRAINER), namespace="work")
    pod = job["spec"]["template"]["spec"]
    for container in pod["containers"]:
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        assert {k: env.get(k) for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NNODES", "NODE_RANK", "RANK")} \
            == {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "1", "NNODES": "1",
                "NODE_RANK": "0", "RANK": "0"}
    assert "subdomain" not in pod


@pytest.mark.parametrize(("placed_milli", "procs"), [(8000, "8"), (16000, "16"), (500, "1"), (0, "8")],
                         ids=["8-H100", "16-Ascend910B-alternative", "a-fraction", "placed-before-alternatives"])
def test_each_replica_is_told_how_many_processes_to_start_under_the_alternative_placed(placed_milli: int,
                                                                                       procs: str) -> None:
    """Outside pretraining QA P2: nothing said the per-node process count, so `--nproc_per_node=8` was written into
    every command, wrong on a 16-device alternative. PET_NPROC_PER_NODE is the placed alternative's whole devices
    per replica (torchrun reads it for --nproc-per-node); a placement stored before alternatives carries no count and
    takes the spec's."""
    p = Placement(placement_id=PlacementId("llm-abc123.g2.member-a"), job_id=JobId("llm-abc123"), cluster="member-a",
                  region="east", replicas=2, accelerator_model="Ascend910B", generation=2,
                  accelerator_milli=placed_milli)
    job = build_workload(p, spec(template=TRAINER), namespace="work")
    for container in job["spec"]["template"]["spec"]["containers"]:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["PET_NPROC_PER_NODE"] == procs
        assert (env["PET_NNODES"], env["PET_MASTER_PORT"]) == ("2", "29500")


def test_the_spec_template_is_not_modified() -> None:
    sp = spec(template=TRAINER)
    before = sp.pod_template_json
    build_workload(placement(), sp, namespace="work")
    assert sp.pod_template_json == before


def test_inference_is_a_deployment_selected_by_placement() -> None:
    dep = build_workload(placement(replicas=3), spec(JobKind.INFERENCE, accelerator_milli=1000), namespace="work")
    assert (dep["apiVersion"], dep["kind"], dep["spec"]["replicas"]) == ("apps/v1", "Deployment", 3)
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert dep["spec"]["template"]["spec"]["restartPolicy"] == "Always"


def test_a_jobs_pods_carry_its_id_as_a_label_the_same_on_every_member_and_generation() -> None:
    """Outside QA: a serving job's pods had only placement labels, which change with every re-placement and
    differ between members, so a Service had nothing stable to select. federator.io/job-id is the job's."""
    serve = spec(JobKind.INFERENCE, accelerator_milli=1000)
    one = build_workload(placement("llm-abc123.g2.member-a", replicas=3), serve, namespace="work")
    other = build_workload(placement("llm-abc123.g7.member-b", replicas=1), serve, namespace="work")
    labels = [w["spec"]["template"]["metadata"]["labels"] for w in (one, other)]
    assert [x["federator.io/job-id"] for x in labels] == ["llm-abc123", "llm-abc123"]
    assert labels[0]["federator.io/placement-id"] != labels[1]["federator.io/placement-id"]


def test_a_template_without_containers_gets_a_default_one_that_runs_for_the_sim_duration() -> None:
    job = build_workload(placement(), spec(annotations=(("federator.io/sim-duration", "2m"),)), namespace="w")
    (main,) = job["spec"]["template"]["spec"]["containers"]
    assert main["name"] == "main" and main["command"][-1].endswith("sleep 120")
    assert main["resources"]["requests"]["nvidia.com/gpu"] == "8"


def test_cpu_only_work_has_no_gpu_selector_or_toleration() -> None:
    job = build_workload(placement(model=""), spec(accelerator_milli=0), namespace="w")
    pod = job["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["requests"]


def test_a_fraction_of_a_gpu_is_refused_naming_the_field() -> None:
    with pytest.raises(WorkloadError, match=r"spec.resources.nvidia.com/gpu"):
        build_workload(placement(), spec(JobKind.INFERENCE, accelerator_milli=500), namespace="w")


@pytest.mark.parametrize("pid", [
    "llm-abc123.g2.member-a",
    "UPPER_case.g1.c",
    "x" * 200 + ".g1.member-a",
])
def test_names_and_labels_are_valid_and_stable(pid: str) -> None:
    name = workload_name(pid)
    assert len(name) <= 52 and name == name.lower() and "." not in name and not name.startswith("-")
    assert name == workload_name(pid)
    label = placement_label(pid)
    assert len(label) <= 63
    assert workload_name(pid + "x") != name


def job(status: dict[str, Any], replicas: int = 2) -> dict[str, Any]:
    return {"kind": "Job", "metadata": {"annotations": {"federator.io/replicas": str(replicas)}},
            "spec": {"parallelism": replicas}, "status": status}


def pod(phase: str, unschedulable: str = "") -> dict[str, Any]:
    conditions = [{"type": "PodScheduled", "status": "False", "message": unschedulable}] if unschedulable else []
    return {"status": {"phase": phase, "conditions": conditions}}


@pytest.mark.parametrize(("workload", "pods", "phase", "says"), [
    pytest.param(job({}), [], JobPhase.PLACED, "0 of 2", id="no-pods-yet"),
    pytest.param(job({"active": 2}), [pod("Pending", "0/3 nodes are available"), pod("Running")], JobPhase.PLACED,
                 "0/3 nodes", id="one-unschedulable"),
    pytest.param(job({"active": 2}), [pod("Running"), pod("Running")], JobPhase.RUNNING, "2 replicas", id="all-run"),
    pytest.param(job({"active": 1, "succeeded": 1}), [pod("Running")], JobPhase.RUNNING, "", id="one-done-early"),
    pytest.param(job({"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}), [],
                 JobPhase.SUCCEEDED, "2 of 2", id="complete"),
    pytest.param(job({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                      "message": "Job has reached the specified backoff limit"}]}), [],
                 JobPhase.FAILED, "BackoffLimitExceeded", id="failed"),
    pytest.param({"kind": "Deployment", "spec": {"replicas": 2}, "status": {"readyReplicas": 2}}, [],
                 JobPhase.RUNNING, "", id="deployment-ready"),
    pytest.param({"kind": "Deployment", "spec": {"replicas": 2}, "status": {"conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "slow"}]}}, [],
                 JobPhase.FAILED, "slow", id="deployment-stuck"),
])
def test_phase_from_status(workload: dict[str, Any], pods: list[dict[str, Any]], phase: JobPhase, says: str) -> None:
    got, message = workload_phase(workload, pods)
    assert got is phase
    assert says in message


def test_the_members_accelerator_replaces_nvidia_gpu_in_the_rendered_workload() -> None:
    """A placement on another vendor's pool (here an Ascend 910B chosen for the job) asks that vendor's resource."""
    from federator.backends.kube.accelerators import render
    from federator.backends.kube.devices import DeviceGroup, Sharing
    from federator.backends.kube.workloads import RenderOptions

    ascend = DeviceGroup(node="n", vendor="huawei", model="910B3", resource="huawei.com/Ascend910",
                         selector=(("huawei.com/npu.chip.name", "910B3"),), sharing=Sharing.NONE, devices=8, units=8,
                         unit_milli=1000)
    job = build_workload(placement(model="910B3"), spec(template=TRAINER, accelerator_milli=8000), namespace="w",
                         options=RenderOptions(accelerator=render(ascend, 8000)))
    pod = job["spec"]["template"]["spec"]
    main = pod["containers"][0]
    assert main["resources"]["limits"] == {"huawei.com/Ascend910": "8"}
    assert "nvidia.com/gpu" not in main["resources"]["requests"] and main["resources"]["requests"]["cpu"] == "32"
    assert pod["nodeSelector"] == {"zone": "a", "huawei.com/npu.chip.name": "910B3"}
    assert [t["key"] for t in pod["tolerations"]] == ["huawei.com/Ascend910"]
    assert main["image"] == "trainer:1"

    half = build_workload(
        placement(model="NVIDIA-L4-SHARED"),
        spec(JobKind.INFERENCE, accelerator_milli=500),
        namespace="w",
        options=RenderOptions(
            accelerator=render(
                DeviceGroup(
                    node="n",
                    vendor="nvidia",
                    model="NVIDIA-L4-SHARED",
                    resource="nvidia.com/gpu",
                    selector=(),
                    sharing=Sharing.TIME_SLICING,
                    devices=4,
                    units=16,
                    unit_milli=250,
                ),
                500,
            )
        ),
    )
    assert half["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "2"}


def test_a_kueue_topology_annotation_of_the_template_reaches_the_pods_unchanged() -> None:
    """docs/kubernetes.md, "Limits": topology inside a member is Kueue TAS's, asked on the pod template; the agent
    keeps the annotation on the pods it renders (outside pretraining QA, topology)."""
    tas = {"kueue.x-k8s.io/podset-required-topology": "cloud.provider.com/topology-block"}
    job = build_workload(placement(), spec(template={"metadata": {"annotations": tas}, "spec": TRAINER["spec"]}),
                         namespace="work")
    assert job["spec"]["template"]["metadata"]["annotations"].items() >= tas.items()
