"""Submit refuses a pod template pinning the accelerator model the agent pins itself
(template_accelerators.py `pinned_model_problems`, server/templates.py `accelerator_problems`).

Outside QA (ML platform, E1): an RL JobSet whose rollout role carried `nodeSelector: {nvidia.com/gpu.product:
NVIDIA-L4-SHARED}` was accepted; the agent set that label to the model the job was placed on (H100) on every
replicated job that asks accelerators, and the rollout pod ran on an H100 node, unsaid. A pin the job's models
can place elsewhere is refused here, naming the field and the model to write; a pin every pool of the job's
models carries is what the agent writes anyway, and is accepted (template_pins.py). FederatedJobs made with kubectl
go through the same Submit check.

Outside QA new60: the first check asked whether each model selected the pin, the wrong way round (N1: `[A100]`
with an 80 GB pin passed, placed on a 40 GB pool, the pin replaced); it refused partition jobs whose pin the agent
never touches (N8), read Cambricon's bare `Model` label on an NVIDIA job (N9), and misworded two cases (N6)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from server_support import Clock, MemoryStore, capacity, make

from federator.jobfile import parse_job
from federator.model import JobSpec
from federator.server.federator import Federator
from federator.server.intake import SubmitError

from builders import pool

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


FLEET = ("NVIDIA-L4-SHARED", "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb",
         "Ascend310P3-vNPU-2c", "Ascend310P1-vNPU-2c")


def _fed() -> Federator:
    """A federator one of whose members reports the shared and partition models the tests name (Submit refuses a
    model that neither the catalog nor a member has)."""
    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="m", region="r", labels={})
    pools = tuple(replace(pool(m, nodes=1), vendor="huawei" if m.startswith("Ascend") else "nvidia") for m in FLEET)
    fed.report(rec, replace(capacity(), accelerator_pools=pools))
    return fed


def _refused(spec: JobSpec) -> str:
    fed = _fed()
    with pytest.raises(SubmitError) as err:
        fed.submit(spec)
    assert not fed.jobs  # nothing stored
    return str(err.value)


def _accepted(spec: JobSpec) -> None:
    fed = _fed()
    fed.submit(spec)
    assert len(fed.jobs) == 1


ROLLOUT_PIN = "spec.workload.spec.replicatedJobs[1].template.spec.template.spec.nodeSelector[nvidia.com/gpu.product]"
PIN_SAID = "pins the pods to {!r}, but the agent sets nvidia.com/gpu.product to the placed pool's value"


@pytest.mark.parametrize("models", [None, ["H100"], ["L4", "H100"], ["L4"]],
                         ids=["no-models", "other-model", "one-of-two", "family-of-the-pin"])
def test_a_role_pinned_to_a_model_the_job_may_not_run_on_is_refused(models: list[str] | None) -> None:
    spec = _jobset(_role("learner", "8"), _role("rollout", "1", {PRODUCT: L4}),
                   **({"acceleratorModels": models} if models else {}))
    said = _refused(spec)
    assert f"{ROLLOUT_PIN}: {PIN_SAID.format(L4)}" in said
    assert f"name {L4} in spec.acceleratorModels" in said and "a job of its own" in said


def test_a_pin_of_the_very_model_the_job_names_is_kept() -> None:
    """users.md's example: the job names the pinned model itself, so every pool placement may choose carries it."""
    _accepted(_jobset(_role("learner", "8", {PRODUCT: L4}), _role("rollout", "1", {PRODUCT: L4}),
                      acceleratorModels=[L4]))
    _accepted(_jobset(_role("learner", "8", {PRODUCT: L4}), acceleratorModels=["nvidia-l4-shared"]))  # any case


def test_a_cpu_only_role_is_not_pinned_by_the_agent_so_its_selector_stands() -> None:
    cpu = {"name": "reward", "replicas": 1, "template": {"spec": {"template": {"spec": {
        "restartPolicy": "Never", "nodeSelector": {PRODUCT: L4},
        "containers": [{"name": "rm", "image": "rm:1", "resources": {"requests": {"cpu": "4"}}}]}}}}}
    _accepted(_jobset(_role("learner", "8"), cpu, acceleratorModels=["H100"]))


