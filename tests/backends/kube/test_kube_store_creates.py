"""How the store creates the FederatedJob of a job submitted over gRPC, against what an API server does.

- On a CRD from before `acceleratorModels` (helm never upgrades crds/). Found by hand on the test bed:
  the API server prunes the field it does not know, and the CRD's spec is immutable, so the store cannot
  mend the object after the fact. It creates with fieldValidation=Strict, and on an unknown field
  creates again with the renamed fields' old names (for every job: applying the CRD mends the next one).
- When a create was made but its answer was lost. Before, the store forgot it was creating the object
  once the create failed, retried the create into 409 AlreadyExists for good (the job's status never
  written), and the controller, seeing the object again after a re-list, took it for a user's.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from federator.backends.kube.api import ConflictError, InvalidError, KubeError, NotFoundError
from federator.backends.kube.resources import FINALIZER, spec_of
from federator.backends.kube.store import KubeJobStore
from federator.jobfile_loading import parse_job_documents
from federator.model import Job, JobId, JobPhase
from federator.store import StoreUnavailable
from federator.store.errors import NameTaken


class StrictApi:
    """FederatedJobs in memory, checked as an API server checks them against a CRD's schema: a field it does
    not name is refused under fieldValidation=Strict and pruned without a word otherwise."""

    def __init__(self, spec_fields: frozenset[str] | None) -> None:
        self.spec_fields = spec_fields  # None: the CRD knows every field
        self.objects: dict[str, dict[str, Any]] = {}
        self.creates: list[tuple[bool, dict[str, Any]]] = []  # (strict, spec sent)

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None, *,
               strict: bool = False) -> dict[str, Any]:
        self.creates.append((strict, copy.deepcopy(body["spec"])))
        obj = copy.deepcopy(body)
        unknown = [k for k in obj["spec"] if self.spec_fields is not None and k not in self.spec_fields]
        if unknown and strict:
            raise InvalidError(400, "FederatedJob in version \"v1alpha1\" cannot be handled as a FederatedJob: "
                               "strict decoding error: " + ", ".join(f'unknown field "spec.{k}"' for k in unknown),
                               reason="BadRequest")
        obj["spec"] = {k: v for k, v in obj["spec"].items() if k not in unknown}
        obj["metadata"].update(namespace=namespace, uid=f"uid-{len(self.objects)}", generation=1)
        self.objects[obj["metadata"]["name"]] = obj
        return copy.deepcopy(obj)

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        assert subresource == "status", "a FederatedJob's spec is immutable"
        obj = self.objects[name]
        assert body["metadata"]["uid"] == obj["metadata"]["uid"]
        obj["status"] = body["status"]
        return copy.deepcopy(obj)


OLD_CRD_SPEC = frozenset({"kind", "replicas", "resources", "gpuModels", "accelerators", "queue", "priority",
                          "regions", "template", "workload"})
JOB = """
apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: pretrain, namespace: research}
spec:
  kind: training
  replicas: 2
  resources: {nvidia.com/gpu: 8, cpu: "8", memory: 32Gi}
  acceleratorModels: [H100, A100]
"""


def job(text: str = JOB, name: str = "pretrain", phase: JobPhase = JobPhase.PENDING) -> Job:
    return Job(JobId(f"{name}-1"), parse_job_documents(text.replace("name: pretrain", f"name: {name}"))[0],
               submitted_at=1.0, phase=phase)


def test_on_an_old_crd_the_models_are_written_by_their_old_name(caplog: pytest.LogCaptureFixture) -> None:
    api = StrictApi(OLD_CRD_SPEC)
    store = KubeJobStore(api)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        store.put([job()])
    obj = api.objects["pretrain"]
    assert obj["spec"]["gpuModels"] == ["H100", "A100"]
    assert spec_of(obj).accelerator_models == ("H100", "A100")  # what a restart rebuilds the job from
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert 'spec.acceleratorModels' in caplog.text and "deploy/helm/federator/crds/" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        store.put([job(name="second")])  # the next job too, said once
    assert [strict for strict, _ in api.creates] == [True, False, True, False]
    assert api.objects["second"]["spec"]["gpuModels"] == ["H100", "A100"] and not caplog.text
    api.spec_fields = OLD_CRD_SPEC | {"acceleratorModels"}  # the operator applies the CRDs: no restart needed
    store.put([job(name="third")])
    assert api.objects["third"]["spec"]["acceleratorModels"] == ["H100", "A100"]


def test_on_a_current_crd_only_the_new_name_is_written_and_checked_strictly() -> None:
    api = StrictApi(OLD_CRD_SPEC | {"acceleratorModels"})
    KubeJobStore(api).put([job()])  # type: ignore[arg-type]
    obj = api.objects["pretrain"]
    assert obj["spec"]["acceleratorModels"] == ["H100", "A100"] and "gpuModels" not in obj["spec"]
    assert [strict for strict, _ in api.creates] == [True]


def test_a_job_without_models_is_created_once_on_an_old_crd() -> None:
    api = StrictApi(OLD_CRD_SPEC)
    KubeJobStore(api).put([job(JOB.replace("  acceleratorModels: [H100, A100]\n", ""))])  # type: ignore[arg-type]
    assert len(api.creates) == 1 and "gpuModels" not in api.objects["pretrain"]["spec"]


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


def test_a_create_whose_answer_was_lost_is_adopted_by_the_retry() -> None:
    api = LossyApi(lose=1)
    store = KubeJobStore(api)  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable):  # no answer: the caller hears the job is not stored, and writes again
        store.put([job()])
    assert api.objects["pretrain"]["metadata"]["finalizers"] == [FINALIZER]  # made, answer lost
    assert store.creating("research", "pretrain") == "pretrain-1"  # the controller still knows whose it is
    store.put([job()])  # the retry adopts it
    obj = api.objects["pretrain"]
    assert obj["status"]["jobId"] == "pretrain-1"
    assert store.job_for_uid(obj["metadata"]["uid"]) == "pretrain-1" and store.creating("research", "pretrain") is None
    assert api.creates == 2 and len(api.objects) == 1


def test_a_job_that_ended_before_its_object_was_adopted_still_gets_it_and_its_end() -> None:
    api = LossyApi(lose=1)
    store = KubeJobStore(api)  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable):
        store.put([job()])
    store.put([job(phase=JobPhase.CANCELLED)])  # cancelled while the object's fate was unknown
    assert api.objects["pretrain"]["status"]["phase"] == "Cancelled"
    assert store.creating("research", "pretrain") is None


def their_object(other: str) -> dict[str, Any]:
    """A FederatedJob research/pretrain that is not job pretrain-1's, in the way `other` says."""
    obj: dict[str, Any] = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                           "metadata": {"name": "pretrain", "namespace": "research", "uid": "u-theirs",
                                        "generation": 1, "finalizers": [FINALIZER]},
                           "spec": {"kind": "training", "replicas": 2,
                                    "resources": {"nvidia.com/gpu": 8, "cpu": "8", "memory": "32Gi"},
                                    "acceleratorModels": ["H100", "A100"]}}
    if other == "another job's":
        obj["status"] = {"jobId": "pretrain-0", "phase": "Succeeded"}
    elif other == "no finalizer":
        obj["metadata"]["finalizers"] = []
    else:
        obj["spec"]["replicas"] = 4
    return obj


