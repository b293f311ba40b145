"""spec.minReplicas in a job file (jobfile_elastic.py, model/elastic.py), and what a placed elastic gang says."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from federator.api import convert
from federator.jobfile import JobFileError, parse_job
from federator.jobfile_writing import spec_to_document
from federator.model import Job, JobId, JobPhase, Placement, PlacementId, shortfall
from federator.scheduler import PlacementRequest, Scheduler, Snapshot
from federator.store.codec import job_from_dict, job_to_dict

from builders import cluster, pool
from workload_objects import jobset, pytorchjob

H100 = "NVIDIA-H100-80GB-HBM3"


def doc(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "ft"},
            "spec": {"kind": "training", "replicas": 4, "resources": {"cpu": "1", "nvidia.com/gpu": 8}, **spec}}


def problems(**spec: Any) -> dict[str, str]:
    with pytest.raises(JobFileError) as err:
        parse_job(doc(**spec))
    return {p.field: p.problem for p in err.value.problems}


def test_a_minimum_is_kept_through_the_wire_the_store_and_the_written_file() -> None:
    spec = parse_job(doc(minReplicas=2))
    assert (spec.min_replicas, spec.elastic) == (2, True)
    assert convert.spec_from_pb(convert.spec_to_pb(spec)) == spec
    assert parse_job(spec_to_document(spec)) == spec  # what the server checks a Submit's spec by
    job = Job(JobId("ft-1"), spec, 0.0)
    assert job_from_dict(json.loads(json.dumps(job_to_dict(job)))).spec.min_replicas == 2
    assert parse_job(doc()).min_replicas == 0  # absent: not elastic, as every job before 0.21.0
    assert parse_job(doc(minReplicas=4)).min_replicas == 0  # the whole gang: no elasticity, stored as none


@pytest.mark.parametrize(("spec", "said"), [
    ({"minReplicas": 5}, "is 5, above spec.replicas (4)"),
    ({"minReplicas": 0}, "must be a whole number from 1 to spec.replicas (4)"),
    ({"minReplicas": "2"}, "must be a whole number from 1 to spec.replicas (4), got '2'"),
    ({"minReplicas": True}, "must be a whole number from 1 to spec.replicas (4), got true"),
    ({"minReplicas": 1, "kind": "inference"}, "applies to training jobs only"),
], ids=["above-replicas", "zero", "string", "bool", "inference"])
def test_a_bad_minimum_is_named(spec: dict[str, Any], said: str) -> None:
    got = problems(**spec)
    assert said in got.get("spec.minReplicas", ""), got


def test_a_pytorchjob_minimum_comes_from_its_elastic_policy_and_a_written_one_is_refused() -> None:
    obj = pytorchjob()  # Master 1 + Worker 3
    obj["spec"]["elasticPolicy"] = {"minReplicas": 2, "maxReplicas": 3}
    body = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "ddp"},
            "spec": {"workload": obj}}
    spec = parse_job(body)
    assert (spec.replicas, spec.min_replicas) == (4, 3)  # its Master and 2 Workers
    assert parse_job(spec_to_document(spec)) == spec  # derived again, never taken from what a client sent
    with pytest.raises(JobFileError) as err:
        parse_job({**body, "spec": {"workload": obj, "minReplicas": 1}})
    assert "is derived from spec.workload" in str(err.value)
    del obj["spec"]["elasticPolicy"]
    assert parse_job(body).min_replicas == 0


def test_a_gang_placed_below_its_size_says_so_and_owes_nothing() -> None:
    spec = parse_job(doc(minReplicas=2))
    p = Placement(PlacementId("ft-1.g1.a"), JobId("ft-1"), "a", "r", 2, "", generation=1, phase=JobPhase.RUNNING)
    job = Job(JobId("ft-1"), spec, 0.0, phase=JobPhase.RUNNING, placements=[p])
    assert job.replicas_waiting == 0
    assert shortfall(job) == "elastic: 2/4 replicas placed (spec.minReplicas 2); it runs at 2 until it ends"


def test_a_minimum_beside_a_jobset_is_refused_in_words_true_of_a_jobset() -> None:
    """elasticqa63: a JobSet was told its minimum "is derived from spec.workload (a PyTorchJob's ...)": nothing is
    derived from a JobSet; a brought workload other than a PyTorchJob is placed whole."""
    body = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "js"},
            "spec": {"workload": jobset(), "minReplicas": 1}}
    with pytest.raises(JobFileError) as err:
        parse_job(body)
    said = {p.field: p.problem for p in err.value.problems}["spec.minReplicas"]
    assert said.startswith("applies to training jobs without spec.workload (a brought JobSet is placed whole; "
                           "only a PyTorchJob's elasticPolicy.minReplicas makes a brought workload elastic)"), said
    assert "derived" not in said


def test_a_brought_pytorchjob_names_its_elastic_policy_not_a_field_its_user_never_wrote() -> None:
    """elasticqa63: a PyTorchJob's wait reason and placed message named `spec.minReplicas`; its minimum came from
    its elasticPolicy.minReplicas (plus its Master)."""
    obj = pytorchjob()  # Master 1 + Worker 3 (8 H100 each), elasticPolicy.minReplicas 2: a minimum of 3 of 4
    obj["spec"]["elasticPolicy"] = {"minReplicas": 2, "maxReplicas": 3}
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "ddp"},
                      "spec": {"workload": obj, "acceleratorModels": ["H100"]}})
    member = cluster("c", "r", pool(H100, nodes=2, extra={0: 2}))  # 4 nodes, 2 free: room for 2 of its 3
    member = replace(member, capacity=replace(member.capacity, workload_kinds=frozenset({spec.workload_kind})))
    waits = Scheduler().schedule(Snapshot.of([member]), [PlacementRequest(JobId("ddp"), spec, spec.replicas)])
    said = waits.pending[JobId("ddp")].message
    assert said.startswith("not even its minimum (3 of 4 replicas, from its PyTorchJob's elasticPolicy.minReplicas) "
                           "fits in one cluster: "), said
    assert "spec.minReplicas" not in said
    p = Placement(PlacementId("ddp-1.g1.a"), JobId("ddp-1"), "a", "r", 3, "", generation=1, phase=JobPhase.RUNNING)
    job = Job(JobId("ddp-1"), spec, 0.0, phase=JobPhase.RUNNING, placements=[p])
    assert shortfall(job) == ("elastic: 3/4 replicas placed (its minimum 3, from its PyTorchJob's "
                              "elasticPolicy.minReplicas); it runs at 3 until it ends")
