"""A real Prometheus scrapes a running federator and its agents: the fleet, a placed job and the alert rules.

Prometheus (Debian's package) listens on loopback only, with a temporary
config and storage, a 1s scrape interval and deploy/prometheus/alerts.yaml
loaded; the federator runs with the simulated agents of examples/fleet.yaml
and one long job (tests/deploy/conftest.py), and every agent's own /metrics
is a target of the `federator-agent` job.
"""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import ALERTS, DASHBOARD, E2E_QUEUE, FLEET, fleet_clusters, metrics_token_file
from promql_support import dashboard_exprs, grafana_to_promql

from federator.local import LocalFederation, free_listen_port

from support import eventually

pytestmark = pytest.mark.e2e


def fleet_gpus(fleet_file: Path) -> int:
    """accelerators in a fleet file: nodes x accelerators per node, over every cluster."""
    doc = yaml.safe_load(fleet_file.read_text())
    return sum(int(n.get("count", 1)) * int(n.get("accelerators", n.get("gpus", 0)))
               for c in doc["clusters"] for n in c["nodes"])


@dataclass
class Prometheus:
    url: str
    log: Path

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as err:  # a bad query answers 400 with the error in the body
            body = json.loads(err.read())
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if len(result) == 1 else None


@pytest.fixture(scope="module")
def prometheus(prometheus_bin: Path, live_federation: LocalFederation,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    workdir = tmp_path_factory.mktemp("prometheus")
    metrics = urllib.parse.urlparse(live_federation.metrics_url)
    # Every /metrics of the live federation asks for a token (--metrics-token-file): Prometheus sends it as the
    # docs and the charts have it, from the same file.
    credentials = {"authorization": {"credentials_file": str(metrics_token_file(live_federation.workdir))}}
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "federator", "metrics_path": metrics.path, **credentials,
                            "static_configs": [{"targets": [metrics.netloc]}]},
                           {"job_name": "federator-agent", "metrics_path": "/metrics", **credentials,
                            "static_configs": [{"targets": [urllib.parse.urlparse(base).netloc for base in
                                                            live_federation.agent_endpoints.values()]}]}],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_listen_port()  # outside the ephemeral range: nothing takes it before Prometheus binds
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(prometheus_bin), f"--config.file={workdir / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                                 "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    prom = Prometheus(f"http://127.0.0.1:{port}", log)

    def ready() -> bool:
        assert proc.poll() is None, f"prometheus exited with {proc.returncode}:\n{log.read_text()}"
        with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=5) as resp:
            return resp.status == 200

    try:
        eventually(ready, timeout=60, what="prometheus to be ready")
        yield prom
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_prometheus_scrapes_the_federator(prometheus: Prometheus) -> None:
    eventually(lambda: prometheus.value('up{job="federator"}') == 1.0, timeout=60, what="the federator target up")


def test_prometheus_scrapes_every_agent(prometheus: Prometheus) -> None:
    n = len(fleet_clusters())
    eventually(lambda: prometheus.value('sum(up{job="federator-agent"})') == n, timeout=60,
               what=f"{n} agent targets up")
    connected = {r["metric"]["cluster"]: float(r["value"][1])
                 for r in prometheus.query('federator_agent_connected{job="federator-agent"}')}
    assert connected == {name: 1.0 for name in fleet_clusters()}
    # The agent that runs the e2e job counted its launch, seen through the dashboard's join on federator_agent_info.
    launched = eventually(lambda: prometheus.query(
        'sum by (cluster) (federator_agent_launches_total{result="ok"} '
        '* on (job, instance) group_left (cluster) federator_agent_info) > 0'), timeout=60,
        what="an agent's ok launch in Prometheus")
    assert {r["metric"]["cluster"] for r in launched} <= set(fleet_clusters())
    assert sum(float(r["value"][1]) for r in launched) >= 1
    assert prometheus.query('ALERTS{alertname="FederatorAgentCannotReachFederator"}') == []
    panel = next(e for t, e in dashboard_exprs(DASHBOARD) if t == "Agent-side connectivity")
    by_cluster = {r["metric"]["cluster"]: float(r["value"][1]) for r in prometheus.query(grafana_to_promql(panel))}
    assert by_cluster == {name: 1.0 for name in fleet_clusters()}


def test_the_fleets_gpus_are_visible(prometheus: Prometheus) -> None:
    want = fleet_gpus(FLEET)
    assert want > 0
    eventually(lambda: prometheus.value('sum(federator_cluster_accelerators{state="total"})') == want, timeout=60,
               what=f"sum(federator_cluster_accelerators{{state='total'}}) == {want}")
    connected = {r["metric"]["cluster"]: float(r["value"][1]) for r in prometheus.query("federator_cluster_connected")}
    assert connected == {name: 1.0 for name in fleet_clusters()}


