"""The federator-agent chart serves the agent's endpoint: a metrics port, probes on /healthz and /readyz, a PodMonitor.

The paths and the flag are the agent's own (agent/endpoint.py, `federator agent
--metrics-listen`): the flag is parsed by the federator's CLI parser here, and
the paths are asked of a real agent in tests/agent/test_agent_endpoint_e2e.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helm_support import AGENT, AGENT_CI_VALUES, NAMESPACE, Helm, containers, one

from federator.agent.endpoint import parse_listen
from federator.cli import build_parser


@pytest.fixture(scope="module")
def h(helm: Path) -> Helm:
    return Helm(helm)


def _agent(h: Helm, *args: str) -> list[dict[str, Any]]:
    return h.template(AGENT, "-f", AGENT_CI_VALUES, *args)


def test_defaults_serve_the_endpoint_and_probe_it(h: Helm) -> None:
    [c] = containers(_agent(h))
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 9102}
    parsed = build_parser().parse_args(c["args"])
    assert parse_listen(parsed.metrics_listen) == ("0.0.0.0", 9102)
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["readinessProbe"]["periodSeconds"] == 5 and c["livenessProbe"]["failureThreshold"] == 3


def test_the_port_moves_the_flag_and_the_container_port_together(h: Helm) -> None:
    [c] = containers(_agent(h, "--set", "metrics.port=9200", "--set", "probes.readiness.periodSeconds=15"))
    assert "--metrics-listen=0.0.0.0:9200" in c["args"]
    assert c["ports"] == [{"name": "metrics", "containerPort": 9200, "protocol": "TCP"}]
    assert c["readinessProbe"]["periodSeconds"] == 15


@pytest.mark.parametrize("probe", ["liveness", "readiness"])
def test_a_probe_can_be_turned_off(h: Helm, probe: str) -> None:
    [c] = containers(_agent(h, "--set", f"probes.{probe}.enabled=false"))
    assert f"{probe}Probe" not in c
    assert "--metrics-listen=0.0.0.0:9102" in c["args"]  # the endpoint stays: Prometheus still scrapes it


def test_no_pod_monitor_by_default(h: Helm) -> None:
    assert [d for d in _agent(h) if d["kind"] == "PodMonitor"] == []


def test_pod_monitor_scrapes_the_agents_metrics_port(h: Helm) -> None:
    docs = _agent(h, "--set", "podMonitor.enabled=true", "--set", "podMonitor.labels.release=prom",
                  "--set", "podMonitor.interval=15s")
    monitor = one(docs, "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint == {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert endpoint["port"] in {p["name"] for p in containers(docs)[0]["ports"]}


@pytest.mark.parametrize(("args", "field"), [
    pytest.param(["--set", "metrics.port=0"], "/metrics/port", id="port-zero"),
    pytest.param(["--set", "metrics.port=70000"], "/metrics/port", id="port-out-of-range"),
    pytest.param(["--set", "probes.readiness.periodSeconds=0"], "/probes/readiness/periodSeconds",
                 id="probe-period"),
    pytest.param(["--set", "probes.startup.enabled=true"], "startup", id="no-startup-probe"),
    pytest.param(["--set", "podMonitor.interval=often"], "/podMonitor/interval", id="scrape-interval"),
    pytest.param(["--set", "serviceMonitor.enabled=true"], "serviceMonitor", id="no-service-to-monitor"),
])
def test_bad_endpoint_values_are_refused_naming_the_field(h: Helm, args: list[str], field: str) -> None:
    assert field in h.template_error(AGENT, "-f", AGENT_CI_VALUES, *args)
