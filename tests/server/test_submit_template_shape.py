"""Submit refuses a pod template whose fields are not of the type the agent renders into (server/templates.py,
podtemplates.shape_problems): `containers: "app"`, a list for `nodeSelector`, a string for a container's `env`.

Before, `kubectl apply` of such a FederatedJob was accepted, and every member's agent in turn failed to render it
with a Python error (`launch failed: 'str' object has no attribute 'setdefault'`, a traceback in the agent's
log), the job bouncing between members with RecentlyRefused for ever. Now it is refused at submit naming the
field (a FederatedJob gets phase Failed and an `Invalid` Event), and nothing is stored. Each refused shape is
one the Kubernetes backend's renderer cannot take (checked here against `build_workload`), and well-formed
templates still render."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from server_support import Clock, MemoryStore, make

from federator.backends.kube.workloads.registry import build_workload
from federator.jobfile import parse_job
from federator.model import JobSpec
from federator.model.job import Placement
from federator.server.intake import SubmitError

C = {"name": "main", "image": "llm:1"}
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "containers not a list": ({"spec": {"containers": "oops"}}, "spec.template.spec.containers"),
    "a container not a mapping": ({"spec": {"containers": ["oops"]}}, "spec.template.spec.containers[0]"),
    "spec not a mapping": ({"spec": "oops"}, "spec.template.spec"),
    "metadata not a mapping": ({"metadata": "x", "spec": {"containers": [C]}}, "spec.template.metadata"),
    "labels a list": ({"metadata": {"labels": ["a"]}, "spec": {"containers": [C]}},
                      "spec.template.metadata.labels"),
    "resources a string": ({"spec": {"containers": [{**C, "resources": "x"}]}},
                           "spec.template.spec.containers[0].resources"),
    "requests a list": ({"spec": {"containers": [{**C, "resources": {"requests": ["x"]}}]}},
                        "spec.template.spec.containers[0].resources.requests"),
    "env a string": ({"spec": {"containers": [{**C, "env": "x"}]}}, "spec.template.spec.containers[0].env"),
    "an env item a string": ({"spec": {"containers": [{**C, "env": ["x"]}]}},
                             "spec.template.spec.containers[0].env[0]"),
    "metadata null": ({"metadata": None, "spec": {"containers": [C]}}, "spec.template.metadata"),
    "spec null": ({"spec": None}, "spec.template.spec"),
    "resources null": ({"spec": {"containers": [{**C, "resources": None}]}},
                       "spec.template.spec.containers[0].resources"),
    "nodeSelector a list": ({"spec": {"nodeSelector": ["x"], "containers": [C]}}, "spec.template.spec.nodeSelector"),
}


def _job(template: Any, kind: str = "training") -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "t"},
                      "spec": {"kind": kind, "replicas": 2, "resources": {"nvidia.com/gpu": 1},
                               "template": template}})


def _placement(spec: JobSpec) -> Placement:
    return Placement(placement_id="t-1.g1.member-a", job_id="t-1", cluster="member-a", region="east",
                     replicas=spec.replicas, accelerator_model="NVIDIA-H100-80GB-HBM3", generation=1)


def _refusal(spec: JobSpec) -> SubmitError:
    fed = make(MemoryStore(), Clock())
    with pytest.raises(SubmitError) as err:
        fed.submit(spec)
    assert not fed.jobs  # nothing stored
    assert fed.metrics.messages_rejected.labels("invalid_job")._value.get() == 1
    return err.value


@pytest.mark.parametrize("kind", ["training", "inference"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_template_the_agent_cannot_render_is_refused_at_submit_naming_the_field(case: str, kind: str) -> None:
    template, field = BAD[case]
    spec = _job(copy.deepcopy(template), kind)
    with pytest.raises(Exception) as rendered:  # what an agent met before: a Python error, not a WorkloadError
        build_workload(_placement(spec), spec, namespace="federator-workloads")
    assert rendered.type in (AttributeError, TypeError), rendered.value
    refused = _refusal(spec)
    assert [p.field for p in refused.__cause__.problems] == [field]  # type: ignore[union-attr]
    assert str(refused).startswith(f"{field}: must ")


def test_an_alternative_is_blamed_for_its_own_fields_and_a_workload_for_its_templates() -> None:
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "t"},
                      "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"},
                               "template": {"spec": {"containers": [C]}},
                               "accelerators": [{"model": "H100", "count": 1},
                                                {"model": "A100", "count": 1,
                                                 "template": {"spec": {"containers": [{"env": "x"}]}}}]}})
    assert str(_refusal(spec)) == "spec.accelerators[1].template.spec.containers[0].env: must be a list, each item " \
                                  "a variable ({name, value})"
    workload = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1, "template": {
        "metadata": {"labels": ["app"]},
        "spec": {"containers": [{**C, "resources": {"limits": {"nvidia.com/gpu": 1}}}]}}}}
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "w"},
                      "spec": {"workload": workload}})
    assert str(_refusal(spec)) == "spec.workload.spec.template.metadata.labels: must map names to strings"


@pytest.mark.parametrize("template", [
    {},
    {"metadata": {"labels": {"team": "llm"}}},  # metadata only: the placeholder container (test_submit_template_keys)
    {"metadata": {"labels": None}, "spec": {"containers": [C], "nodeSelector": None, "tolerations": None}},
    {"spec": {"containers": [{**C, "env": None, "resources": {"requests": None}}]}},
    {"metadata": {"labels": {"team": "llm"}, "annotations": {"a": "b"}},
     "spec": {"nodeSelector": {"zone": "a"}, "tolerations": [{"key": "k", "operator": "Exists"}],
              "initContainers": [{"name": "init", "image": "busybox"}],
              "containers": [{**C, "env": [{"name": "A", "value": "1"}],
                              "resources": {"requests": {"cpu": 1}, "limits": {"memory": "1Gi"}}}]}},
])
def test_well_formed_templates_are_accepted_and_render(template: dict[str, Any]) -> None:
    spec = _job(template)
    assert make(MemoryStore(), Clock()).submit(spec).job_id
    build_workload(_placement(spec), spec, namespace="federator-workloads")