A100_80 = "NVIDIA-A100-SXM4-80GB"
PINNED_80 = {"nodeSelector": {PRODUCT: A100_80}, "containers": [{"name": "t", "image": "t:1"}]}


def test_a_family_name_with_a_pin_of_one_of_its_models_is_refused() -> None:
    """new60 N1 (jobs/q1-a100-pin80.yaml): A100 selects the 80 GB pin, and the 40 GB pools too, where the agent
    wrote its value over the pin; refused, naming the model that placement would honour."""
    said = _refused(_native(PINNED_80, acceleratorModels=["A100"]))
    assert said.startswith(f"spec.template.spec.nodeSelector[nvidia.com/gpu.product]: {PIN_SAID.format(A100_80)}, "
                           f"and 'A100' also selects NVIDIA-A100-SXM4-40GB")
    assert f"name {A100_80} in spec.acceleratorModels (the pin may stay)" in said
    _accepted(_native(PINNED_80, acceleratorModels=[A100_80]))


@pytest.mark.parametrize("models, said", [
    (["H100"], f"'H100' is not {A100_80}"),
    (["A100", "L40S"], "'L40S' is not"),
    (None, "the job names no model: any nvidia model may be placed"),
], ids=["other-model", "one-of-two", "no-model"])
def test_a_native_template_pinned_elsewhere_is_refused_saying_why(models: list[str] | None, said: str) -> None:
    assert said in _refused(_native(PINNED_80, **({"acceleratorModels": models} if models else {})))


def test_a_cpu_only_native_job_is_not_pinned() -> None:
    _accepted(_native(PINNED_80, resources={"cpu": "1"}))


def test_an_empty_pin_says_so() -> None:
    """new60 N6 (jobs/t8.yaml): the value was shown as nothing, "pins the pods to , but"."""
    said = _refused(_native({"nodeSelector": {PRODUCT: ""}, "containers": [{"name": "t", "image": "t:1"}]},
                            acceleratorModels=["H100"]))
    assert "pins the pods to an empty value" in said and "no nvidia pool has an empty value: remove it" in said


@pytest.mark.parametrize("models", [["NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"], ["MIG-1g.10gb"]],
                         ids=["full-name", "profile-only"])
def test_a_mig_job_pinning_its_parent_product_is_accepted(models: list[str]) -> None:
    """new60 N8 (jobs/m34.yaml, m12.yaml): the agent pins a MIG pool by nvidia.com/mig-<profile>.product and
    never touches nvidia.com/gpu.product, the parent's, which feature discovery puts on the MIG node: the pin
    stands, as in 0.18.0."""
    parent = {"nodeSelector": {PRODUCT: "NVIDIA-H100-80GB-HBM3"}, "containers": [{"name": "t", "image": "t:1"}]}
    _accepted(_native(parent, acceleratorModels=models))


def test_a_mig_profile_label_is_judged_as_the_agent_writes_it() -> None:
    mig = "nvidia.com/mig-1g.10gb.product"
    pinned = {"nodeSelector": {mig: "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"}, "containers": [{"name": "t", "image": "t"}]}
    said = _refused(_native(pinned, acceleratorModels=["MIG-1g.10gb"]))
    assert f"spec.template.spec.nodeSelector[{mig}]" in said
    assert "'MIG-1g.10gb' also selects other nvidia models" in said
    _accepted(_native(pinned, acceleratorModels=["NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"]))
    _accepted(_native(pinned, acceleratorModels=["MIG-3g.40gb"]))  # never on a 1g.10gb pool: the label is the user's


CHIP = "huawei.com/npu.chip.name"


def test_an_ascend_vnpu_job_pinning_its_chip_is_accepted_and_another_chip_refused() -> None:
    """new60 N8 (jobs/v1.yaml): the agent pins a vNPU pool by the chip's label, 310P3, the value the user wrote."""
    chip = {"nodeSelector": {CHIP: "310P3"}, "containers": [{"name": "t", "image": "t:1"}]}
    _accepted(_native(chip, accelerators=[{"model": "Ascend310P3-vNPU-2c", "count": 1}]))
    said = _refused(_native(chip, accelerators=[{"model": "Ascend310P1-vNPU-2c", "count": 1}]))
    assert f"spec.template.spec.nodeSelector[{CHIP}]: pins the pods to '310P3'" in said
    assert "'Ascend310P1-vNPU-2c' (spec.accelerators[0].model) is not Ascend310P3" in said


