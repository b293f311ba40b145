"""Paths and helpers of the deploy tests (importable as `deploy_support`)."""

from __future__ import annotations

from support import ROOT

DEPLOY = ROOT / "deploy"
CHARTS = DEPLOY / "helm"
DASHBOARD = DEPLOY / "grafana" / "federator.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yaml"

__all__ = ["ALERTS", "ALERTS_TEST", "CHARTS", "DASHBOARD", "DEPLOY", "ROOT"]
