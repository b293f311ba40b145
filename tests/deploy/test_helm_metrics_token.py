"""Both charts' `metricsToken`: the Secret mounted as a directory, `--metrics-token-file` naming its key there, and
the ServiceMonitor / PodMonitor sending the same Secret's key; off (open /metrics, as before) by default.

The flag is parsed by the federator's own CLI parser; what the token does on the wire is in
tests/security/test_metrics_token.py, and a real Prometheus scraping with one in test_prometheus_e2e.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helm_support import AGENT, AGENT_CI_VALUES, FEDERATOR, Helm, containers, one

from federator.cli import build_parser

TOKEN = ["--set", "metricsToken.existingSecret=scrape-token", "--set", "metricsToken.key=bearer"]


@pytest.fixture(scope="module")
def h(helm: Path) -> Helm:
    return Helm(helm)


def _charts(h: Helm, chart: str, *args: str) -> list[dict[str, Any]]:
    if chart == "agent":
        return h.template(AGENT, "-f", AGENT_CI_VALUES, "--set", "podMonitor.enabled=true", *args)
    return h.template(FEDERATOR, "--set", "serviceMonitor.enabled=true", *args)


def _endpoint(docs: list[dict[str, Any]], chart: str) -> dict[str, Any]:
    if chart == "agent":
        [endpoint] = one(docs, "PodMonitor")["spec"]["podMetricsEndpoints"]
    else:
        [endpoint] = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    return dict(endpoint)


@pytest.mark.parametrize("chart", ["federator", "agent"])
def test_the_token_secret_is_the_flags_file_and_the_monitors_credentials(h: Helm, chart: str) -> None:
    docs = _charts(h, chart, *TOKEN)
    [c] = containers(docs)
    parsed = build_parser().parse_args(c["args"])
    assert parsed.metrics_token_file == Path("/etc/federator/metrics-token/bearer")
    mount = next(m for m in c["volumeMounts"] if m["name"] == "metrics-token")
    assert mount == {"name": "metrics-token", "mountPath": "/etc/federator/metrics-token", "readOnly": True}
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert next(v for v in volumes if v["name"] == "metrics-token")["secret"] == {"secretName": "scrape-token"}
    assert _endpoint(docs, chart)["authorization"] == {"type": "Bearer",
                                                       "credentials": {"name": "scrape-token", "key": "bearer"}}
    for probe in ("startupProbe", "livenessProbe"):  # the kubelet sends no token: never /metrics
        assert c.get(probe, {}).get("httpGet", {}).get("path", "/healthz") == "/healthz"


@pytest.mark.parametrize("chart", ["federator", "agent"])
def test_no_token_by_default(h: Helm, chart: str) -> None:
    docs = _charts(h, chart)
    [c] = containers(docs)
    assert build_parser().parse_args(c["args"]).metrics_token_file is None
    assert "metrics-token" not in {m["name"] for m in c["volumeMounts"]}
    assert "authorization" not in _endpoint(docs, chart)


@pytest.mark.parametrize("chart", ["federator", "agent"])
def test_a_key_that_is_no_secret_key_is_refused_naming_the_value(h: Helm, chart: str) -> None:
    path = FEDERATOR if chart == "federator" else AGENT
    extra = [] if chart == "federator" else ["-f", str(AGENT_CI_VALUES)]
    assert "/metricsToken/key" in h.template_error(path, *extra, "--set", "metricsToken.key=a/b")