def test_another_vendors_label_of_the_same_name_is_the_users() -> None:
    """new60 N9 (jobs/x1.yaml): Cambricon's product label is the bare `Model`; an NVIDIA job's own `Model` label
    (a site's server model) is not one the agent writes for it, whatever its words."""
    for models, value in ((["A100"], "PowerEdge-XE9680"), (["H100"], "DGX-H100")):
        _accepted(_native({"nodeSelector": {"Model": value}, "containers": [{"name": "t", "image": "t:1"}]},
                          acceleratorModels=models))


def test_each_alternative_is_checked_on_its_own_model() -> None:
    """new60 N6 (jobs/t2.yaml): the job's template pinned to an H100 renders for the Ascend alternative too, whose
    nodes have no NVIDIA label: the fix is the H100 alternative's own template. There, a pin of its exact model
    is kept, and an alternative's own template pinning its chip (made a model by the catalog's prefix) too."""
    h100 = "NVIDIA-H100-80GB-HBM3"
    base = {"nodeSelector": {PRODUCT: h100}, "containers": [{"name": "t", "image": "t:1"}]}
    said = _refused(_native(base, accelerators=[{"model": "H100", "count": 8}, {"model": "Ascend910B", "count": 8}]))
    assert said.startswith(f"spec.template.spec.nodeSelector[nvidia.com/gpu.product]: {PIN_SAID.format(h100)}")
    assert "'H100' (spec.accelerators[0].model) also selects other nvidia models" in said
    assert "Ascend910B (spec.accelerators[1].model) runs on nodes without it" in said
    assert "; move the pin into spec.accelerators[0].template" in said
    said = _refused(_native(base, accelerators=[{"model": h100, "count": 8}, {"model": "Ascend910B", "count": 8}]))
    assert "runs on nodes without it" in said and "also selects" not in said
    own = {"spec": {"nodeSelector": {PRODUCT: h100}}}
    _accepted(_native({"containers": [{"name": "t", "image": "t:1"}]},
                      accelerators=[{"model": h100, "count": 8, "template": own},
                                    {"model": "Ascend910B3", "count": 8,
                                     "template": {"spec": {"nodeSelector": {CHIP: "910B3"}}}}]))
    said = _refused(_native({"containers": [{"name": "t", "image": "t:1"}]},
                            accelerators=[{"model": "Ascend910B", "count": 8,
                                           "template": {"spec": {"nodeSelector": {CHIP: "910B3"}}}}]))
    assert said.startswith(f"spec.accelerators[0].template.spec.nodeSelector[{CHIP}]: pins the pods to '910B3'")
    assert "name Ascend910B3 in spec.accelerators[0].model" in said


def _trainjob(models: list[str], pin: str) -> JobSpec:
    workload = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "spec": {
        "runtimeRef": {"name": "torch-distributed"},
        "trainer": {"numNodes": 1, "resourcesPerNode": {"limits": {"cpu": "1", "nvidia.com/gpu": "8"}}},
        "podSpecOverrides": [{"targetJobs": [{"name": "node"}], "nodeSelector": {PRODUCT: pin}}]}}
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "t"},
                      "spec": {"workload": workload, "acceleratorModels": models}})


def test_a_trainjobs_override_pinning_the_product_is_judged_as_a_template() -> None:
    """The trainer merges `podSpecOverrides` into the trainer's pods, and the agent's own override (the placed
    pool's label) after the user's: the user's pin was written over there too."""
    said = _refused(_trainjob(["A100"], A100_80))
    assert said.startswith(f"spec.workload.spec.podSpecOverrides[0].nodeSelector[{PRODUCT}]: "
                           f"{PIN_SAID.format(A100_80)}, and 'A100' also selects NVIDIA-A100-SXM4-40GB")
    _accepted(_trainjob([A100_80], A100_80))


