"""A preferred or users' region no member cluster is in is said at submit (outside QA, inference F8: `wset` for
`west` was accepted without a word and the job placed as if it named no region), and the CRD takes as many
preferred regions as the job file does (the README said 64, the CRD allowed 32)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml
from server_support import Clock, MemoryStore, join, make

from federator.jobfile import MAX_PREFERRED_REGIONS, parse_job

CRD = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "federator" / "crds" / "federatedjobs.yaml"


def _inference(regions: dict[str, object]) -> object:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "chat"},
                      "spec": {"kind": "inference", "replicas": 2, "resources": {"cpu": "1"}, "regions": regions}})


def test_a_region_no_member_is_in_is_a_warning_naming_the_field_and_the_regions_there_are() -> None:
    fed = make(MemoryStore(), Clock())
    join(fed, "east-1", region="east")
    join(fed, "west-1", region="west")
    said = fed.intake.warnings(_inference({"preferred": ["west", "wset"], "user": "esat"}))  # type: ignore[arg-type]
    assert said == ["spec.regions.preferred[1]: no member cluster is in region 'wset' (regions: east, west); "
                    "check the name",
                    "spec.regions.user: no member cluster is in region 'esat' (regions: east, west); check the name"]
    assert fed.intake.warnings(_inference({"preferred": ["west"], "user": "east"})) == []  # type: ignore[arg-type]
    # users in a region with no cluster of its own, which the policy's latencies know: nothing to say
    fed.set_scheduler_config(replace(fed.scheduler.config, region_latency_ms={("tibet", "west"): 40}))
    assert fed.intake.warnings(_inference({"user": "tibet"})) == []  # type: ignore[arg-type]


def test_the_crd_takes_as_many_preferred_regions_as_a_job_file() -> None:
    doc = yaml.safe_load(CRD.read_text())
    spec = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["regions"]["properties"]["preferred"]["maxItems"] == MAX_PREFERRED_REGIONS
