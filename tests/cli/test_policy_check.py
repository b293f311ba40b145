"""`federator policy check FILE` (cli/policy.py), and a real `federator serve --policy` taking a changed policy
file by polling and by SIGHUP (server/policy_file.py) with no restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from federator.cli import main
from federator.local import LocalFederation

from support import eventually, scraped

POLICY = """
tenancy: {admins: {users: [anonymous]}}
queues:
  org-a: {maxPriority: 100, access: {users: [alice]}}
  org-b: {weight: 2, access: {groups: [org-b]}}
"""


def test_a_valid_policy_is_summed_up_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    assert main(["policy", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: valid" in out
    assert "queues: 2 declared (org-a, org-b)" in out
    assert "2 queues with an access list" in out and "admins: anonymous" in out


def test_every_problem_is_named_by_field_and_exits_1_having_opened_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Both parts of the policy are checked (the scheduler's and the tenancy), all problems at once, and nothing
    is written where it runs: no store, no lock, no log."""
    path = tmp_path / "policy.yaml"
    path.write_text("queues:\n  org-a: {weight: heavy, quota: {accelerators: {H1000: 8}}, access: {users: bob}}\n"
                    "  org-b: {wieght: 2}\n")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["policy", "check", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{path}: invalid: 4 problems"
    for field in ("queues.org-a.weight", "queues.org-a.quota.accelerators.H1000", "queues.org-a.access.users",
                  "queues.org-b.wieght"):
        assert any(line.strip().startswith(f"{field}:") for line in err[1:]), (field, err)
    assert list(work.iterdir()) == []


def test_a_quota_model_of_the_operators_catalog_passes_with_the_catalog_serve_is_given(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from federator.catalog import use_catalog_file
    path = tmp_path / "policy.yaml"
    path.write_text("queues: {org-a: {quota: {accelerators: {NVIDIA-X900-ACME: 8}}}}\n")
    assert main(["policy", "check", str(path)]) == 1  # the built-in catalog does not know it
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("vendors:\n  nvidia:\n    resources: [nvidia.com/gpu]\n    models:\n"
                       "      - {name: NVIDIA-X900-ACME}\n")
    try:
        code = main(["policy", "check", str(path), "--accelerator-catalog", str(catalog)])
    finally:
        use_catalog_file(None)
    assert code == 0, capsys.readouterr().err


def test_a_missing_file_and_a_small_pending_cap_are_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(tmp_path / "nope.yaml")]) == 1
    assert "file: No such file or directory" in capsys.readouterr().err
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    assert main(["policy", "check", str(path), "--max-pending-jobs", "20"]) == 0
    assert "warning: --max-pending-jobs 20 is below ten times the 2 declared queues" in capsys.readouterr().err


JOB = """apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: urgent}
spec: {kind: training, queue: org-a, priority: 500, resources: {cpu: "1"}}
"""


def _submit(fed: LocalFederation, job: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", "submit", "-f", str(job), *fed.client_args()],
                          capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.e2e
def _swap(path: Path, text: str) -> None:
    """Replace the file whole, as a ConfigMap volume's update does: the federator's poll never reads it half
    written (a truncated file read between write_text's truncate and its write was refused, a flaky count)."""
    tmp = path.with_suffix(".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_a_running_federator_takes_a_changed_policy_file_without_a_restart(tmp_path: Path) -> None:
    """The file changed on disk is taken by the poll (a ConfigMap volume is swapped under the process, and no one
    sends a SIGHUP); a broken one, sent SIGHUP, is refused, counted and named in the log, and the federator keeps
    serving on the last good policy."""
    policy, job = tmp_path / "policy.yaml", tmp_path / "job.yaml"
    policy.write_text(POLICY)
    job.write_text(JOB)
    fed = LocalFederation(workdir=tmp_path / "fed", tls=False,
                          serve_args=["--policy", str(policy), "--trust-poll-seconds", "0.2"])
    log = fed.workdir / "federator.log"
    try:
        fed.start_server()
        assert fed.server is not None
        out = _submit(fed, job)
        assert out.returncode != 0 and "maxPriority" in out.stderr, out
        _swap(policy, POLICY.replace("maxPriority: 100", "maxPriority: 1000"))
        eventually(lambda: scraped(fed.metrics_url, "federator_policy_reload_total", result="ok") == 1,
                   what="the poll took the new file")
        out = _submit(fed, job)
        assert out.returncode == 0, out
        assert "changed queue org-a" in log.read_text()

        _swap(policy, POLICY.replace("weight: 2", "weight: heavy"))
        fed.server.popen.send_signal(signal.SIGHUP)
        # the poll may see the change before the signal does, or not at all: one refusal, or two
        eventually(lambda: scraped(fed.metrics_url, "federator_policy_reload_total", result="refused") >= 1,
                   what="the broken file refused")
        assert scraped(fed.metrics_url, "federator_policy_reload_total", result="ok") == 1
        assert scraped(fed.metrics_url, "federator_policy_reload_failing") == 1
        refused = [line for line in log.read_text().splitlines() if "policy file refused" in line]
        assert refused and all("queues.org-b.weight" in line for line in refused), refused
        assert fed.server.alive()
    finally:
        fed.stop()
