"""An elastic gang's workload on its member: the placed count, torchrun told min:max, retries (workloads/elastic.py).

Outside QA, ML platform E5: the Job had backoffLimit 0 and torchrun a fixed node count, so a gang placed below its
size could neither rendezvous as `--nnodes=2:4` nor survive a lost worker.
"""

from __future__ import annotations

import json
from dataclasses import replace

from federator.backends.kube.workloads import build_workload
from federator.jobfile import parse_job
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources

from workload_objects import pytorchjob

H100 = "NVIDIA-H100-80GB-HBM3"
GiB = 2**30
TRAINER = {"spec": {"containers": [{"name": "trainer", "image": "trainer:1", "env": [
    {"name": "PET_NNODES", "value": "4"}]}]}}  # a user's own value is replaced, as the other rendezvous ones


def placement(replicas: int) -> Placement:
    return Placement(placement_id=PlacementId("ft-abc123.g1.member-a"), job_id=JobId("ft-abc123"),
                     cluster="member-a", region="east", replicas=replicas, accelerator_model=H100, generation=1)


def gang(min_replicas: int) -> JobSpec:
    return JobSpec(name="ft", kind=JobKind.TRAINING, replicas=4, resources=Resources(8000, 64 * GiB, 8000),
                   pod_template_json=json.dumps(TRAINER), min_replicas=min_replicas)


def env_of(job: dict) -> dict[str, object]:  # type: ignore[type-arg]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_a_two_of_four_gang_is_a_job_of_two_that_tells_torchrun_two_to_four() -> None:
    job = build_workload(placement(2), gang(2), namespace="work")
    s = job["spec"]
    assert (s["completions"], s["parallelism"]) == (2, 2)  # the count placed, not the 4 asked
    assert s["backoffLimit"] == 6  # 3 pod replacements per placed replica: torchrun's restarts can happen
    # the agent's mark: a Job whose replicas all crash at its start is ended early (elastic_crash.py)
    assert job["metadata"]["annotations"]["federator.io/elastic"] == "2:4"
    name = job["metadata"]["name"]
    env = env_of(job)
    assert env["PET_NNODES"] == "2:4"
    assert (env["NNODES"], env["WORLD_SIZE"]) == ("2", "2")  # what runs now
    assert env["PET_RDZV_BACKEND"] == "c10d"  # static takes no range
    # replica 0's FQDN, the name its own torchrun matches to host the c10d store (test_kube_rendezvous_host.py)
    assert env["PET_RDZV_ENDPOINT"] == f"{name}-0.{name}.work.svc.cluster.local:29500"
    assert env["PET_RDZV_ID"] == name
    assert env["PET_MAX_RESTARTS"] == "3"


def test_a_gang_without_a_minimum_is_as_before() -> None:
    job = build_workload(placement(4), gang(0), namespace="work")
    assert job["spec"]["backoffLimit"] == 0
    assert "federator.io/elastic" not in job["metadata"].get("annotations", {})
    env = env_of(job)
    assert env["PET_NNODES"] == "4"
    assert "PET_RDZV_BACKEND" not in env


def test_a_pytorchjob_placed_below_its_size_runs_fewer_workers_beside_its_master() -> None:
    obj = pytorchjob()  # Master 1 + Worker 3, 8 GPUs each
    obj["spec"]["elasticPolicy"] = {"minReplicas": 1, "maxReplicas": 3, "rdzvBackend": "c10d"}
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "ddp"},
                      "spec": {"workload": obj}})
    assert (spec.replicas, spec.min_replicas) == (4, 2)  # the Master and elasticPolicy's one Worker
    out = build_workload(replace(placement(3), job_id=JobId("ddp-1")), spec, namespace="work")
    roles = out["spec"]["pytorchReplicaSpecs"]
    assert (roles["Master"]["replicas"], roles["Worker"]["replicas"]) == (1, 2)
    whole = build_workload(replace(placement(4), job_id=JobId("ddp-1")), spec, namespace="work")
    assert whole["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3


def test_a_cpu_master_is_no_replica_so_the_workers_take_the_whole_count_placed() -> None:
    obj = pytorchjob()
    roles = obj["spec"]["pytorchReplicaSpecs"]
    roles["Master"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    roles["Worker"]["replicas"] = 4
    obj["spec"]["elasticPolicy"] = {"minReplicas": 2, "maxReplicas": 4}
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "ddp"},
                      "spec": {"workload": obj}})
    assert (spec.replicas, spec.min_replicas) == (4, 2)  # the 4 GPU Workers are the replicas; the Master is not
    out = build_workload(replace(placement(3), job_id=JobId("ddp-1")), spec, namespace="work")
    placed = out["spec"]["pytorchReplicaSpecs"]
    assert (placed["Master"]["replicas"], placed["Worker"]["replicas"]) == (1, 3)


def test_a_pytorchjob_placed_short_has_its_elastic_policy_lowered_with_its_workers() -> None:
    """elasticqa63 3: Worker.replicas was cut to the count placed while `maxReplicas` stayed at the whole gang's, so
    the training operator's autoscaler (made from the policy when it has `metrics`) could add Workers back that the
    federator never reserved nor billed."""
    obj = pytorchjob()  # Master 1 + Worker 3
    obj["spec"]["elasticPolicy"] = {"minReplicas": 2, "maxReplicas": 3, "rdzvBackend": "c10d",
                                    "metrics": [{"type": "Resource", "resource": {"name": "cpu"}}]}
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "ddp"},
                      "spec": {"workload": obj}})
    out = build_workload(replace(placement(3), job_id=JobId("ddp-1")), spec, namespace="work")
    assert out["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 2
    policy = out["spec"]["elasticPolicy"]
    assert (policy["minReplicas"], policy["maxReplicas"]) == (2, 2)  # not 3: nothing to grow into
    assert policy["metrics"] and policy["rdzvBackend"] == "c10d"  # the rest as written
    whole = build_workload(replace(placement(4), job_id=JobId("ddp-1")), spec, namespace="work")
    assert whole["spec"]["elasticPolicy"]["maxReplicas"] == 3  # placed whole: as written
    obj["spec"]["elasticPolicy"]["minReplicas"] = 2
    spec1 = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "ddp"},
                       "spec": {"workload": obj}})
    low = build_workload(replace(placement(2), job_id=JobId("ddp-1")), replace(spec1, min_replicas=2),
                         namespace="work")
    assert low["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 1
    assert (low["spec"]["elasticPolicy"]["minReplicas"], low["spec"]["elasticPolicy"]["maxReplicas"]) == (1, 1)
