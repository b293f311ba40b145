"""spec.clusters in a job file: read, checked naming each bad field, written back, stored, on the wire (the gRPC
spec and the FederatedJob CRD's schema)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.api import convert
from federator.api.convert import WireError
from federator.api.v1 import types_pb2
from federator.jobfile import JobFileError, parse_job
from federator.jobfile_affinity import (
    EXPRESSION_KEYS,
    KEYS,
    MAX_CLUSTER_NAMES,
    MAX_SELECTOR_TERMS,
    MAX_SELECTOR_VALUES,
    SELECTOR_KEYS,
)
from federator.jobfile_writing import spec_to_document
from federator.model import ClusterAffinity, Job, JobId, LabelOperator, LabelRequirement
from federator.server.errors import proto_field
from federator.store.codec import job_from_dict, job_to_dict

ROOT = Path(__file__).resolve().parents[1]
PROVIDER = "federator.io/provider"


def doc(clusters: Any) -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "records"},
            "spec": {"kind": "training", "resources": {"cpu": "1"}, "clusters": clusters}}


FULL = {"names": ["oregon-1", "gcp-1", "oregon-1"],
        "selector": {"matchLabels": {PROVIDER: "oregon-dc"},
                     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold", "silver"]},
                                          {"key": "spot", "operator": "DoesNotExist"}]}}


def test_clusters_are_read_written_stored_and_sent() -> None:
    spec = parse_job(doc(FULL))
    assert spec.clusters == ClusterAffinity(
        names=("oregon-1", "gcp-1"), match_labels=((PROVIDER, "oregon-dc"),),
        match_expressions=(LabelRequirement("tier", LabelOperator.IN, ("gold", "silver")),
                           LabelRequirement("spot", LabelOperator.DOES_NOT_EXIST)))
    assert spec_to_document(spec)["spec"]["clusters"] == {**FULL, "names": ["oregon-1", "gcp-1"]}
    assert parse_job(spec_to_document(spec)) == spec
    assert convert.spec_from_pb(convert.spec_to_pb(spec)) == spec
    stored = job_from_dict(job_to_dict(Job(JobId("records-1"), spec, submitted_at=1.0)))
    assert stored.spec.clusters == spec.clusters


@pytest.mark.parametrize("empty", [None, {}, {"names": []}, {"selector": {}}, {"selector": {"matchLabels": {}}}])
def test_an_empty_field_bounds_nothing_and_is_not_written(empty: Any) -> None:
    spec = parse_job(doc(empty))
    assert not spec.clusters.bounds
    assert "clusters" not in spec_to_document(spec)["spec"]
    assert not convert.spec_to_pb(spec).HasField("clusters")  # what tells a client an old server dropped it
    assert "clusters" not in job_to_dict(Job(JobId("j"), spec, submitted_at=1.0))["spec"]


def _many(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


@pytest.mark.parametrize(("clusters", "said"), [
    ("oregon-1", "spec.clusters: must be a mapping (names, selector), got 'oregon-1'"),
    ({"name": ["a"]}, "spec.clusters.name: is not a known field (known: names, sameAs, selector)"),
    ({"names": "a"}, "spec.clusters.names: must be a list of cluster names, got 'a'"),
    # new60b N2 and N3: an empty sameAs was taken as none (the CRD refuses it); a bad item was blamed on the list
    ({"sameAs": []}, "spec.clusters.sameAs: must name 1 to 16 jobs (leave it out to share a cluster with none)"),
    ({"sameAs": ["learner", 123]}, "spec.clusters.sameAs[1]: must be a job id, namespace/name or name, got 123"),
    ({"sameAs": "learner"}, "spec.clusters.sameAs: must be a list of job ids or names, got 'learner'"),
    ({"names": ["a", "West_1"]}, "spec.clusters.names[1]: must be a cluster name"),
    ({"names": _many(MAX_CLUSTER_NAMES + 1)}, f"spec.clusters.names: at most {MAX_CLUSTER_NAMES} clusters, got 65"),
    ({"selector": ["a"]}, "spec.clusters.selector: must be a mapping (matchLabels, matchExpressions)"),
    ({"selector": {"labelSelector": {}}}, "spec.clusters.selector.labelSelector: is not a known field"),
    ({"selector": {"matchLabels": ["a"]}}, "spec.clusters.selector.matchLabels: must be a mapping"),
    ({"selector": {"matchLabels": {"bad key!": "v"}}}, "spec.clusters.selector.matchLabels[bad key!]: must be a "
                                                        "label key"),
    ({"selector": {"matchLabels": {"k": 3}}}, "spec.clusters.selector.matchLabels[k]: must be a label value"),
    ({"selector": {"matchLabels": {f"k{i}": "v" for i in range(MAX_SELECTOR_TERMS + 1)}}},
     f"spec.clusters.selector.matchLabels: at most {MAX_SELECTOR_TERMS} labels, got 33"),
    ({"selector": {"matchExpressions": {"key": "k"}}}, "spec.clusters.selector.matchExpressions: must be a list"),
    ({"selector": {"matchExpressions": [{"key": "k", "operator": "Exists"}] * (MAX_SELECTOR_TERMS + 1)}},
     f"spec.clusters.selector.matchExpressions: at most {MAX_SELECTOR_TERMS} expressions"),
    ({"selector": {"matchExpressions": ["k"]}}, "spec.clusters.selector.matchExpressions[0]: must be a mapping"),
    ({"selector": {"matchExpressions": [{"key": "k", "operator": "in", "values": ["a"]}]}},
     "spec.clusters.selector.matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist, got 'in'"),
    ({"selector": {"matchExpressions": [{"operator": "Exists"}]}},
     "spec.clusters.selector.matchExpressions[0].key: must be a label key, got None"),
    ({"selector": {"matchExpressions": [{"key": "k", "operator": "In"}]}},
     "spec.clusters.selector.matchExpressions[0].values: In needs at least one value"),
    ({"selector": {"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["a"]}]}},
     "spec.clusters.selector.matchExpressions[0].values: Exists takes no values"),
    ({"selector": {"matchExpressions": [{"key": "k", "operator": "In", "values": ["a", "b c"]}]}},
     "spec.clusters.selector.matchExpressions[0].values[1]: must be a label value"),
    ({"selector": {"matchExpressions": [{"key": "k", "operator": "In", "values": _many(MAX_SELECTOR_VALUES + 1)}]}},
     "spec.clusters.selector.matchExpressions[0].values: at most 64 label values, got 65"),
    ({"selector": {"matchExpressions": [{"key": "k", "operator": "In", "values": "a"}]}},
     "spec.clusters.selector.matchExpressions[0].values: must be a list of at most 64 label values, got 'a'"),
    ({"selector": {"matchExpressions": [{"key": "k", "operator": "In", "values": ["a"], "value": "a"}]}},
     "spec.clusters.selector.matchExpressions[0].value: is not a known field (known: key, operator, values)"),
])
def test_a_bad_clusters_field_is_refused_naming_the_field(clusters: Any, said: str) -> None:
    with pytest.raises(JobFileError) as err:
        parse_job(doc(clusters))
    assert said in str(err.value)


def test_a_misspelt_clusters_key_is_named_and_a_gRPC_field_path_reads_as_the_proto() -> None:
    with pytest.raises(JobFileError) as err:
        parse_job({**doc(None), "spec": {"kind": "training", "resources": {"cpu": "1"}, "cluster": {}}})
    assert "spec.cluster: is not a known field; did you mean spec.clusters?" in str(err.value)
    assert proto_field("spec.clusters.selector.matchExpressions[0].operator") == \
        "spec.clusters.selector.match_expressions[0].operator"


def test_an_operator_the_wire_does_not_know_is_a_wire_error_naming_it() -> None:
    pb = convert.spec_to_pb(parse_job(doc(FULL)))
    pb.clusters.selector.match_expressions.append(types_pb2.LabelRequirement(key="k", operator="Near"))
    with pytest.raises(WireError, match=r"spec.clusters.selector.matchExpressions\[2\].operator: must be one of"):
        convert.spec_from_pb(pb)


def test_the_crd_schema_holds_the_job_files_clusters() -> None:
    crd = yaml.safe_load((ROOT / "deploy/helm/federator/crds/federatedjobs.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    clusters = spec["properties"]["clusters"]
    assert set(clusters["properties"]) == set(KEYS)
    assert clusters["properties"]["names"]["maxItems"] == MAX_CLUSTER_NAMES
    selector = clusters["properties"]["selector"]["properties"]
    assert set(selector) == set(SELECTOR_KEYS)
    assert selector["matchLabels"]["maxProperties"] == MAX_SELECTOR_TERMS
    assert selector["matchExpressions"]["maxItems"] == MAX_SELECTOR_TERMS
    item = selector["matchExpressions"]["items"]["properties"]
    assert set(item) == set(EXPRESSION_KEYS)
    assert item["operator"]["enum"] == [o.value for o in LabelOperator]
    assert item["values"]["maxItems"] == MAX_SELECTOR_VALUES
    assert any("self.spec.clusters == oldSelf.spec.clusters" in r["rule"]
               for r in crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"])


@pytest.mark.parametrize("field", ["clusters", "failurePolicy"])
def test_a_long_bad_value_is_cut_and_its_size_said_as_every_field_does(field: str) -> None:
    """spec.clusters and spec.failurePolicy cut a bad value with termtext.shown, as the job file's other fields do:
    each had a copy of its own that cut it at 77 characters and said nothing of its size (review60 R4)."""
    spec = {**doc(None)["spec"], field: "x" * 300}
    with pytest.raises(JobFileError) as err:
        parse_job({**doc(None), "spec": spec})
    assert f"spec.{field}: must be a mapping" in str(err.value) and "... (300 characters)" in str(err.value)
