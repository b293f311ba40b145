"""A quota's model name is checked against the accelerator catalog (outside QA, new user F8): a typo would cap
nothing, so it is refused with the nearest name, or the models the catalog knows (a bounded list)."""

from __future__ import annotations

import pytest

from federator.catalog import builtin_catalog, parse_catalog_text
from federator.catalog.model_names import LISTED, quota_model_problem


@pytest.mark.parametrize("name", ["H100", "h100", "A100", "NVIDIA-H100-80GB-HBM3", "Ascend910B", "Ascend910B3",
                                  "MI300X", "Gaudi3"])
def test_a_name_that_selects_a_catalog_model_is_known(name: str) -> None:
    assert quota_model_problem(name, builtin_catalog()) is None


@pytest.mark.parametrize(("name", "meant"), [
    ("H1000", "H100"),
    ("A1000", "A100"),
    ("Ascend910X", "Ascend910B"),
    ("MI300", "MI300X"),
])
def test_a_misspelled_name_is_refused_with_the_nearest_one(name: str, meant: str) -> None:
    said = quota_model_problem(name, builtin_catalog())
    assert said is not None and f"(did you mean {meant}?)" in said
    assert "--accelerator-catalog" in said  # where a model of the operator's own goes


def test_a_name_near_nothing_lists_a_bounded_number_of_known_models() -> None:
    said = quota_model_problem("Quantum", builtin_catalog())
    assert said is not None and "known: " in said
    listed = said.split("known: ", 1)[1].split(")", 1)[0]
    names = listed.split(", and ")[0].split(", ")
    assert len(names) == LISTED and "Ascend910B" in names
    assert listed.endswith("more")


def test_a_model_of_the_operators_catalog_extension_is_known() -> None:
    extended = builtin_catalog().merged(parse_catalog_text(
        "vendors:\n  nvidia:\n    resources: [nvidia.com/gpu]\n"
        "    models:\n      - {name: NVIDIA-X900-ACME, memoryMiB: 183359}\n"))
    assert quota_model_problem("X900", builtin_catalog()) is not None
    assert quota_model_problem("X900", extended) is None


def test_the_models_a_national_fleet_runs_today_are_in_the_built_in_catalog() -> None:
    """A quota on a model the catalog lacks stops `serve` at start; the models operators name today must be known
    without an extension (B200 was not, and neither were China's H20, L20 and A800)."""
    for model in ("B200", "GB200", "H20", "L20", "A800", "L4", "L40", "A30", "A40", "MI325X", "MI355X"):
        assert quota_model_problem(model, builtin_catalog()) is None, model
