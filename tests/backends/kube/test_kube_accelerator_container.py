"""The agent writes a job's accelerators on one container, the one the template's annotation names (else the
first), and leaves none anywhere else (backends/kube/workloads/common.py `render_accelerators`,
template_accelerators.py).

Outside testers: a template's own `nvidia.com/gpu` on a second container, a sidecar or a DRA claim was rendered
as given and ran uncounted (S1); with containers [logshipper, trainer] the log shipper got the accelerators (F5);
and an alternative's override `[{name: trainer}]` renamed the first container by position (F5). A job stored
before the submit rule still renders only what it declares."""

from __future__ import annotations

import json
from typing import Any

from federator.backends.kube.accelerators import render
from federator.backends.kube.devices import DeviceGroup, Sharing
from federator.backends.kube.placement_launch import chosen_alternative
from federator.backends.kube.workloads import RenderOptions, build_workload
from federator.model import AcceleratorAlternative, JobId, JobKind, JobSpec, Placement, PlacementId, Resources
from federator.template_accelerators import ACCELERATOR_CONTAINER_ANNOTATION

GPUS = {"requests": {"nvidia.com/gpu": "8"}, "limits": {"nvidia.com/gpu": "8", "amd.com/gpu": "2"}}
STORED = {  # what Submit accepted before the rule (S1): the agent must not run what it asks
    "metadata": {"annotations": {ACCELERATOR_CONTAINER_ANNOTATION: "trainer"}},
    "spec": {"containers": [{"name": "logshipper", "image": "ship:1", "resources": GPUS},
                            {"name": "trainer", "image": "train:1", "resources": {
                                "requests": {"nvidia.com/gpu": "4", "rdma/hca_shared_devices_a": "1"},
                                "claims": [{"name": "mine"}]}}],
             "initContainers": [{"name": "proxy", "image": "p:1", "restartPolicy": "Always", "resources": GPUS}],
             "resourceClaims": [{"name": "mine", "resourceClaimTemplateName": "sixteen"}]}}


def _placement(model: str = "NVIDIA-H100-80GB-HBM3", alternative: int = 0) -> Placement:
    return Placement(placement_id=PlacementId("j.g1.m"), job_id=JobId("j"), cluster="m", region="r", replicas=1,
                     accelerator_model=model, generation=1, alternative=alternative)


def _spec(template: dict[str, Any], milli: int = 4000, **more: Any) -> JobSpec:
    return JobSpec(name="j", kind=JobKind.TRAINING, replicas=1,
                   resources=Resources(cpu_milli=2000, accelerator_milli=milli),
                   pod_template_json=json.dumps(template), **more)


def _pod(spec: JobSpec, **options: Any) -> dict[str, Any]:
    job = build_workload(_placement(), spec, namespace="w", options=RenderOptions(**options))
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def _accelerators(container: dict[str, Any]) -> dict[str, str]:
    res = container.get("resources") or {}
    return {f"{part}[{k}]": v for part in ("requests", "limits") for k, v in (res.get(part) or {}).items()
            if k.split("/")[0] in ("nvidia.com", "amd.com", "huawei.com")}


def test_the_named_container_gets_requests_and_limits_and_no_other_any() -> None:
    pod = _pod(_spec(STORED))
    shipper, trainer = pod["containers"]
    assert _accelerators(trainer) == {"requests[nvidia.com/gpu]": "4", "limits[nvidia.com/gpu]": "4"}
    assert trainer["resources"]["requests"]["cpu"] == "2"
    assert trainer["resources"]["requests"]["rdma/hca_shared_devices_a"] == "1"  # not an accelerator: kept
    assert _accelerators(shipper) == {} and _accelerators(pod["initContainers"][0]) == {}
    assert "resourceClaims" not in pod and "claims" not in trainer["resources"]


def test_a_cpu_only_job_runs_no_accelerator_its_template_asked() -> None:
    pod = _pod(_spec(STORED, milli=0))
    assert [_accelerators(c) for c in (*pod["containers"], *pod["initContainers"])] == [{}, {}, {}]


def test_without_the_annotation_the_first_container_gets_them() -> None:
    template = {"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}
    first, second = _pod(_spec(template))["containers"]
    assert _accelerators(first) == {"requests[nvidia.com/gpu]": "4", "limits[nvidia.com/gpu]": "4"}
    assert _accelerators(second) == {}


def test_another_vendors_pool_goes_on_the_named_container_alone() -> None:
    ascend = DeviceGroup(node="n", vendor="huawei", model="910B3", resource="huawei.com/Ascend910",
                         selector=(("huawei.com/npu.chip.name", "910B3"),), sharing=Sharing.NONE, devices=8,
                         units=8, unit_milli=1000)
    pod = _pod(_spec(STORED), accelerator=render(ascend, 4000))
    shipper, trainer = pod["containers"]
    assert _accelerators(trainer) == {"requests[huawei.com/Ascend910]": "4", "limits[huawei.com/Ascend910]": "4"}
    assert _accelerators(shipper) == {} and _accelerators(pod["initContainers"][0]) == {}


def test_an_alternatives_override_merges_into_the_container_of_its_name() -> None:
    base = {"spec": {"containers": [{"name": "logshipper", "image": "ship:1"}, {"name": "trainer", "image": "cuda:1"}]}}
    over = {"metadata": {"annotations": {ACCELERATOR_CONTAINER_ANNOTATION: "trainer"}},
            "spec": {"containers": [{"name": "trainer", "image": "rocm:1"}]}}
    spec = _spec(base, accelerators=(AcceleratorAlternative(milli=1000, model="H100"),
                                     AcceleratorAlternative(milli=2000, model="MI300X", vendor="amd",
                                                            pod_template_json=json.dumps(over))))
    pod = _pod(chosen_alternative(_placement(alternative=1), spec))
    assert [(c["name"], c["image"]) for c in pod["containers"]] == [("logshipper", "ship:1"), ("trainer", "rocm:1")]
    assert _accelerators(pod["containers"][1]) == {"requests[nvidia.com/gpu]": "2", "limits[nvidia.com/gpu]": "2"}
