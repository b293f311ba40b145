"""Submit refuses a PyTorchJob whose `elasticPolicy.maxReplicas` is above its Workers' replicas
(elastic_policy.py `elastic_problems`, server/templates.py `accelerator_problems`).

Outside QA (ML platform, E4): Worker.replicas 2 with `elasticPolicy: {minReplicas: 2, maxReplicas: 4}` was accepted
and counted as 2 Workers of 8 GPUs; the training operator reconciles an HPA for every elasticPolicy, on the
PyTorchJob's scale subresource (Worker.replicas), which may add two more 8-GPU Workers that the federator never
reserved, quota-checked or billed. A maxReplicas of the Workers' own count, or none, is accepted: minReplicas below
it is torchrun's elasticity within the placed gang."""

from __future__ import annotations

from typing import Any

import pytest
from server_support import Clock, MemoryStore, make

from federator.jobfile import JobFileError, parse_job
from federator.model import JobSpec
from federator.server.intake import SubmitError


def _pytorchjob(workers: int, elastic: dict[str, Any] | None) -> JobSpec:
    worker = {"replicas": workers, "restartPolicy": "OnFailure", "template": {"spec": {"containers": [
        {"name": "pytorch", "image": "ft:1", "command": ["torchrun", "train.py"],
         "resources": {"requests": {"nvidia.com/gpu": 8, "cpu": "8"}, "limits": {"nvidia.com/gpu": 8}}}]}}}
    spec: dict[str, Any] = {"pytorchReplicaSpecs": {"Worker": worker}}
    if elastic is not None:
        spec["elasticPolicy"] = elastic
    workload = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "ft"}, "spec": spec}
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "ft"},
                      "spec": {"acceleratorModels": ["H100"], "workload": workload}})


def test_a_max_above_the_workers_is_refused_naming_the_field() -> None:
    fed = make(MemoryStore(), Clock())
    with pytest.raises(SubmitError) as err:
        fed.submit(_pytorchjob(2, {"minReplicas": 2, "maxReplicas": 4, "rdzvBackend": "c10d"}))
    assert not fed.jobs
    said = str(err.value)
    assert said.startswith("spec.workload.spec.elasticPolicy.maxReplicas: is 4, above "
                           "spec.pytorchReplicaSpecs.Worker.replicas (2): the training operator's autoscaler may "
                           "scale the Workers up to 4, and the federator reserves, counts and bills 2")
    assert "set maxReplicas to 2" in said


@pytest.mark.parametrize("elastic", [None, {"minReplicas": 2, "maxReplicas": 4}, {"minReplicas": 2}, {}],
                         ids=["no-policy", "max-equal", "no-max", "empty"])
def test_elasticity_within_the_placed_gang_is_accepted(elastic: dict[str, Any] | None) -> None:
    fed = make(MemoryStore(), Clock())
    fed.submit(_pytorchjob(4, elastic))
    (job,) = fed.jobs.values()
    assert job.spec.replicas == 4  # the gang is the Workers asked, as before


def test_a_whole_float_is_read_as_the_api_server_stores_it() -> None:
    """Outside QA new60 N2 (jobs/e4-maxfloat.yaml): `maxReplicas: 8.0` was skipped as "not an integer", and the
    member's API server stored 8 with 4 Workers reserved; a client sending the JSON as written got it accepted."""
    fed = make(MemoryStore(), Clock())
    with pytest.raises(SubmitError) as err:
        fed.submit(_pytorchjob(4, {"minReplicas": 1, "maxReplicas": 8.0}))
    assert str(err.value).startswith("spec.workload.spec.elasticPolicy.maxReplicas: is 8, above "
                                     "spec.pytorchReplicaSpecs.Worker.replicas (4)")
    fed.submit(_pytorchjob(4, {"minReplicas": 1.0, "maxReplicas": 4.0}))  # the Workers' own count, as floats
    assert len(fed.jobs) == 1


@pytest.mark.parametrize("elastic, said", [
    ({"maxReplicas": "8"}, "spec.workload.spec.elasticPolicy.maxReplicas: must be an integer >= 1 (the bound of the "
                           "autoscaler the training operator makes), got '8'"),
    ({"maxReplicas": True}, "spec.workload.spec.elasticPolicy.maxReplicas: must be an integer >= 1"),
    ({"maxReplicas": -1}, "spec.workload.spec.elasticPolicy.maxReplicas: must be an integer >= 1"),
    ({"minReplicas": 2.5}, "spec.workload.spec.elasticPolicy.minReplicas: must be an integer >= 1"),
    ({"minReplicas": 6, "maxReplicas": 4}, "spec.workload.spec.elasticPolicy.minReplicas: is 6, above "
                                           "spec.elasticPolicy.maxReplicas (4): the training operator's autoscaler "
                                           "cannot be made with its minimum above its maximum"),
    ({"minReplicas": 6}, "spec.workload.spec.elasticPolicy.minReplicas: is 6, above "
                         "spec.pytorchReplicaSpecs.Worker.replicas (4), which maxReplicas defaults to"),
    (5, "spec.workload.spec.elasticPolicy: must be a mapping (minReplicas, maxReplicas, rdzvBackend, ...), got 5"),
], ids=["string", "bool", "negative", "fraction", "min-above-max", "min-above-workers", "not-a-mapping"])
def test_a_policy_the_operator_could_not_use_is_refused_naming_the_field(elastic: Any, said: str) -> None:
    """new60 N2 (jobs/e2, e6, e7, e9; `true` over gRPC): each was accepted and lost at the member's API server or
    operator instead of named at submit."""
    fed = make(MemoryStore(), Clock())
    with pytest.raises(SubmitError) as err:
        fed.submit(_pytorchjob(4, elastic))
    assert not fed.jobs
    assert str(err.value).startswith(said)


def test_whole_float_workers_are_counted_as_the_api_server_stores_them() -> None:
    """small60: `Worker.replicas: 4.0` (stored as 4 by the member's API server) was refused by the pod-set count
    as "must be an integer >= 0"; it is the gang of 4, and its elasticPolicy is judged against 4."""
    fed = make(MemoryStore(), Clock())
    fed.submit(_pytorchjob(4.0, {"minReplicas": 2, "maxReplicas": 4}))  # type: ignore[arg-type]
    (job,) = fed.jobs.values()
    assert job.spec.replicas == 4


@pytest.mark.parametrize("workers", [4.5, "4", True, -1], ids=["fraction", "string", "bool", "negative"])
def test_workers_the_api_server_would_not_store_are_refused_naming_the_field(workers: Any) -> None:
    with pytest.raises(JobFileError) as err:  # the job file's own check runs the same pod-set count
        _pytorchjob(workers, None)
    assert str(err.value).startswith("spec.workload.spec.pytorchReplicaSpecs.Worker.replicas: must be an integer "
                                     f">= 0, got {workers!r}")