def _affinity(operator: str, *values: str, key: str = PRODUCT, terms: int = 1) -> dict[str, Any]:
    expr: dict[str, Any] = {"key": key, "operator": operator, **({"values": list(values)} if values else {})}
    term = {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}, expr]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term] * terms}}}


AFFINITY_PIN = ("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: "
                "nodeSelectorTerms[0].matchExpressions[1] (nvidia.com/gpu.product In)")


def _affine(affinity: dict[str, Any]) -> dict[str, Any]:
    role = _role("learner", "8")
    role["template"]["spec"]["template"]["spec"]["affinity"] = affinity
    return role


def test_a_required_node_affinity_pinning_another_model_is_refused_as_a_node_selector_is() -> None:
    """new60 N3 (k/k3.yaml): `acceleratorModels: [H100]` with a required node affinity `nvidia.com/gpu.product In
    [NVIDIA-A100-SXM4-80GB]` passed submit and was refused at every launch (no node matches both it and the
    agent's nodeSelector); refused here, in the nodeSelector rule's words, naming the expression."""
    said = _refused(_jobset(_affine(_affinity("In", A100_80)), acceleratorModels=["H100"]))
    field = f"spec.workload.spec.replicatedJobs[0].template.spec.template.{AFFINITY_PIN}"
    assert said.startswith(f"{field} {PIN_SAID.format(A100_80)}, and 'H100' is not {A100_80}: "
                           f"name {A100_80} in spec.acceleratorModels (the pin may stay)")
    native = _refused(_native({"affinity": _affinity("In", A100_80), "containers": [{"name": "t", "image": "t:1"}]},
                              acceleratorModels=["A100"]))
    assert native.startswith(f"spec.template.{AFFINITY_PIN} {PIN_SAID.format(A100_80)}, and 'A100' also selects "
                             "NVIDIA-A100-SXM4-40GB")


@pytest.mark.parametrize("affinity", [
    _affinity("In", A100_80), _affinity("In", "NVIDIA-H100-80GB-HBM3", A100_80),
    _affinity("NotIn", "NVIDIA-H100-80GB-HBM3"), _affinity("Exists"), _affinity("In", "H100", key="example.com/gpu"),
    _affinity("In", "NVIDIA-H100-80GB-HBM3", terms=2),
], ids=["the-named-model", "one-of-its-values", "not-in", "exists", "a-site-label", "several-terms"])
def test_an_affinity_placement_honours_or_the_user_owns_is_accepted(affinity: dict[str, Any]) -> None:
    _accepted(_jobset(_affine(affinity), acceleratorModels=[A100_80]))


def test_a_required_node_affinity_excluding_every_model_the_job_may_run_on_is_refused() -> None:
    """new60b N10: `[H100]` with `nvidia.com/gpu.product NotIn [NVIDIA-H100-80GB-HBM3]` (the catalog's one H100) passed
    submit and could never run (the member refused it at every launch); refused naming the expression and why."""
    field = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: nodeSelectorTerms[0]." \
        "matchExpressions[1] (nvidia.com/gpu.product NotIn)"
    for models in (["H100"], ["NVIDIA-H100-80GB-HBM3"]):
        said = _refused(_jobset(_affine(_affinity("NotIn", "NVIDIA-H100-80GB-HBM3")), acceleratorModels=models))
        assert said.startswith(f"spec.workload.spec.replicatedJobs[0].template.spec.template.{field} excludes "
                               f"'NVIDIA-H100-80GB-HBM3', every pool {models[0]!r} may be placed on"), said
        assert said.endswith("so the job could never run: remove the expression, or name another model in "
                             "spec.acceleratorModels"), said
    native = _refused(_native({"affinity": _affinity("NotIn", A100_80), "containers": [{"name": "t", "image": "t:1"}]},
                              acceleratorModels=[A100_80]))
    assert native.startswith(f"spec.template.{field} excludes {A100_80!r}"), native
    _accepted(_jobset(_affine(_affinity("NotIn", A100_80)), acceleratorModels=["A100"]))  # the 40 GB pools remain
