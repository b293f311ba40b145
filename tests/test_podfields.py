"""The Kubernetes field names a job's pod template is checked against (federator/podfields.py) are real ones, and
a field the Kubernetes client's models have that the lists lack is one the lists decided about (newer than 1.36),
so that moving the client (and the test bed) to a new Kubernetes shows what the lists should learn."""

from __future__ import annotations

import pytest

from federator import podfields
from federator.podtemplates import key_findings

client = pytest.importorskip("kubernetes.client")

NEWER = {"V1PodSpec": {"evictionResponders"}}
"""Fields of the installed client's models that Kubernetes 1.36 (the test bed's kube-apiserver) does not have."""


@pytest.mark.parametrize(("model", "listed"), [
    ("V1PodTemplateSpec", podfields.TEMPLATE_FIELDS),
    ("V1ObjectMeta", podfields.OBJECT_META_FIELDS),
    ("V1PodSpec", podfields.POD_SPEC_FIELDS),
    ("V1Container", podfields.CONTAINER_FIELDS),
    ("V1EphemeralContainer", podfields.EPHEMERAL_CONTAINER_FIELDS),
])
def test_the_lists_are_the_kubernetes_models_fields(model: str, listed: frozenset[str]) -> None:
    fields = set(getattr(client, model).attribute_map.values())
    assert listed <= fields, sorted(listed - fields)
    assert fields - listed == NEWER.get(model, set()), sorted(fields - listed)


@pytest.mark.parametrize("key", sorted(podfields.POD_SPEC_FIELDS))
def test_no_pod_spec_field_is_taken_for_a_typo_of_another(key: str) -> None:
    """Every listed field passes: neither refused as a typo of a neighbour (hostIPC, hostPID) nor warned of."""
    assert key_findings({"spec": {key: None}}, "t") == ([], [])


@pytest.mark.parametrize(("key", "warned"), [
    ("evictionResponders", True),  # a 1.37 field: warned, not refused
    ("os", False),
    ("ip", True),  # too short to call a typo of `os`
    ("hostIPD", False),  # a typo of hostIPC
])
def test_short_and_newer_keys(key: str, warned: bool) -> None:
    problems, warnings = key_findings({"spec": {"containers": [{"name": "a", "image": "b"}], key: None}}, "t")
    if key in podfields.POD_SPEC_FIELDS:
        assert (problems, warnings) == ([], [])
    else:
        assert bool(warnings) is warned and bool(problems) is not warned, (problems, warnings)
