"""serve and agent take an operator's accelerator catalog; a bad one is refused naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.catalog import builtin_catalog, catalog, use_catalog_file
from federator.cli import main


@pytest.mark.parametrize("command", [["serve"], ["agent", "--cluster", "c"]], ids=["serve", "agent"])
def test_a_catalog_file_with_errors_is_refused_naming_the_line(tmp_path: Path, command: list[str],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text("vendors:\n  acme:\n    models: []\n")
    assert main([*command, "--accelerator-catalog", str(bad)]) == 2
    assert f"{bad}:3: vendors.acme.resources: is required" in capsys.readouterr().err


def test_a_good_catalog_file_extends_the_process_catalog(tmp_path: Path) -> None:
    good = tmp_path / "catalog.yaml"
    good.write_text("vendors:\n  iluvatar:\n    resources: [iluvatar.ai/gpu]\n")
    try:
        use_catalog_file(good)
        assert "iluvatar.ai/gpu" in catalog().resource_names and "nvidia.com/gpu" in catalog().resource_names
    finally:
        use_catalog_file(None)
    assert catalog() == builtin_catalog()
