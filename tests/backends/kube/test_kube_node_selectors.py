"""A workload whose nodeSelector or required node affinity no node of the member matches is refused at launch
(backends/kube/node_selectors.py). Outside QA (ML user, F3): such a job was sent where no node had its InfiniBand
label and sat unschedulable through the gang timeout; on a Kueue member it stayed Placed, holding quota, for ever."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
from test_kube_backend import SPEC, FakeApi, backend, placement

from federator.backends.kube.node_selectors import no_node_for


def node(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


NODES = [node("a", zone="z1", ib="true"), node("b", zone="z2")]


@pytest.mark.parametrize(("spec", "refused"), [
    ({}, ""),
    ({"nodeSelector": {"ib": "true"}}, ""),
    ({"nodeSelector": {"ib": "true", "zone": "z2"}}, "t.spec.nodeSelector: no node of this cluster has the labels "
                                                    "ib=true, zone=z2"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z3"]}]},
        {"matchExpressions": [{"key": "ib", "operator": "Exists"}]}]}}}}, ""),  # the second term matches a
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z1", "z2"]}]}]}}}},
     "t.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: no node of this cluster "
     "matches it (with the nodeSelector)"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpus", "operator": "Gt", "values": ["4"]}]}]}}}}, ""),  # not judged: matches
], ids=["none", "selector-matches", "selector-matches-no-node", "affinity-term-matches", "affinity-matches-none",
        "gt-not-judged"])
def test_a_selector_or_affinity_no_node_has_is_named(spec: dict[str, Any], refused: str) -> None:
    assert no_node_for(spec, NODES, "t") == refused


def test_a_launch_whose_selector_no_node_has_is_refused_at_once_and_nothing_is_created() -> None:
    api = FakeApi()
    b, _ = backend(api)
    b.nodes.cache.update({"a": node("a", zone="z1"), "b": node("b", zone="z2")})
    ib = replace(SPEC, pod_template_json=json.dumps({"spec": {"nodeSelector": {"example.com/ib": "true"},
                                                             "containers": [{"name": "t", "image": "x"}]}}))
    why = asyncio.run(b.launch(placement(), ib))
    assert why == ("spec.template.spec.nodeSelector: no node of this cluster has the labels example.com/ib=true: "
                   "the job cannot run on this member")
    assert api.created == []
    b.nodes.cache["c"] = node("c", **{"example.com/ib": "true"})
    assert asyncio.run(b.launch(placement(), ib)) is None  # a node has it now: launched
