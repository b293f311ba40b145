"""An API client's AcceleratorAlternative.resource_name is checked like any field (types.proto): Submit reads it
as the job file's one-count form, and refuses, naming the field, what that form could not have made. The form
itself refuses a model of the vendor's other product line beside the resource (it could never be served)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from server_support import Clock, MemoryStore, make

from federator.jobfile import JobFileError, parse_job
from federator.model import AcceleratorAlternative, JobSpec
from federator.server.intake import SubmitError

A310P = "huawei.com/Ascend310P"


def _spec(*alternatives: AcceleratorAlternative) -> JobSpec:
    base = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "j"},
                      "spec": {"kind": "inference", "replicas": 1, "resources": {"cpu": "1", A310P: 1}}})
    return replace(base, accelerators=alternatives)


def test_the_one_count_form_is_kept() -> None:
    fed = make(MemoryStore(), Clock())
    job = fed.submit(_spec(AcceleratorAlternative(1000, vendor="huawei", resource_name=A310P)))
    assert [a.resource_name for a in job.spec.accelerators] == [A310P]


@pytest.mark.parametrize("alternative", [
    AcceleratorAlternative(1000, vendor="amd", resource_name=A310P),  # another vendor than the resource's
    AcceleratorAlternative(1000, vendor="huawei", min_memory_mib=1024, resource_name=A310P),
    AcceleratorAlternative(1000, vendor="huawei", pod_template_json='{"spec": {}}', resource_name=A310P),
])
def test_what_the_one_count_form_could_not_make_is_refused_naming_the_field(
        alternative: AcceleratorAlternative) -> None:
    fed = make(MemoryStore(), Clock())
    with pytest.raises(SubmitError) as err:
        fed.submit(_spec(alternative))
    assert "spec.accelerators[0].resource_name: is set from the one-count form only" in str(err.value)
    assert not fed.jobs


def test_a_vendor_with_one_resource_needs_none() -> None:
    fed = make(MemoryStore(), Clock())
    job = fed.submit(_spec(AcceleratorAlternative(1000, vendor="amd", resource_name="amd.com/gpu")))
    assert [(a.vendor, a.resource_name) for a in job.spec.accelerators] == [("amd", "")]


def test_a_model_of_the_other_product_line_beside_the_resource_is_refused() -> None:
    with pytest.raises(JobFileError) as err:
        parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "j"},
                   "spec": {"kind": "inference", "resources": {"cpu": "1", "huawei.com/Ascend910": 1},
                            "acceleratorModels": ["Ascend910B", "Ascend310P"]}})
    (problem,) = err.value.problems
    assert (problem.field, problem.problem) == (
        "spec.acceleratorModels[1]", "Ascend310P is a huawei.com/Ascend310P model, but spec.resources asks for "
        "huawei.com/Ascend910: ask for huawei.com/Ascend310P, or list both in spec.accelerators")
