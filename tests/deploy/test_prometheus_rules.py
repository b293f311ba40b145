"""deploy/prometheus/alerts.yaml: valid for Prometheus, unit-tested with promtool, every alert documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import ALERTS, ALERTS_TEST

from federator.model import ReasonCode

from support import ROOT

OPERATORS_DOC = ROOT / "docs" / "operators.md"

ISSUE_ALERTS = {  # what an SRE was promised: one alert per failure the federator can see
    "FederatorAgentDisconnected", "FederatorAgentReportsStale", "FederatorJobsPendingTooLong",
    "FederatorSchedulingCycleSlow", "FederatorClusterAllocationSkewed",
    "FederatorAgentCannotReachFederator",  # the agent's side of a partition, from its own /metrics
    "FederatorSubmitsRefusedQueueFull",  # a queue at its maxPendingJobs (or the federator at its limit)
}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _run(cmd: list[str | Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules(promtool: Path) -> None:
    proc = _run([promtool, "check", "rules", ALERTS])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in proc.stdout


def test_promtool_unit_tests_pass(promtool: Path) -> None:
    proc = _run([promtool, "test", "rules", ALERTS_TEST])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_a_broken_expectation_fails_promtool(promtool: Path, tmp_path: Path) -> None:
    """The unit tests can fail: flip one expected label and promtool must say FAILED."""
    (tmp_path / "alerts.yaml").write_text(ALERTS.read_text())
    broken = ALERTS_TEST.read_text().replace("{severity: warning, cluster: east-1, region: east}",
                                             "{severity: warning, cluster: west-1, region: west}", 1)
    assert broken != ALERTS_TEST.read_text()
    (tmp_path / "alerts_test.yaml").write_text(broken)
    proc = _run([promtool, "test", "rules", tmp_path / "alerts_test.yaml"])
    assert proc.returncode != 0
    assert "FAILED" in proc.stdout + proc.stderr


def test_the_issue_alerts_exist() -> None:
    assert ISSUE_ALERTS <= {a["alert"] for a in _alerts()}


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_every_alert_has_severity_and_runbook_text(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in {"critical", "warning", "info"}
    notes = alert["annotations"]
    for key in ("summary", "description", "runbook"):
        assert notes.get(key, "").strip(), f"{alert['alert']}: annotation {key!r} is missing"


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_every_alert_is_seen_firing_in_a_unit_test(alert: dict[str, Any]) -> None:
    doc = yaml.safe_load(ALERTS_TEST.read_text())
    fired = {case["alertname"] for test in doc["tests"] for case in test.get("alert_rule_test", [])
             if case.get("exp_alerts")}
    assert alert["alert"] in fired, f"{alert['alert']}: no test in {ALERTS_TEST.name} expects it to fire"


def _documented_alerts() -> set[str]:
    """The alert names of the table under '### Alerts' in docs/operators.md."""
    text = OPERATORS_DOC.read_text()
    section = text[text.index("### Alerts"):]
    section = section[:section.index("\n### ", 1)]
    return set(re.findall(r"^\| (Federator\w+) \|", section, flags=re.MULTILINE))


def test_every_alert_is_documented_and_every_documented_alert_exists() -> None:
    assert _documented_alerts() == {a["alert"] for a in _alerts()}


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_the_alerts_a_runbook_points_to_exist(alert: dict[str, Any]) -> None:
    named = set(re.findall(r"\bFederator[A-Z]\w+", " ".join(alert["annotations"].values())))
    assert named <= {a["alert"] for a in _alerts()}, f"{alert['alert']} points to an alert that does not exist"


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_the_docs_a_runbook_points_to_exist(alert: dict[str, Any]) -> None:
    """A runbook's `docs/NAME.md, "Section"` must lead somewhere: the file, and the section as one of its headings."""
    text = " ".join(alert["annotations"].values())
    for path in re.findall(r"\bdocs/[\w-]+\.md", text):
        assert (ROOT / path).is_file(), f"{alert['alert']}: {path} does not exist"
    for path, section in re.findall(r'\b(docs/[\w-]+\.md), "([^"]+)"', text):
        headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text(), flags=re.MULTILINE)
        assert section in headings, f"{alert['alert']}: {path} has no section {section!r}"


def test_the_pending_runbook_says_what_each_reason_needs() -> None:
    """FederatorJobsPendingTooLong fires per reason code: its runbook must cover every code a job can wait with."""
    (alert,) = [a for a in _alerts() if a["alert"] == "FederatorJobsPendingTooLong"]
    runbook = alert["annotations"]["runbook"]
    assert [code.value for code in ReasonCode if not re.search(rf"\b{code.value}\b", runbook)] == []
