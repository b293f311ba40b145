"""A quota on a model the accelerator catalog does not know is refused where a policy file enters a process
(`serve --policy`, `sim --policy`), naming the field: it would cap nothing (outside QA, new user F8: `H1000: 64`
silently took research's H100 quota away). A model of the operator's own is declared in the catalog extension."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from federator.catalog import use_catalog_file
from federator.cli import main

from support import EXAMPLES, federator_cli

FIELD = "queues.research.quota.accelerators.H1000: is not an accelerator model the catalog knows (did you mean H100?)"
OWN_CATALOG = "vendors:\n  nvidia:\n    resources: [nvidia.com/gpu]\n    models:\n      - {name: NVIDIA-X900-ACME}\n"


def _misspelled(tmp_path: Path) -> Path:
    text = (EXAMPLES / "policy.yaml").read_text()
    assert "H100: 64" in text
    policy = tmp_path / "policy.yaml"
    policy.write_text(text.replace("H100: 64", "H1000: 64"))
    return policy


def test_serve_refuses_a_policy_whose_quota_names_an_unknown_model(tmp_path: Path) -> None:
    policy = _misspelled(tmp_path)
    out = federator_cli("serve", "--insecure", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                        "--db", str(tmp_path / "f.db"), "--policy", str(policy))
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    (line,) = [x for x in out.stderr.splitlines() if "--policy" in x]
    assert f"--policy: {policy}: {FIELD}" in line


def test_sim_refuses_it_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sim", "--fleet", str(EXAMPLES / "fleet.yaml"), "--workload", str(EXAMPLES / "jobs"),
               "--policy", str(_misspelled(tmp_path)), "--no-progress"])
    assert rc == 2
    assert FIELD in capsys.readouterr().err


def test_the_old_field_name_and_default_queue_are_checked_too(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("queues:\n  a: {quota: {gpus: {A1000: 8}}}\ndefaultQueue: {quota: {accelerators: {Foo: 1}}}\n")
    rc = main(["sim", "--fleet", str(EXAMPLES / "fleet.yaml"), "--workload", str(EXAMPLES / "jobs"),
               "--policy", str(policy), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "queues.a.quota.gpus.A1000: is not an accelerator model the catalog knows (did you mean A100?)" in err
    assert "defaultQueue.quota.accelerators.Foo: is not an accelerator model the catalog knows (known: " in err


def test_a_model_declared_in_the_catalog_extension_may_have_a_quota(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("queues:\n  research: {quota: {accelerators: {X900: 8, H100: 64}}}\n")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(OWN_CATALOG)
    args = ["sim", "--fleet", str(EXAMPLES / "fleet.yaml"), "--workload", str(EXAMPLES / "jobs"),
            "--policy", str(policy), "--no-progress", "-o", "json"]
    assert main(args) == 2  # the built-in catalog does not know X900
    assert "queues.research.quota.accelerators.X900: is not an accelerator model" in capsys.readouterr().err
    try:
        assert main([*args, "--accelerator-catalog", str(catalog)]) == 0
    finally:
        use_catalog_file(None)  # the process's catalog, which sim extended, as other tests expect it
    assert json.loads(capsys.readouterr().out)["jobs_total"] == 5
