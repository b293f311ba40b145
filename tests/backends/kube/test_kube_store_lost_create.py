"""The FederatedJob of a gRPC job whose create was made but whose answer was lost: adopted, not fought over.

Before, the store forgot it was creating the object once the create failed, retried the create into
409 AlreadyExists for good (the job's status never written), and the controller, seeing the object
again after a re-list, took it for a new FederatedJob of a user's.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from federator.backends.kube.api import ConflictError, KubeError, NotFoundError
from federator.backends.kube.resources import FINALIZER
from federator.backends.kube.store import KubeJobStore
from federator.jobfile import parse_job_documents
from federator.model import Job, JobId, JobPhase

JOB = """
apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: pretrain, namespace: research}
spec:
  kind: training
  replicas: 2
  resources: {nvidia.com/gpu: 8, cpu: "8", memory: 32Gi}
  acceleratorModels: [H100]
"""


class LossyApi:
    """FederatedJobs in memory; `lose` creates are made and then answered with no answer (a timeout)."""

    def __init__(self, lose: int = 0) -> None:
        self.lose = lose
        self.objects: dict[str, dict[str, Any]] = {}
        self.creates = 0

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None, *,
               strict: bool = False) -> dict[str, Any]:
        self.creates += 1
        name = body["metadata"]["name"]
        if name in self.objects:
            raise ConflictError(409, f'federatedjobs.federator.io "{name}" already exists', reason="AlreadyExists")
        obj = copy.deepcopy(body)
        obj["metadata"].update(namespace=namespace, uid=f"uid-{self.creates}", generation=1)
        self.objects[name] = obj
        if self.lose:
            self.lose -= 1
            raise KubeError(0, "POST federatedjobs: read timed out")
        return copy.deepcopy(obj)

    def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        if name not in self.objects:
            raise NotFoundError(404, f'federatedjobs.federator.io "{name}" not found')
        return copy.deepcopy(self.objects[name])

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        assert subresource == "status"
        obj = self.objects[name]
        if body["metadata"]["uid"] != obj["metadata"]["uid"]:
            raise ConflictError(409, "uid precondition failed")
        obj["status"] = body["status"]
        return copy.deepcopy(obj)


def job(phase: JobPhase = JobPhase.PENDING, text: str = JOB) -> Job:
    return Job(JobId("pretrain-1"), parse_job_documents(text)[0], submitted_at=1.0, phase=phase)


def test_a_create_whose_answer_was_lost_is_adopted_by_the_retry() -> None:
    api = LossyApi(lose=1)
    store = KubeJobStore(api)  # type: ignore[arg-type]
    store.put([job()])
    assert api.objects["pretrain"]["metadata"]["finalizers"] == [FINALIZER]  # made, answer lost
    assert store.creating("research", "pretrain") == "pretrain-1"  # the controller still knows whose it is
    assert store.flush() == 0  # the retry adopts it
    obj = api.objects["pretrain"]
    assert obj["status"]["jobId"] == "pretrain-1"
    assert store.job_for_uid(obj["metadata"]["uid"]) == "pretrain-1" and store.creating("research", "pretrain") is None
    assert api.creates == 2 and len(api.objects) == 1


def test_a_job_that_ended_before_its_object_was_adopted_still_gets_it_and_its_end() -> None:
    api = LossyApi(lose=1)
    store = KubeJobStore(api)  # type: ignore[arg-type]
    store.put([job()])
    store.put([job(JobPhase.CANCELLED)])  # cancelled while the object's fate was unknown
    assert api.objects["pretrain"]["status"]["phase"] == "Cancelled"
    assert store.creating("research", "pretrain") is None


@pytest.mark.parametrize("other", ["another job's", "no finalizer", "another spec"])
def test_an_object_of_that_name_that_is_not_the_jobs_is_not_adopted(other: str) -> None:
    api = LossyApi()
    mine = job()
    store = KubeJobStore(api)  # type: ignore[arg-type]
    obj: dict[str, Any] = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                           "metadata": {"name": "pretrain", "namespace": "research", "uid": "u-theirs",
                                        "generation": 1, "finalizers": [FINALIZER]},
                           "spec": {"kind": "training", "replicas": 2,
                                    "resources": {"nvidia.com/gpu": 8, "cpu": "8", "memory": "32Gi"},
                                    "acceleratorModels": ["H100"]}}
    if other == "another job's":
        obj["status"] = {"jobId": "pretrain-0"}
    elif other == "no finalizer":
        obj["metadata"]["finalizers"] = []
    else:
        obj["spec"]["replicas"] = 4
    api.objects["pretrain"] = obj
    store.put([mine])
    assert store.flush() == 1  # still failing, and said so in the log; never written over
    assert "status" not in obj or obj["status"] == {"jobId": "pretrain-0"}
    assert store.creating("research", "pretrain") is None  # refused: not the job's, so not held for it
