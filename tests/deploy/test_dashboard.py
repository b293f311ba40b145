"""deploy/grafana/federator.json: a dashboard that shows what the federator really exports.

Every query's metric names are checked against the /metrics pages of a running
federator and of its simulated agents (examples/fleet.yaml; the agents'
`federator_agent_*` come from their own endpoint): histogram
`_bucket/_sum/_count` series count as exported by their histogram; the
alerts are held to the same rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import yaml
from deploy_support import ALERTS, DASHBOARD, scrape
from prometheus_client.parser import text_string_to_metric_families
from promql_support import dashboard_exprs, exported_names, metric_names

from federator.backends.kube.namespace_claim import ClaimState
from federator.local import LocalFederation
from federator.metrics import CLUSTER_STATES
from federator.model import JobPhase, ReasonCode
from federator.model.job import NeverRunnable
from federator.security.limits import RejectReason
from federator.store.errors import WriteFailure

# What an SRE was promised on this dashboard (issue 5), as words a panel title must carry.
PROMISED_PANELS = ["capacity vs allocation by region", "capacity vs allocation by model",
                   "pending jobs by queue and reason", "submit-to-placement latency", "agent connectivity",
                   "agent report age", "preemptions", "top queues by accelerator share",
                   # the agents' own side of the link (their /metrics)
                   "agent-side connectivity", "agent last send age", "agent launches by result",
                   "agent cancels and self-fences",
                   # members whose own queue quota holds accelerators back, and what the federator does about it
                   "held back by member quota", "held placements agents asked to move",
                   "queue at its pending cap",
                   # trust and membership: what expires, members that take work and do not start it, forgotten ones
                   "certificates: days until expiry", "placements not started in time", "clusters forgotten",
                   # spread jobs serving short of a part that a lost cluster held
                   "replicas owed to short jobs",
                   # members that fail several owners' work soon after its start (server/quarantine.py), and
                   # those an operator cordoned (server/cordons.py)
                   "early failures, quarantined and cordoned clusters",
                   # a starving organisation told from a hogging one (tenant QA F4)
                   "queue holdings against fair share",
                   # accelerators free in one place while jobs wanting them wait (planners' QA P3)
                   "free and wanted, by model"]


@pytest.mark.parametrize(("expr", "want"), [
    pytest.param('sum by (le) (rate(a_bucket{q=~"$queue"}[$__rate_interval]))', {"a_bucket"}, id="histogram"),
    pytest.param("1 - sum(x{s=\"free\"}) / sum(x{s=\"total\"} > 0)", {"x"}, id="ratio"),
    pytest.param("a > on (cluster) group_left () b + 0.3", {"a", "b"}, id="vector-matching"),
    pytest.param('topk(10, q) / scalar(sum(g)) or vector(0)', {"q", "g"}, id="functions-and-or"),
    pytest.param("x and on () y unless z offset 5m", {"x", "y", "z"}, id="keywords"),
    pytest.param("rec:rule:ratio * 1e3", {"rec:rule:ratio"}, id="recording-rule-and-exponent"),
])
def test_metric_names_are_found_in_promql(expr: str, want: set[str]) -> None:
    assert metric_names(expr) == want


def test_dashboard_is_well_formed() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] == "Federator"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel.get("description"), f"{panel['title']}: say what the panel shows"
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "region", "model", "queue"} <= variables


def test_the_dashboard_marks_leader_changes() -> None:
    """HA QA F2: a failover left no trace on the dashboard; each leader change is an annotation on every panel."""
    notes = {n["name"]: n for n in json.loads(DASHBOARD.read_text())["annotations"]["list"]}
    assert "federator_leader_acquisitions_total" in notes["Leader changes"]["expr"]
    assert ("annotation: Leader changes", notes["Leader changes"]["expr"]) in list(dashboard_exprs(DASHBOARD))


def test_dashboard_has_the_promised_panels() -> None:
    titles = [p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"]]
    missing = [want for want in PROMISED_PANELS if not any(want in t for t in titles)]
    assert missing == []


@pytest.fixture(scope="module")
def live_metrics(live_federation: LocalFederation) -> set[str]:
    """What the federator and every agent export (the dashboard reads both kinds of target)."""
    urls = [live_federation.metrics_url, *(f"{base}/metrics" for base in live_federation.agent_endpoints.values())]
    assert len(urls) == 1 + len(live_federation.agents)
    names: set[str] = set()
    for url in urls:
        names |= exported_names(scrape(url))
    return names


def test_every_dashboard_query_reads_exported_metrics(live_metrics: set[str]) -> None:
    unknown: dict[str, set[str]] = {}
    for title, expr in dashboard_exprs(DASHBOARD):
        missing = metric_names(expr) - live_metrics
        if missing:
            unknown.setdefault(title, set()).update(missing)
    assert unknown == {}, f"panels query metrics neither the federator nor its agents export: {unknown}"


def test_every_alert_reads_exported_metrics(live_metrics: set[str]) -> None:
    rules: list[dict[str, Any]] = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    unknown = {r.get("alert") or r["record"]: metric_names(r["expr"]) - live_metrics - recorded for r in rules}
    assert {k: v for k, v in unknown.items() if v} == {}


# Label values the code defines but a fresh federator may not have exported yet (counters count from their
# first event): what a query may select besides the values seen on the live /metrics pages.
DEFINED_VALUES: dict[tuple[str, str], set[str]] = {
    ("federator_messages_rejected_total", "reason"): {r.value for r in RejectReason},
    ("federator_pending_jobs", "reason"): {c.value for c in ReasonCode},
    ("federator_placement_retries_total", "reason"): {c.value for c in ReasonCode},
    ("federator_jobs", "phase"): {p.value for p in JobPhase},
    ("federator_jobs_finished_total", "phase"): {p.value for p in JobPhase},
    ("federator_cluster_state", "state"): set(CLUSTER_STATES),
    ("federator_store_unwritten_jobs", "reason"): {w.value for w in WriteFailure},
    ("federator_store_write_errors_total", "reason"): {w.value for w in WriteFailure},
    ("federator_placement_moves_total", "result"): {"moved", "kept"},
    ("federator_grpc_server_handled_total", "grpc_code"): {code.name for code in grpc.StatusCode},
    ("federator_never_runnable_jobs", "reason"): {n.value for n in NeverRunnable},
    # the Kubernetes backend's namespace claim: the simulated agents of the live federation claim none
    ("federator_agent_namespace_claim", "state"): {s.value for s in ClaimState},
}
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|=)\s*"([^"]*)"')


def selected_values(expr: str) -> Iterator[tuple[str, str, str]]:
    """(metric, label, value) of every literal value an `=` or `=~` matcher of the query selects."""
    for selector in _SELECTOR.finditer(expr):
        for label, op, value in _MATCHER.findall(selector.group(2)):
            if "$" in value or (op == "=~" and re.search(r"[.*+?()\[\]\\]", value)):
                continue  # a Grafana variable, or a pattern rather than a list of values
            for one in value.split("|") if op == "=~" else [value]:
                yield selector.group(1), label, one


@pytest.fixture(scope="module")
def live_values(live_federation: LocalFederation) -> dict[tuple[str, str], set[str]]:
    """(series name, label) -> the values the live federator and its agents export."""
    urls = [live_federation.metrics_url, *(f"{base}/metrics" for base in live_federation.agent_endpoints.values())]
    seen: dict[tuple[str, str], set[str]] = {}
    for url in urls:
        for family in text_string_to_metric_families(scrape(url)):
            for sample in family.samples:
                for label, value in sample.labels.items():
                    seen.setdefault((sample.name, label), set()).add(value)
    return seen


def _queries() -> list[tuple[str, str]]:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    return [*dashboard_exprs(DASHBOARD), *((r.get("alert") or r["record"], r["expr"]) for r in rules)]


def test_every_label_value_a_query_selects_is_one_the_code_exports(
        live_values: dict[tuple[str, str], set[str]]) -> None:
    """A metric name can stay while a label value goes (or never existed): such a panel is silently empty and
    such an alert never fires. Each selected value is exported live, or defined by the code's own enums."""
    unknown: dict[str, set[str]] = {}
    for title, expr in _queries():
        for metric, label, value in selected_values(expr):
            known = live_values.get((metric, label), set()) | DEFINED_VALUES.get((metric, label), set())
            if value not in known:
                unknown.setdefault(title, set()).add(f'{metric}{{{label}="{value}"}}')
    assert unknown == {}