@pytest.mark.parametrize(("other", "said"), [("another job's", "(job pretrain-0, Succeeded)"),
                                             ("no finalizer", "(not a job yet: made with kubectl"),
                                             ("another spec", "(another spec)")],
                         ids=["another job's", "no finalizer", "another spec"])
def test_an_object_of_that_name_that_is_not_the_jobs_is_not_adopted(other: str, said: str) -> None:
    """It was retried every flush for ever, with a warning, and the Submit told OK: the job was lost at the
    next restart. Now the job is refused (NameTaken: the Submit hears ALREADY_EXISTS), nothing is kept, and
    the object is never written over."""
    api = LossyApi()
    store = KubeJobStore(api)  # type: ignore[arg-type]
    obj = their_object(other)
    before = copy.deepcopy(obj)
    api.objects["pretrain"] = obj
    with pytest.raises(NameTaken) as refused:
        store.put([job()])
    message = str(refused.value)
    assert message.startswith("metadata.name: FederatedJob research/pretrain exists and is not this job's ")
    assert said in message and "kubectl delete federatedjob -n research pretrain" in message
    assert refused.value.job_ids == {"pretrain-1"}
    assert refused.value.holder == ("pretrain-0" if other == "another job's" else "")
    assert "pretrain-0" not in refused.value.vague
    assert api.objects["pretrain"] == before  # never written over
    assert api.creates == 1  # refused once, not retried
    assert store.flush() == 0  # nothing held
    assert store.creating("research", "pretrain") is None  # refused: not the job's, so not held for it
    assert store.owner_of(JobId("pretrain-1")) is None


def test_a_refused_name_fails_only_its_job_and_the_rest_of_the_batch_is_stored() -> None:
    api = LossyApi()
    api.objects["pretrain"] = their_object("another job's")
    store = KubeJobStore(api)  # type: ignore[arg-type]
    with pytest.raises(NameTaken) as refused:
        store.put([job(), job(name="second")])
    assert refused.value.job_ids == {"pretrain-1"}
    assert api.objects["second"]["status"]["jobId"] == "second-1"
    assert store.flush() == 0


def test_an_object_deleted_between_the_409_and_the_read_frees_the_name() -> None:
    """The create met the old object; by the time the store read it, it was gone: the create is made again."""
    api = LossyApi()
    api.objects["pretrain"] = their_object("another job's")
    real_get = api.get

    def get_after_delete(res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        api.objects.pop(name, None)  # kubectl delete, just now
        return real_get(res, name, namespace)

    api.get = get_after_delete  # type: ignore[method-assign]
    store = KubeJobStore(api)  # type: ignore[arg-type]
    store.put([job()])
    assert api.objects["pretrain"]["status"]["jobId"] == "pretrain-1" and api.creates == 2


def test_a_grpc_jobs_federatedjob_gets_its_submit_warnings_as_events() -> None:
    """Outside QA: `federator submit` printed its warnings on the user's terminal, but the FederatedJob made for
    the job got no SubmitWarning Event, while the same file applied with kubectl did; a teammate's `kubectl
    describe fj` saw nothing."""
    class Events:
        instance = "federator"

        def __init__(self) -> None:
            self.recorded: list[dict[str, Any]] = []

        def record(self, obj: dict[str, Any]) -> None:
            self.recorded.append(obj)

    api = StrictApi(None)
    events = Events()
    store = KubeJobStore(api, events=events)  # type: ignore[arg-type]
    store.warnings_of = lambda spec: [f"spec.regions.maxLatencyMs: no member region is near {spec.name}"]
    store.put([job()])
    store.put([job()])  # a status write of the same job: no second warning
    warned = [e for e in events.recorded if e["reason"] == "SubmitWarning"]
    assert [(e["type"], e["message"], e["involvedObject"]["name"]) for e in warned] == [
        ("Warning", "spec.regions.maxLatencyMs: no member region is near pretrain", "pretrain")]
