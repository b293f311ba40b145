"""Any JSON value at a workload's `spec`, or at any node below it, is refused naming the field or accepted, for every
supported kind: never another exception (outside fuzz QA F4: `"spec": 5` on a RayJob, JobSet, LeaderWorkerSet,
PyTorchJob or TrainJob answered UNKNOWN with an AttributeError traceback, and a client following the retry rules
retried it).

Two layers, both checked: each kind's adapter (what the federator and the agent read the object with) raises only
WorkloadError, which names the field; and `parse_job` (what Submit runs) raises only JobFileError."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federator.backends.kube.workloads.common import WorkloadError
from federator.backends.kube.workloads.registry import adapter_for
from federator.jobfile import JobFileError, parse_job

from workload_objects import ALL, fresh

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
"""Any JSON value: what a hostile or mistaken client may put at a node."""


def nodes(obj: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every path under `spec` in `obj` (spec itself included)."""
    if path and path[0] == "spec":
        yield path
    if isinstance(obj, dict):
        for key, value in obj.items():
            if path or key == "spec":
                yield from nodes(value, (*path, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from nodes(value, (*path, i))


def replaced(obj: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def read(obj: dict[str, Any]) -> None:
    """What the federator reads of a workload, as jobfile._workload does, through the kind's adapter."""
    adapter = adapter_for(obj)
    adapter.pod_sets(obj)
    adapter.group_size(obj)
    adapter.check_names(obj)


def submitted(obj: dict[str, Any]) -> None:
    parse_job(json.loads(json.dumps({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                     "metadata": {"name": "w"}, "spec": {"workload": obj}})))


KINDS = sorted(ALL)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", [5, "x", [{}], [], None, True, 1.5])
def test_a_spec_that_is_not_an_object_is_refused_naming_spec(kind: str, value: object) -> None:
    obj = fresh(kind)
    obj["spec"] = value
    with pytest.raises(WorkloadError) as err:
        read(obj)
    assert err.value.field.startswith("spec"), err.value
    with pytest.raises(JobFileError) as refused:
        submitted(obj)
    assert any(p.field.startswith("spec.workload.spec") for p in refused.value.problems), refused.value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), data=st.data(), value=json_values)
def test_any_json_at_any_node_under_spec_is_refused_naming_a_field_or_accepted(
        kind: str, data: st.DataObject, value: object) -> None:
    base = fresh(kind)
    path = data.draw(st.sampled_from(list(nodes(base))), label="path")
    obj = replaced(base, path, value)
    try:
        read(obj)
    except WorkloadError as exc:
        assert exc.field or exc.problem, exc  # named
    try:
        submitted(obj)
    except JobFileError as exc:
        assert all(p.field for p in exc.problems), exc
