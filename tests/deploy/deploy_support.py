"""Paths and helpers of the deploy tests (importable as `deploy_support`)."""

from __future__ import annotations

import yaml

from support import EXAMPLES, ROOT

DEPLOY = ROOT / "deploy"
CHARTS = DEPLOY / "helm"
DASHBOARD = DEPLOY / "grafana" / "federator.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yaml"
FLEET = EXAMPLES / "fleet.yaml"
E2E_QUEUE = "sre-e2e"  # the queue of the job the live federation keeps running


def fleet_clusters() -> list[str]:
    return [c["name"] for c in yaml.safe_load(FLEET.read_text())["clusters"]]

__all__ = ["ALERTS", "ALERTS_TEST", "CHARTS", "DASHBOARD", "DEPLOY", "E2E_QUEUE", "FLEET", "ROOT", "fleet_clusters"]
