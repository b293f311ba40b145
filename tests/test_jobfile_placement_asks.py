"""spec.regions.weights and spec.prefer in a job file (jobfile_placement_asks.py): read, written back, stored and
sent unchanged; a bad value refused naming its field and what it must be."""

from __future__ import annotations

from typing import Any

import pytest

from federator.api import convert
from federator.jobfile import JobFileError, parse_job
from federator.jobfile_writing import spec_to_document
from federator.model import Job, JobId, Preference
from federator.store.codec import job_from_dict, job_to_dict


def doc(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "web"},
            "spec": {"kind": "inference", "replicas": 8, "resources": {"cpu": "1"}, **spec}}


def test_the_asks_are_read_written_stored_and_sent() -> None:
    spec = parse_job(doc(regions={"weights": {"west": 1, "east": 3}, "allowed": ["east", "west"]},
                         prefer="cheapest"))
    assert spec.region_weights == (("east", 3), ("west", 1)) and spec.prefer is Preference.CHEAPEST
    written = spec_to_document(spec)["spec"]
    assert written["regions"]["weights"] == {"east": 3, "west": 1} and written["prefer"] == "cheapest"
    assert parse_job(spec_to_document(spec)) == spec
    assert convert.spec_from_pb(convert.spec_to_pb(spec)) == spec
    assert job_from_dict(job_to_dict(Job(JobId("web-1"), spec, submitted_at=1.0))).spec == spec
    plain = parse_job(doc())
    assert {"region_weights", "prefer"}.isdisjoint(job_to_dict(Job(JobId("j"), plain, submitted_at=1.0))["spec"])
    assert {"regions", "prefer"}.isdisjoint(spec_to_document(plain)["spec"])


@pytest.mark.parametrize(("spec", "said"), [
    ({"regions": {"weights": [3, 1]}}, "spec.regions.weights: must be a mapping of region name to weight"),
    ({"regions": {"weights": {"east": 1.5}}}, "spec.regions.weights.east: must be an integer from 1 to 1000"),
    ({"regions": {"weights": {"east": True}}}, "spec.regions.weights.east: must be an integer from 1 to 1000"),
    ({"regions": {"weights": {"east": 1, "west": 1}, "allowed": ["east"]}},
     "spec.regions.weights.west: is not in spec.regions.allowed (east)"),
    ({"regions": {"weights": {"east": 1}, "preferred": ["east"]}},
     "spec.regions.weights: decides alone how the replicas split over regions: leave out spec.regions.preferred"),
    ({"regions": {"weights": {"east": 1}, "user": "east"}}, "leave out spec.regions.user"),
    ({"kind": "training", "replicas": 1, "regions": {"weights": {"east": 1}}},
     "spec.regions.weights: applies to inference jobs only"),
    ({"prefer": "fastest"}, "spec.prefer: must be one of cheapest (or left out: the operator's policy decides), "
                            "got 'fastest'"),
    ({"staticWeightList": {"east": 1}}, "spec.staticWeightList: is not a known field; did you mean "
                                        "spec.regions.weights?"),
], ids=["a-list", "a-fraction", "a-bool", "outside-allowed", "with-preferred", "with-user", "training",
        "unknown-preference", "karmadas-name"])
def test_a_bad_ask_is_refused_naming_the_field(spec: dict[str, Any], said: str) -> None:
    with pytest.raises(JobFileError) as err:
        parse_job(doc(**spec))
    assert said in str(err.value)
