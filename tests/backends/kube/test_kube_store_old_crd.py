"""A gRPC job's FederatedJob keeps its models on a CRD from before `acceleratorModels` (helm never upgrades crds/)."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from federator.backends.kube.resources import spec_of
from federator.backends.kube.store import KubeJobStore
from federator.jobfile import parse_job_documents
from federator.model import Job, JobId


class PruningApi:
    """FederatedJobs in memory, pruned as an API server prunes fields its CRD's schema does not name."""

    def __init__(self, spec_fields: frozenset[str] | None) -> None:
        self.spec_fields = spec_fields  # None: the CRD knows every field
        self.objects: dict[str, dict[str, Any]] = {}
        self.patches: list[dict[str, Any]] = []

    def _prune(self, obj: dict[str, Any]) -> None:
        if self.spec_fields is not None:
            obj["spec"] = {k: v for k, v in obj["spec"].items() if k in self.spec_fields}

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        obj["metadata"].update(namespace=namespace, uid=f"uid-{len(self.objects)}", generation=1)
        self._prune(obj)
        self.objects[obj["metadata"]["name"]] = obj
        return copy.deepcopy(obj)

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        obj = self.objects[name]
        assert body["metadata"]["uid"] == obj["metadata"]["uid"]
        self.patches.append({"subresource": subresource, **body})
        if subresource == "status":
            obj["status"] = body["status"]
        else:
            obj["spec"].update(body["spec"])
            self._prune(obj)
            obj["metadata"]["generation"] += 1
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


def job(text: str = JOB) -> Job:
    return Job(JobId("pretrain-1"), parse_job_documents(text)[0], submitted_at=1.0)


def test_on_an_old_crd_the_models_are_written_by_their_old_name(caplog: pytest.LogCaptureFixture) -> None:
    api = PruningApi(OLD_CRD_SPEC)
    with caplog.at_level(logging.WARNING):
        KubeJobStore(api).put([job()])  # type: ignore[arg-type]
    obj = api.objects["pretrain"]
    assert obj["spec"]["gpuModels"] == ["H100", "A100"]
    assert spec_of(obj).accelerator_models == ("H100", "A100")  # what a restart rebuilds the job from
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 2
    assert "predates spec.acceleratorModels" in caplog.text and "deploy/helm/federator/crds/" in caplog.text


def test_on_a_current_crd_only_the_new_name_is_written() -> None:
    api = PruningApi(None)
    KubeJobStore(api).put([job()])  # type: ignore[arg-type]
    obj = api.objects["pretrain"]
    assert obj["spec"]["acceleratorModels"] == ["H100", "A100"] and "gpuModels" not in obj["spec"]
    assert [p["subresource"] for p in api.patches] == ["status"]  # no spec patch


def test_a_job_without_models_is_not_patched_on_an_old_crd() -> None:
    api = PruningApi(OLD_CRD_SPEC)
    KubeJobStore(api).put([job(JOB.replace("  acceleratorModels: [H100, A100]\n", ""))])  # type: ignore[arg-type]
    assert [p["subresource"] for p in api.patches] == ["status"]
    assert "gpuModels" not in api.objects["pretrain"]["spec"]
