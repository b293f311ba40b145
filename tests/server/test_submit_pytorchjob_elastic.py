"""Submit refuses a PyTorchJob whose `elasticPolicy.maxReplicas` is above its Workers' replicas
(backends/kube/workloads/kubeflow.py `elastic_problems`, server/templates.py `accelerator_problems`).

Outside QA (ML platform, E4): Worker.replicas 2 with `elasticPolicy: {minReplicas: 2, maxReplicas: 4}` was accepted
and counted as 2 Workers of 8 GPUs; the training operator reconciles an HPA for every elasticPolicy, on the
PyTorchJob's scale subresource (Worker.replicas), which may add two more 8-GPU Workers that the federator never
reserved, quota-checked or billed. A maxReplicas of the Workers' own count, or none, is accepted: minReplicas below
it is torchrun's elasticity within the placed gang."""

from __future__ import annotations

from typing import Any

import pytest
from server_support import Clock, MemoryStore, make

from federator.jobfile import parse_job
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
