"""serve, agent and sim take an operator's accelerator catalog; a bad one is refused naming the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from federator.catalog import builtin_catalog, catalog, use_catalog_file
from federator.cli import main


@pytest.mark.parametrize("command", [
    ["serve"], ["agent", "--cluster", "c"], ["sim", "--fleet", "f", "--workload", "w"]], ids=["serve", "agent", "sim"])
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


ILUVATAR_FLEET = """clusters:
  - name: bj-1
    region: north
    nodes:
      - {count: 2, vendor: iluvatar, model: BI-V150, accelerators: 8, cpu: 64, memory: 512Gi}
"""
ILUVATAR_JOB = """apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: on-iluvatar}
spec:
  kind: training
  replicas: 2
  resources: {cpu: "4", iluvatar.ai/gpu: 8}
"""


def test_sim_runs_a_fleet_and_jobs_of_a_vendor_only_the_operators_catalog_knows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cat = tmp_path / "catalog.yaml"
    cat.write_text("vendors:\n  iluvatar:\n    resources: [iluvatar.ai/gpu]\n"
                   "    models:\n      - {name: BI-V150, memoryMiB: 32768}\n")
    fleet, job = tmp_path / "fleet.yaml", tmp_path / "job.yaml"
    fleet.write_text(ILUVATAR_FLEET)
    job.write_text(ILUVATAR_JOB)
    args = ["sim", "--fleet", str(fleet), "--workload", str(job), "--no-progress", "-o", "json"]
    try:
        assert main(args) == 2  # the built-in catalog has no vendor iluvatar
        assert "iluvatar" in capsys.readouterr().err
        assert main([*args, "--accelerator-catalog", str(cat)]) == 0
        out = json.loads(capsys.readouterr().out)
        assert (out["jobs_placed"], out["accelerator_capacity"], out["accelerator_allocated"]) == (1, 16, 16)
    finally:
        use_catalog_file(None)


POLICY = str(Path(__file__).parents[2] / "examples" / "policy.yaml")


@pytest.mark.parametrize("command", [["serve"], ["agent", "--cluster", "c"], ["policy", "check", POLICY]],
    ids=["serve", "agent", "policy-check"])
def test_a_catalog_giving_a_new_vendor_another_vendors_resource_is_refused(
        tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Outside QA, vendors V4: accepted, it made the agent report every nvidia.com/gpu device twice and sent a
    "metax" job to NVIDIA nodes."""
    steal = tmp_path / "catalog.yaml"
    steal.write_text("vendors:\n  metax:\n    resources: [nvidia.com/gpu]\n    defaultModel: MX\n")
    try:
        assert main([*command, "--accelerator-catalog", str(steal)]) == 2
    finally:
        use_catalog_file(None)
    assert f"{steal}:3: vendors.metax.resources[0]: 'nvidia.com/gpu' is nvidia's resource" in capsys.readouterr().err
