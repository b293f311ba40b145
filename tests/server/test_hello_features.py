"""Hello.features (agent.proto): the optional parts of the contract an agent implements. Bounded; names the
federator does not know are ignored, so an agent may list what only a newer federator uses."""

from __future__ import annotations

import pytest

from federator.api.v1 import agent_pb2
from federator.model import AgentFeature
from federator.server.validation import check_hello_fields


def test_known_features_are_read_and_unknown_ones_ignored() -> None:
    assert AgentFeature.parse(["resize", "teleport"]) == {AgentFeature.RESIZE}
    assert AgentFeature.parse([]) == frozenset()


@pytest.mark.parametrize(("features", "problem"), [
    (["resize"], None),
    ([f"f{i}" for i in range(33)], "hello.features: at most 32 names, got 33"),
    ([""], "hello.features[0]: must be 1 to 63 printable characters, got ''"),
    (["resize", "x" * 64], "hello.features[1]: must be 1 to 63 printable characters"),
    (["a\nb"], "hello.features[0]: must be 1 to 63 printable characters"),
], ids=["fine", "too-many", "empty", "too-long", "control-character"])
def test_features_out_of_bounds_are_refused_naming_the_field(features: list[str], problem: str | None) -> None:
    said = check_hello_fields(agent_pb2.Hello(cluster="c", region="r", features=features))
    assert (said is None) if problem is None else (said is not None and said.startswith(problem))
