"""Submit checks the keys of a job's pod template against Kubernetes' field names (podtemplates.key_findings).

Before, `spec.template: {spec: {containerz: [...]}}` was accepted without a word: the agent found no containers,
ran its placeholder (busybox `sleep 30`) on the job's whole gang, and the job reported Succeeded though the
trainer never ran (outside QA, F5). Now a key a letter or two (or a case) from a field is refused with a
did-you-mean, a pod spec without containers is refused, and a key unlike every field is accepted with a warning
(a newer Kubernetes may have it)."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from server_support import Clock, MemoryStore, job_api, make

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.backends.kube.workloads.registry import build_workload
from federator.jobfile import parse_job
from federator.jobfile_loading import load_job_files
from federator.model import JobSpec
from federator.model.job import Placement
from federator.server.intake import SubmitError

C = {"name": "trainer", "image": "llm:1"}
TYPO = "spec.template.spec.containerz: is not a field of a pod spec; did you mean containers?"


def _doc(template: Any, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "t"},
            "spec": {"kind": "training", "replicas": 4, "resources": {"nvidia.com/gpu": 8}, "template": template,
                     **spec}}


def _refused(spec: JobSpec) -> SubmitError:
    fed = make(MemoryStore(), Clock())
    with pytest.raises(SubmitError) as err:
        fed.submit(spec)
    assert not fed.jobs  # nothing stored, nothing placed
    assert fed.metrics.messages_rejected.labels("invalid_job")._value.get() == 1
    return err.value


def test_a_misspelt_containers_in_a_job_file_is_refused_with_a_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "badtpl.yaml"
    path.write_text(yaml.safe_dump(_doc({"spec": {"containerz": [{"name": "x", "image": "busybox"}]}})))
    (spec,) = load_job_files(path)  # the file's shape is fine: the federator's submit check knows the pod's fields
    assert str(_refused(spec)) == TYPO  # and not "containers is required" again beside it


def test_a_misspelt_containers_over_grpc_submit_is_invalid_argument_naming_the_field() -> None:
    fed = make(MemoryStore(), Clock())
    request = jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job(_doc({"spec": {"containers": [C]}}))))
    request.spec.pod_template_json = '{"spec": {"containerz": [{"name": "x", "image": "busybox"}]}}'

    async def main() -> None:
        async with job_api(fed) as api:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.Submit(request)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details() == TYPO  # the job file's name, no internal `(spec.pod_template_json)`
            status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
            assert status is not None
            bad = error_details_pb2.BadRequest()
            assert status.details[0].Unpack(bad)
            assert [(v.field, v.description) for v in bad.field_violations] == [
                ("spec.pod_template_json", "is not a field of a pod spec; did you mean containers?")]

    asyncio.run(main())
    assert not fed.jobs


@pytest.mark.parametrize(("template", "field", "meant"), [
    ({"spec": {"Containers": [C]}}, "spec.template.spec.Containers", "containers"),
    ({"spec": {"containers": [C], "nodeselector": {"a": "b"}}}, "spec.template.spec.nodeselector", "nodeSelector"),
    ({"spec": {"containers": [{**C, "imagePullPolicyy": "Always"}]}},
     "spec.template.spec.containers[0].imagePullPolicyy", "imagePullPolicy"),
    ({"spec": {"containers": [C], "initContainers": [{**C, "name": "i", "comand": ["x"]}]}},
     "spec.template.spec.initContainers[0].comand", "command"),
    ({"spec": {"containers": [C], "ephemeralContainers": [{**C, "name": "e", "targetContainerNme": "trainer"}]}},
     "spec.template.spec.ephemeralContainers[0].targetContainerNme", "targetContainerName"),
    ({"metadata": {"labelz": {"a": "b"}}, "spec": {"containers": [C]}}, "spec.template.metadata.labelz", "labels"),
    ({"specs": {"containers": [C]}}, "spec.template.specs", "spec"),
], ids=["case", "nodeselector", "container-key", "init-container-key", "ephemeral-key", "metadata-key", "specs"])
def test_a_likely_typo_of_a_field_is_refused_naming_the_field_meant(template: dict[str, Any], field: str,
                                                                    meant: str) -> None:
    refused = _refused(parse_job(_doc(template)))
    assert [p.field for p in refused.__cause__.problems] == [field]  # type: ignore[union-attr]
    assert str(refused).endswith(f"did you mean {meant}?"), str(refused)


def test_an_alternatives_override_is_checked_as_its_own_and_a_workloads_templates_too() -> None:
    spec = parse_job(_doc({"spec": {"containers": [C]}}, resources={"cpu": "1"}, accelerators=[
        {"model": "H100", "count": 8}, {"model": "A100", "count": 8, "template": {"spec": {"tolerationz": []}}}]))
    assert str(_refused(spec)) == ("spec.accelerators[1].template.spec.tolerationz: is not a field of a pod spec; "
                                   "did you mean tolerations?")
    workload = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1, "template": {
        "spec": {"containers": [{**C, "imagee": "x", "resources": {"requests": {"cpu": "1"}}}]}}}}
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "w"},
                      "spec": {"workload": workload}})
    assert str(_refused(spec)) == ("spec.workload.spec.template.spec.containers[0].imagee: is not a field of a "
                                   "container; did you mean image?")


def test_an_unknown_key_unlike_any_field_is_accepted_with_a_warning_naming_it() -> None:
    """A newer Kubernetes may have the field: refusing it would lock users out of it; saying nothing would leave
    them wondering why the member dropped it."""
    template = {"spec": {"containers": [{**C, "futureContainerThing": True}], "shinyNewPodField": {"on": True}}}
    fed = make(MemoryStore(), Clock())
    job = fed.submit(parse_job(_doc(template)))
    assert job.job_id in fed.jobs
    said = fed.intake.warnings(job.spec)  # what Submit's reply and a FederatedJob's Warning Event carry
    assert [w for w in said if "API server may drop it" in w] == [
        "spec.template.spec.shinyNewPodField: is not a field of a Kubernetes 1.36 pod spec: the member's API "
        "server may drop it or refuse the job",
        "spec.template.spec.containers[0].futureContainerThing: is not a field of a Kubernetes 1.36 container: "
        "the member's API server may drop it or refuse the job"]


@pytest.mark.parametrize("template", [
    {"spec": {}},
    {"spec": {"containers": []}},
    {"spec": {"containers": None, "nodeSelector": {"zone": "a"}}},
    {"metadata": {"labels": {"team": "llm"}}, "spec": {"restartPolicy": "Never"}},
], ids=["empty-spec", "empty-list", "null-containers", "spec-without-containers"])
def test_a_pod_spec_without_containers_is_refused_naming_containers(template: dict[str, Any]) -> None:
    refused = _refused(parse_job(_doc(copy.deepcopy(template))))
    assert str(refused).startswith("spec.template.spec.containers: is required where the template gives a pod spec")


def test_an_alternative_giving_a_pod_spec_without_containers_is_refused_at_its_own_path() -> None:
    spec = parse_job(_doc({"metadata": {"labels": {"team": "llm"}}}, resources={"cpu": "1"}, accelerators=[
        {"model": "H100", "count": 8, "template": {"spec": {"nodeSelector": {"zone": "a"}}}}]))
    assert str(_refused(spec)).startswith("spec.accelerators[0].template.spec.containers: is required")


@pytest.mark.parametrize("template", [None, {}, {"metadata": {"labels": {"team": "llm"}}}],
                         ids=["no-template", "empty", "metadata-only"])
def test_no_pod_spec_still_gets_the_placeholder_container(template: dict[str, Any] | None) -> None:
    """The placeholder is for jobs that give no pod spec at all (the demo's), with or without labels."""
    doc = _doc(template)
    if template is None:
        del doc["spec"]["template"]
    spec = parse_job(doc)
    fed = make(MemoryStore(), Clock())
    assert fed.submit(spec).job_id in fed.jobs
    placement = Placement(placement_id="t-1.g1.member-a", job_id="t-1", cluster="member-a", region="east",
                          replicas=spec.replicas, accelerator_model="NVIDIA-H100-80GB-HBM3", generation=1)
    rendered = build_workload(placement, spec, namespace="federator-workloads")
    (container,) = rendered["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("busybox")