def test_the_label_check_reads_matchers() -> None:
    expr = ('sum(federator_cluster_accelerators{state="quota_held",region=~"$region"}) + '
            'rate(federator_messages_rejected_total{reason=~"queue_pending_limit|queue_full"}[5m]) + '
            'federator_grpc_server_handled_total{grpc_method!~"Connect|Watch",grpc_code=~".*"}')
    assert set(selected_values(expr)) == {
        ("federator_cluster_accelerators", "state", "quota_held"),
        ("federator_messages_rejected_total", "reason", "queue_pending_limit"),
        ("federator_messages_rejected_total", "reason", "queue_full")}
    assert "quota_held" not in DEFINED_VALUES.get(("federator_cluster_accelerators", "state"), set())


def test_the_check_catches_a_metric_that_is_not_exported(live_metrics: set[str]) -> None:
    assert "federator_cluster_accelerators" in live_metrics
    assert "federator_scheduling_cycle_duration_seconds_bucket" in live_metrics
    assert "federator_agent_launch_duration_seconds_bucket" in live_metrics  # an agent's, from its endpoint
    assert metric_names("federator_agent_launches") - live_metrics == {"federator_agent_launches"}
    assert metric_names("sum(federator_gpus_total)") - live_metrics == {"federator_gpus_total"}


def _labels_of_metrics() -> dict[str, set[str]]:
    """Each metric the federator defines (its sample names: a counter's `_total` too) -> its label names."""
    from federator.metrics import Metrics

    out: dict[str, set[str]] = {}
    for value in vars(Metrics()).values():
        metric = getattr(value, "metric", value)
        name, labels = getattr(metric, "_name", None), getattr(metric, "_labelnames", None)
        if isinstance(name, str) and labels is not None:
            out[name] = out[f"{name}_total"] = set(labels)
    return out


def test_the_accounting_row_takes_the_region_and_model_variables() -> None:
    """Capacity planners QA P9: picking a province or a model left the "Accounting" row showing the whole network,
    as federator_accelerator_seconds_total had no region label and its queries took neither variable."""
    labels = _labels_of_metrics()["federator_accelerator_seconds_total"]
    assert {"region", "vendor", "model"} <= labels
    queries = [(t, e) for t, e in dashboard_exprs(DASHBOARD) if "federator_accelerator_seconds_total" in e]
    assert len(queries) >= 4
    for title, expr in queries:
        for selector in _SELECTOR.finditer(expr):
            if selector.group(1) != "federator_accelerator_seconds_total":
                continue
            matchers = {label: value for label, _op, value in _MATCHER.findall(selector.group(2))}
            assert (matchers.get("region"), matchers.get("model")) == ("$region", "$model"), title
