"""One adapter per workload kind: pod sets read as Kueue reads them, rendering, and phases from status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federator.backends.kube.workloads import (
    ADAPTERS,
    PLACEMENT_ANNOTATION,
    PLACEMENT_LABEL,
    RenderOptions,
    WorkloadError,
    adapter_for,
    build_workload,
    needs,
    workload_phase,
)
from federator.backends.kube.workloads.common import templates_at
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

from workload_objects import ALL, fresh

H100 = "NVIDIA-H100-80GB-HBM3"
GiB = 2**30
PID = "job-1.g3.member-a"


def placement(replicas: int, model: str = H100) -> Placement:
    return Placement(PlacementId(PID), JobId("job-1"), "member-a", "east", replicas, model, 3)


def spec_with(obj: dict[str, Any], replicas: int) -> JobSpec:
    adapter = adapter_for(obj)
    return JobSpec(name="x", kind=adapter.job_kind, replicas=replicas, resources=Resources(),
                   workload_json=json.dumps(obj), group_size=adapter.group_size(obj))


# kind -> (job kind, replicas, per-replica resources, group size)
EXPECTED = {
    "Job": (JobKind.TRAINING, 2, Resources(1000, GiB, 8000), 1),
    "Deployment": (JobKind.INFERENCE, 3, Resources(1000, GiB, 1000), 1),
    "StatefulSet": (JobKind.INFERENCE, 2, Resources(1000, GiB, 1000), 1),
    "JobSet": (JobKind.TRAINING, 2, Resources(8000, 64 * GiB, 8000), 1),  # the CPU driver is not a replica
    "LeaderWorkerSet": (JobKind.INFERENCE, 12, Resources(1000, GiB, 8000), 4),
    "PyTorchJob": (JobKind.TRAINING, 4, Resources(1000, GiB, 8000), 1),
    "TrainJob": (JobKind.TRAINING, 2, Resources(4000, 16 * GiB, 8000), 1),
    "RayJob": (JobKind.TRAINING, 2, Resources(1000, GiB, 4000), 1),
}


def test_every_kind_has_an_adapter_and_an_example() -> None:
    assert {a.kind for a in ADAPTERS} == set(ALL) == set(EXPECTED)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_needs_are_derived_from_the_pod_sets(kind: str) -> None:
    obj = fresh(kind)
    adapter = adapter_for(obj)
    job_kind, replicas, per, group = EXPECTED[kind]
    assert adapter.job_kind is job_kind
    assert needs(adapter.pod_sets(obj)) == (replicas, per)
    assert adapter.group_size(obj) == group


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_rendering_labels_every_pod_template_and_selects_the_chosen_model(kind: str) -> None:
    obj = fresh(kind)
    before = json.dumps(obj, sort_keys=True)
    _, replicas, _, _ = EXPECTED[kind]
    out = build_workload(placement(replicas), spec_with(obj, replicas), namespace="work",
                         options=RenderOptions(labels={"kueue.x-k8s.io/queue-name": "gpu"}))
    assert json.dumps(obj, sort_keys=True) == before  # the job's object is not touched
    assert (out["apiVersion"], out["kind"]) == (obj["apiVersion"], obj["kind"])
    meta = out["metadata"]
    assert meta["name"] == "job-1-g3-member-a-" + meta["name"].rsplit("-", 1)[1]  # named after the placement
    assert meta["namespace"] == "work"
    assert meta["labels"][PLACEMENT_LABEL] == PID and meta["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"
    assert meta["annotations"][PLACEMENT_ANNOTATION] == PID
    adapter = adapter_for(out)
    if kind == "TrainJob":  # no pod template: the runtime's trainer job gets the selector
        (override,) = out["spec"]["podSpecOverrides"]
        assert override["targetJobs"] == [{"name": "node"}]
        assert override["nodeSelector"] == {"nvidia.com/gpu.product": H100}
        assert out["spec"]["labels"][PLACEMENT_LABEL] == PID
        return
    for pod_set, template in zip(adapter.pod_sets(out), templates_at(out, [p.path for p in adapter.pod_sets(out)]),
                                 strict=True):
        assert template["metadata"]["annotations"][PLACEMENT_ANNOTATION] == PID
        assert template["metadata"]["labels"][PLACEMENT_LABEL] == PID
        pod = template["spec"]
        env = {e["name"] for c in pod["containers"] for e in c["env"]}
        assert {"FEDERATOR_JOB_ID", "FEDERATOR_PLACEMENT_ID"} <= env
        if pod_set.resources.accelerator_milli:
            assert pod["nodeSelector"]["nvidia.com/gpu.product"] == H100
        else:  # a CPU-only pod set (a driver, a head) goes anywhere
            assert "nodeSelector" not in pod


def test_inference_kinds_run_the_placements_share() -> None:
    dep = build_workload(placement(2), spec_with(fresh("Deployment"), 3), namespace="w")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"] == {"matchLabels": {PLACEMENT_LABEL: PID}}
    lws = build_workload(placement(8), spec_with(fresh("LeaderWorkerSet"), 12), namespace="w")
    assert lws["spec"]["replicas"] == 2  # 8 replicas = 2 groups of 4
    with pytest.raises(WorkloadError, match="groups of 4"):
        build_workload(placement(6), spec_with(fresh("LeaderWorkerSet"), 12), namespace="w")


def test_a_training_kind_runs_as_given() -> None:
    js = build_workload(placement(2), spec_with(fresh("JobSet"), 2), namespace="w")
    assert [r["replicas"] for r in js["spec"]["replicatedJobs"]] == [1, 1]
    assert js["spec"]["replicatedJobs"][1]["template"]["spec"]["parallelism"] == 2


def test_a_users_indexed_job_gets_the_rendezvous_too() -> None:
    job = build_workload(placement(2), spec_with(fresh("Job"), 2), namespace="w")
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == job["metadata"]["name"]
    assert {e["name"] for e in pod["containers"][0]["env"]} >= {"MASTER_ADDR", "NODE_RANK", "WORLD_SIZE"}


@pytest.mark.parametrize(("kind", "edit", "field"), [
    ("JobSet", lambda o: o["spec"]["replicatedJobs"][1]["template"]["spec"].pop("template"),
     "spec.replicatedJobs[1].template.spec.template"),
    ("JobSet", lambda o: o["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"].update(containers=[]),
     "spec.replicatedJobs[0].template.spec.template.spec.containers"),
    ("JobSet", lambda o: o["spec"].update(replicatedJobs=[]), "spec.replicatedJobs"),
    ("JobSet", lambda o: o["spec"]["replicatedJobs"][1].update(replicas=-1), "spec.replicatedJobs[1].replicas"),
    ("LeaderWorkerSet", lambda o: o["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]
     ["resources"]["requests"].update(cpu="lots"), "spec.leaderWorkerTemplate.workerTemplate.spec.containers[0]"),
    ("TrainJob", lambda o: o["spec"]["trainer"].pop("numNodes"), "spec.trainer.numNodes"),
    ("PyTorchJob", lambda o: o["spec"].pop("pytorchReplicaSpecs"), "spec.pytorchReplicaSpecs"),
    ("RayJob", lambda o: o["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].pop("template"),
     "spec.rayClusterSpec.workerGroupSpecs[0].template"),
    ("Deployment", lambda o: o["spec"].update(template="x"), "spec.template"),
])
def test_a_malformed_object_is_refused_with_the_field_path(kind: str, edit: Any, field: str) -> None:
    obj = fresh(kind)
    edit(obj)
    with pytest.raises(WorkloadError) as err:
        adapter_for(obj).pod_sets(obj)
    assert err.value.field.startswith(field), err.value


@pytest.mark.parametrize(("obj", "field", "says"), [
    ({"apiVersion": "example.com/v1", "kind": "Widget"}, "kind", "Widget.example.com is not a supported"),
    ({"apiVersion": "jobset.x-k8s.io/v1alpha1", "kind": "JobSet"}, "apiVersion", "jobset.x-k8s.io/v1alpha2"),
    ({"kind": "JobSet"}, "apiVersion", "is required"),
])
def test_unknown_kinds_and_versions_are_refused(obj: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(WorkloadError, match=says) as err:
        adapter_for(obj)
    assert err.value.field == field


def _obj(kind: str, status: dict[str, Any], pods: int = 2) -> dict[str, Any]:
    obj = fresh(kind)
    obj["metadata"]["annotations"] = {"federator.io/replicas": str(pods)}
    obj["status"] = status
    return obj


def _cond(kind: str, **extra: str) -> dict[str, Any]:
    return {"conditions": [{"type": kind, "status": "True", **extra}]}


RUNNING_POD = {"status": {"phase": "Running"}}


@pytest.mark.parametrize(("obj", "pods", "phase", "says"), [
    (_obj("JobSet", _cond("Completed", reason="AllJobsCompleted")), [], JobPhase.SUCCEEDED, "AllJobsCompleted"),
    (_obj("JobSet", _cond("Failed", reason="FailedJobs", message="job failed")), [], JobPhase.FAILED, "job failed"),
    (_obj("JobSet", {}), [RUNNING_POD], JobPhase.PLACED, "1 of 2"),
    (_obj("JobSet", {}), [RUNNING_POD, RUNNING_POD], JobPhase.RUNNING, "2 replicas"),
    # In replicas (pods), as the job's spec.replicas and every other message count them: not "3 groups available"
    (_obj("LeaderWorkerSet", _cond("Available"), pods=12), [], JobPhase.RUNNING,
     "12 replicas running (in groups of 4)"),
    (_obj("PyTorchJob", _cond("Succeeded")), [], JobPhase.SUCCEEDED, "Succeeded"),
    (_obj("PyTorchJob", _cond("Failed", message="oom")), [], JobPhase.FAILED, "oom"),
    (_obj("TrainJob", _cond("Complete")), [], JobPhase.SUCCEEDED, "Complete"),
    # A gang half bound is not running, whatever jobsStatus counts as active (child Jobs with a pod pending).
    (_obj("TrainJob", {"jobsStatus": [{"name": "node", "active": 1}]}), [RUNNING_POD, {"status": {"phase": "Pending"}}],
     JobPhase.PLACED, "1 of 2"),
    # Trainer v2.0.0 leaves jobsStatus empty: the pods of its JobSet say (the agent finds them by its name).
    (_obj("TrainJob", {}), [RUNNING_POD, RUNNING_POD], JobPhase.RUNNING, "2 replicas"),
    (_obj("TrainJob", {}), [RUNNING_POD], JobPhase.PLACED, "1 of 2"),
    (_obj("RayJob", {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}), [], JobPhase.SUCCEEDED, ""),
    (_obj("RayJob", {"jobDeploymentStatus": "Failed", "reason": "SubmissionFailed"}), [], JobPhase.FAILED,
     "SubmissionFailed"),
    (_obj("StatefulSet", {"readyReplicas": 2}), [], JobPhase.RUNNING, ""),
    # A brought Job that retries its own pods says so while it runs (outside QA, ML user F8: "2 replicas running"
    # while four pods had failed and were being made again)
    (_obj("Job", {"failed": 4}), [RUNNING_POD, RUNNING_POD], JobPhase.RUNNING,
     "2 replicas running; 4 pods failed so far (backoffLimit"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_phase_from_each_kinds_status(obj: dict[str, Any], pods: list[dict[str, Any]], phase: JobPhase,
                                      says: str) -> None:
    got, message = workload_phase(obj, pods)
    assert (got, says in message) == (phase, True), message


@pytest.mark.parametrize(("groups", "size", "says"), [
    (1, 1, "1 replica running"), (1, 2, "2 replicas running (in groups of 2)"), (3, 1, "3 replicas running")])
def test_an_available_leaderworkerset_says_its_replicas_in_the_jobs_unit(groups: int, size: int, says: str) -> None:
    """Outside QA (an inference team): "member-a: 1 groups available" beside "2 of 4 replicas placed" (pods)."""
    obj = _obj("LeaderWorkerSet", _cond("Available"), pods=groups * size)
    obj["spec"]["replicas"] = groups
    obj["spec"]["leaderWorkerTemplate"]["size"] = size
    assert workload_phase(obj, []) == (JobPhase.RUNNING, says)


def test_the_models_kind_lists_name_every_adapter() -> None:
    from federator.model import BUILTIN_WORKLOAD_KINDS, WORKLOAD_KINDS

    assert {a.key for a in ADAPTERS} == WORKLOAD_KINDS
    assert {a.key for a in ADAPTERS if a.group in ("batch", "apps")} == BUILTIN_WORKLOAD_KINDS


def test_a_rayjob_frees_its_cluster_when_the_ray_job_finishes() -> None:
    """KubeRay keeps the RayCluster (GPU workers) after the Ray job unless shutdownAfterJobFinishes: the
    federator reads the placement Succeeded, and the workers would idle on their GPUs until deleted."""
    obj = fresh("RayJob")
    out = adapter_for(obj).render(obj, placement(2), namespace="work")
    assert out["spec"]["shutdownAfterJobFinishes"] is True
    kept = fresh("RayJob")
    kept["spec"]["shutdownAfterJobFinishes"] = False  # the user's choice (say, to inspect the cluster) stays
    assert adapter_for(kept).render(kept, placement(2), namespace="work")["spec"]["shutdownAfterJobFinishes"] is False
    policy = fresh("RayJob")
    policy["spec"]["deletionPolicy"] = "DeleteWorkers"
    assert "shutdownAfterJobFinishes" not in adapter_for(policy).render(policy, placement(2), namespace="work")["spec"]


def test_a_brought_job_without_a_ttl_gets_the_agents_and_one_with_its_own_keeps_it() -> None:
    """Outside QA (ML user, F7): a brought Job has no ttlSecondsAfterFinished, so its finished first try (before an
    early failure placed the job once more) stayed on the member after the FederatedJob was deleted, for ever."""
    obj = fresh("Job")
    obj["spec"].pop("ttlSecondsAfterFinished", None)
    out = build_workload(placement(2), spec_with(obj, 2), namespace="work", options=RenderOptions())
    assert out["spec"]["ttlSecondsAfterFinished"] == RenderOptions().finished_ttl_seconds
    obj["spec"]["ttlSecondsAfterFinished"] = 60
    out = build_workload(placement(2), spec_with(obj, 2), namespace="work", options=RenderOptions())
    assert out["spec"]["ttlSecondsAfterFinished"] == 60
