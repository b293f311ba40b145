"""Paths and helpers of the deploy tests (importable as `deploy_support`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from support import EXAMPLES, ROOT

DEPLOY = ROOT / "deploy"
CHARTS = DEPLOY / "helm"
DASHBOARD = DEPLOY / "grafana" / "federator.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yaml"
FLEET = EXAMPLES / "fleet.yaml"
METRICS_TOKEN = "deploy-tests-metrics-token"
"""The live federation's `--metrics-token-file` token (the federator's and every agent's): what a scrape sends."""


def metrics_token_file(workdir: Path) -> Path:
    """Where the live federation's processes read their /metrics token, and Prometheus its credentials."""
    return workdir / "metrics-token"


def scrape(url: str) -> str:
    """A /metrics body of the live federation, asked with its token as Prometheus asks."""
    import urllib.request

    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        return str(resp.read().decode())
E2E_QUEUE = "sre-e2e"  # the queue of the job the live federation keeps running


def fleet_clusters() -> list[str]:
    return [c["name"] for c in yaml.safe_load(FLEET.read_text())["clusters"]]

__all__ = ["ALERTS", "ALERTS_TEST", "CHARTS", "DASHBOARD", "DEPLOY", "E2E_QUEUE", "FLEET", "ROOT", "fleet_clusters"]
