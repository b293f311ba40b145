"""spec.regions.allowed in a job file: read, checked naming the field, written back, stored and on the wire."""

from __future__ import annotations

from typing import Any

import pytest

from federator.api import convert
from federator.jobfile import JobFileError, parse_job
from federator.jobfile_writing import spec_to_document
from federator.model import Job, JobId
from federator.store.codec import job_from_dict, job_to_dict


def doc(regions: Any) -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "records"},
            "spec": {"kind": "training", "resources": {"cpu": "1"}, "regions": regions}}


def test_allowed_regions_are_read_written_stored_and_sent() -> None:
    spec = parse_job(doc({"allowed": ["east", "central", "east"], "preferred": ["east"]}))
    assert spec.allowed_regions == ("east", "central")
    assert spec_to_document(spec)["spec"]["regions"] == {"allowed": ["east", "central"], "preferred": ["east"]}
    assert parse_job(spec_to_document(spec)) == spec
    assert convert.spec_from_pb(convert.spec_to_pb(spec)) == spec
    stored = job_from_dict(job_to_dict(Job(JobId("records-1"), spec, submitted_at=1.0)))
    assert stored.spec.allowed_regions == ("east", "central")
    unfenced = parse_job(doc({}))
    assert "allowed_regions" not in job_to_dict(Job(JobId("j"), unfenced, submitted_at=1.0))["spec"]


@pytest.mark.parametrize(("regions", "said"), [
    ({"allowed": "east"}, "spec.regions.allowed: must be a list of region names, got 'east'"),
    ({"allowed": ["east", "West"]}, "spec.regions.allowed[1]: must be a region name"),
    ({"alowed": ["east"]}, "spec.regions.alowed: is not a known field (known: allowed, maxLatencyMs"),
])
def test_a_bad_allowed_list_is_refused_naming_the_field(regions: Any, said: str) -> None:
    with pytest.raises(JobFileError) as err:
        parse_job(doc(regions))
    assert said in str(err.value)