def test_a_placed_job_is_visible(prometheus: Prometheus) -> None:
    eventually(lambda: prometheus.value(f'sum(federator_jobs{{queue="{E2E_QUEUE}",phase="Running"}})') == 1.0,
               timeout=60, what="the e2e job Running in Prometheus")
    assert (
        prometheus.value(f'federator_queue_accelerators{{queue="{E2E_QUEUE}"}}') == 16.0
    )  # 2 replicas x 8 accelerators
    placed = prometheus.value('sum(federator_placements_total{result="placed"})')
    assert placed is not None and placed >= 1
    latency = prometheus.value(f'sum(federator_job_submit_to_placement_seconds_count{{queue="{E2E_QUEUE}"}})')
    assert latency == 1.0
    calls = prometheus.value('sum(federator_grpc_server_handled_total{grpc_method="Submit",grpc_code="OK"})')
    assert calls is not None and calls >= 1


def test_the_alert_rules_load_and_evaluate(prometheus: Prometheus) -> None:
    want = {r.get("alert") or r["record"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}

    def healthy() -> dict[str, str]:
        rules = {r["name"]: r["health"] for g in prometheus.api("rules")["groups"] for r in g["rules"]}
        return rules if set(rules) == want and set(rules.values()) == {"ok"} else {}

    eventually(healthy, timeout=60, what="every rule loaded and evaluated without error")
    fleet = eventually(lambda: prometheus.value("federator:fleet_accelerator_allocation:ratio"), timeout=60,
                       what="the recording rule's first sample")
    assert 0 < fleet < 1


def test_every_dashboard_query_runs_on_prometheus(prometheus: Prometheus) -> None:
    eventually(lambda: prometheus.value('sum(federator_cluster_accelerators{state="total"})'), timeout=60, what="data")
    for _title, expr in dashboard_exprs(DASHBOARD):
        prometheus.query(grafana_to_promql(expr))  # asserts Prometheus accepts and evaluates it
    by_region = prometheus.query(grafana_to_promql(next(
        e for t, e in dashboard_exprs(DASHBOARD) if t == "Accelerator capacity vs allocation by region")))
    assert {r["metric"]["region"] for r in by_region} == {"east", "central", "west"}


def test_usage_sums_by_region_and_vendor_and_the_accounting_row_follows_the_region_variable(
        prometheus: Prometheus) -> None:
    """Capacity planners QA P9: usage by province needed a join on `cluster` (and a forgotten cluster's lost its
    region), and picking a region left the Accounting row showing the whole network."""
    rows = eventually(lambda: prometheus.query(
        f'sum by (region, vendor) (federator_accelerator_seconds_total{{queue="{E2E_QUEUE}"}})'), timeout=60,
        what="the e2e job's accelerator-seconds by region and vendor")
    ((region, vendor),) = {(r["metric"]["region"], r["metric"]["vendor"]) for r in rows}
    assert region in {"east", "central", "west"} and vendor == "nvidia"
    panel = next(e for t, e in dashboard_exprs(DASHBOARD) if t == "Accelerators in use by queue")

    def in_use(picked: str) -> set[str]:  # a rate: from the counter's second sample on
        got = prometheus.query(grafana_to_promql(panel.replace("$region", picked)))
        return {r["metric"]["queue"] for r in got if float(r["value"][1]) > 0} & {E2E_QUEUE}

    eventually(lambda: in_use(region), timeout=60, what=f"the e2e job in use in the panel with region {region}")
    assert in_use("nowhere") == set()


def test_the_fleet_panel_says_each_vendors_part_and_follows_the_vendor_variable(prometheus: Prometheus) -> None:
    """Vendor QA V9: "Fleet accelerators" added every vendor into one number and the dashboard had no vendor
    variable. On the live fleet its per-vendor values add up to the total, and picking a vendor shows its own."""
    want = fleet_gpus(FLEET)
    total, per_vendor = [e for t, e in dashboard_exprs(DASHBOARD) if t == "Fleet accelerators"][:2]
    eventually(lambda: prometheus.value(grafana_to_promql(total)) == want, timeout=60, what=f"{want} in the panel")
    parts = {r["metric"]["vendor"]: float(r["value"][1]) for r in prometheus.query(grafana_to_promql(per_vendor))}
    assert parts and "" not in parts and sum(parts.values()) == want
    for vendor, n in parts.items():
        assert prometheus.value(grafana_to_promql(total.replace("$vendor", vendor))) == n
    assert prometheus.value(grafana_to_promql(total.replace("$vendor", "no-such-vendor"))) is None
