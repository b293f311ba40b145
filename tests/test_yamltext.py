"""The operators' YAML files (policy, fleet, trust, tenancy, a member's scheduler configuration) are read
with the job files' bounds: an alias bomb of a few hundred bytes is refused naming the problem, before it
is built, instead of taking the process's memory; a key given twice is named, not silently dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.backends.kube.scheduler_config import check_scheduler_config
from federator.backends.sim.fleet import FleetError, load_fleet
from federator.scheduler.policy import PolicyError, load_policy
from federator.security.authz import TenancyError, load_tenancy
from federator.yamltext import YamlShapeError, load_one

# Nine levels of nine aliases: 9**9 (387 million) values once built, from 400 bytes.
BOMB = "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['lol'] * 9)}]\n"
               for p, n in zip(["", *"abcdefgh"], "abcdefghi", strict=True))


def test_load_one_refuses_a_bomb_a_repeat_and_a_recursive_alias_before_building_them() -> None:
    for text, problem in [(BOMB, "comes to more than 1000000 values, counting each alias"),
                          ("a: 1\nb: 2\na: 3\n", "key 'a' is given twice in one mapping (lines 1 and 3)"),
                          ("x: &a [*a]\n", "refers to a node that contains it"),
                          ("[" * 70 + "]" * 70, "nested more than 64 levels deep")]:
        with pytest.raises(YamlShapeError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            load_one(text)


def test_load_one_reads_what_safe_load_reads() -> None:
    text = "base: &b {cpu: 1}\nclusters: [{name: a, <<: *b}, {name: b, <<: *b}]\n"
    assert load_one(text) == {"base": {"cpu": 1}, "clusters": [{"name": "a", "cpu": 1}, {"name": "b", "cpu": 1}]}
    assert load_one("") is None
    assert load_one("# nothing\n") is None


@pytest.mark.parametrize("reader", ["policy", "fleet", "tenancy"])
def test_an_operator_file_that_is_an_alias_bomb_is_refused_naming_the_file(reader: str, tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    error: type[Exception] = {"policy": PolicyError, "fleet": FleetError, "tenancy": TenancyError}[reader]
    with pytest.raises(error) as caught:
        {"policy": load_policy, "fleet": load_fleet, "tenancy": load_tenancy}[reader](path)  # type: ignore[operator]
    assert "comes to more than 1000000 values" in str(caught.value)
    assert "bomb.yaml" in str(caught.value)


def test_a_policy_that_gives_a_weight_twice_is_refused_not_read_as_the_last() -> None:
    path_text = "scoreWeights:\n  Fragmentation: 3\n  Fragmentation: 0\n"
    with pytest.raises(PolicyError, match="key 'Fragmentation' is given twice"):
        from federator.scheduler.policy import parse_policy
        parse_policy(path_text, source="policy.yaml")


def test_a_members_scheduler_configuration_that_is_a_bomb_or_too_deep_is_unknown_with_a_reason() -> None:
    """The agent reads this from the member's apiserver; it must not hang or crash on it."""
    bomb = check_scheduler_config(BOMB, source="cm/kube-scheduler")
    assert bomb.scoring == "Unknown" and "comes to more than 1000000 values" in bomb.problems[0]
    deep = check_scheduler_config("a: " + "[" * 5_000 + "]" * 5_000, source="cm/kube-scheduler")
    assert deep.scoring == "Unknown" and deep.problems[0].startswith("cm/kube-scheduler: "), deep.problems


@pytest.mark.parametrize(("text", "where"), [
    ("spec:\n  clusters:\n    names: [" + ", ".join(f"c{i}" for i in range(60)) + "]\n",
     "spec.clusters.names has 60 entries"),
    ("jobs:\n- {}\n- labels: {" + ", ".join(f"k{i}: v" for i in range(30)) + "}\n", "jobs[1].labels has 30 keys"),
    ("[" + ", ".join(str(i) for i in range(60)) + "]\n", "it has 60 entries at its top level"),
], ids=["a-list-in-a-mapping", "a-mapping-in-a-list", "the-top-level"])
def test_a_plain_document_past_the_values_bound_is_told_where_not_blamed_on_aliases(text: str, where: str) -> None:
    """Outside QA N4: a long but valid list (no alias) was refused as "aliases that multiply, a 'billion laughs'?",
    naming no field. A document without an alias is told the bound and where its bulk is; a bomb still hears of
    its aliases."""
    from federator.yamltext import load_documents

    with pytest.raises(YamlShapeError) as got:
        load_documents(text, max_depth=64, max_values=50)
    assert got.value.problem == ("comes to more than 50 values (each key, value and list entry counts), the most a "
                                 f"document may have: {where}")
    assert "alias" not in got.value.problem
    with pytest.raises(YamlShapeError, match="counting each alias"):
        load_documents("a: &a [x, x, x, x, x, x, x, x]\nb: [*a, *a, *a, *a, *a, *a, *a]\n", max_depth=64,
                       max_values=50)
