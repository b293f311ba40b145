"""Submit refuses a pod template pinning the accelerator model the agent pins itself
(template_accelerators.py `pinned_model_problems`, server/templates.py `accelerator_problems`).

Outside QA (ML platform, E1): an RL JobSet whose rollout role carried `nodeSelector: {nvidia.com/gpu.product:
NVIDIA-L4-SHARED}` was accepted; the agent set that label to the model the job was placed on (H100) on every
replicated job that asks accelerators, and the rollout pod ran on an H100 node, unsaid. A pin the job's models
do not all select is refused here, naming the field; a pin every model of the job selects is what the agent
writes anyway, and is accepted. FederatedJobs made with kubectl go through the same Submit check."""

from __future__ import annotations

from typing import Any

import pytest
from server_support import Clock, MemoryStore, make

from federator.jobfile import parse_job
from federator.model import JobSpec
from federator.server.intake import SubmitError

PRODUCT = "nvidia.com/gpu.product"
L4 = "NVIDIA-L4-SHARED"


def _role(name: str, gpus: str, selector: dict[str, str] | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [
        {"name": name, "image": "rl:1", "resources": {"requests": {"nvidia.com/gpu": gpus, "cpu": "1"},
                                                      "limits": {"nvidia.com/gpu": gpus}}}]}
    if selector:
        pod["nodeSelector"] = selector
    return {"name": name, "replicas": 1, "template": {"spec": {"parallelism": 1, "completions": 1,
                                                               "template": {"spec": pod}}}}


def _jobset(*roles: dict[str, Any], **spec: Any) -> JobSpec:
    workload = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "rl"},
                "spec": {"replicatedJobs": list(roles)}}
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "rl"},
                      "spec": {"workload": workload, **spec}})


def _native(template_spec: dict[str, Any], **spec: Any) -> JobSpec:
    body = {"kind": "training", "replicas": 1, "template": {"spec": template_spec}, **spec}
    body.setdefault("resources", {"cpu": "1", "nvidia.com/gpu": 1} if "accelerators" not in spec else {"cpu": "1"})
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "j"},
                      "spec": body})


def _refused(spec: JobSpec) -> str:
    fed = make(MemoryStore(), Clock())
    with pytest.raises(SubmitError) as err:
        fed.submit(spec)
    assert not fed.jobs  # nothing stored
    return str(err.value)


def _accepted(spec: JobSpec) -> None:
    fed = make(MemoryStore(), Clock())
    fed.submit(spec)
    assert len(fed.jobs) == 1


ROLLOUT_PIN = "spec.workload.spec.replicatedJobs[1].template.spec.template.spec.nodeSelector[nvidia.com/gpu.product]"


@pytest.mark.parametrize("models", [None, ["H100"], ["L4", "H100"]], ids=["no-models", "other-model", "one-of-two"])
def test_a_role_pinned_to_a_model_the_job_may_not_run_on_is_refused(models: list[str] | None) -> None:
    spec = _jobset(_role("learner", "8"), _role("rollout", "1", {PRODUCT: L4}),
                   **({"acceleratorModels": models} if models else {}))
    said = _refused(spec)
    assert f"{ROLLOUT_PIN}: pins the pods to {L4}, but the agent sets {PRODUCT} to the model the job is placed " \
           "on" in said
    assert "spec.acceleratorModels" in said and "a job of its own" in said


def test_a_pin_every_model_of_the_job_selects_is_kept() -> None:
    _accepted(_jobset(_role("learner", "8", {PRODUCT: L4}), _role("rollout", "1", {PRODUCT: L4}),
                      acceleratorModels=["L4"]))


def test_a_cpu_only_role_is_not_pinned_by_the_agent_so_its_selector_stands() -> None:
    cpu = {"name": "reward", "replicas": 1, "template": {"spec": {"template": {"spec": {
        "restartPolicy": "Never", "nodeSelector": {PRODUCT: L4},
        "containers": [{"name": "rm", "image": "rm:1", "resources": {"requests": {"cpu": "4"}}}]}}}}}
    _accepted(_jobset(_role("learner", "8"), cpu, acceleratorModels=["H100"]))


def test_a_native_template_pinned_elsewhere_is_refused_and_a_matching_pin_kept() -> None:
    pinned = {"nodeSelector": {PRODUCT: "NVIDIA-A100-SXM4-80GB"}, "containers": [{"name": "t", "image": "t:1"}]}
    said = _refused(_native(pinned, acceleratorModels=["H100"]))
    assert said.startswith("spec.template.spec.nodeSelector[nvidia.com/gpu.product]: pins the pods to "
                           "NVIDIA-A100-SXM4-80GB")
    assert "the job may run on H100" in said
    _accepted(_native(pinned, acceleratorModels=["A100"]))


def test_a_cpu_only_native_job_is_not_pinned() -> None:
    pinned = {"nodeSelector": {PRODUCT: "NVIDIA-A100-SXM4-80GB"}, "containers": [{"name": "t", "image": "t:1"}]}
    _accepted(_native(pinned, resources={"cpu": "1"}))


def test_each_alternative_is_checked_on_its_own_model() -> None:
    """The job's template pinned to H100 is refused for the Ascend alternative, which renders it too; an
    alternative's own template pinning its chip (a product label of another vendor, MindCluster's chip name,
    made a model by the catalog's prefix) is kept."""
    base = {"nodeSelector": {PRODUCT: "NVIDIA-H100-80GB-HBM3"}, "containers": [{"name": "t", "image": "t:1"}]}
    said = _refused(_native(base, accelerators=[{"model": "H100", "count": 8}, {"model": "Ascend910B", "count": 8}]))
    assert said.startswith("spec.template.spec.nodeSelector[nvidia.com/gpu.product]: pins the pods to "
                           "NVIDIA-H100-80GB-HBM3")
    assert "the job may run on Ascend910B" in said
    own = {"spec": {"nodeSelector": {"huawei.com/npu.chip.name": "910B3"}}}
    _accepted(_native({"containers": [{"name": "t", "image": "t:1"}]},
                      accelerators=[{"model": "Ascend910B", "count": 8, "template": own}]))
