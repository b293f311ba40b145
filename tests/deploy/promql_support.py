"""Metric names in PromQL expressions and in a /metrics page (importable as `promql_support`).

Enough of PromQL to find the metric names a query reads: strings, label
matchers, range selectors and grouping clauses are blanked out; what is left
that looks like an identifier and is not a function call or a keyword is a
metric name.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from deploy_support import ALERTS
from prometheus_client.parser import text_string_to_metric_families

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
            "group_right", "inf", "nan", "atan2"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER_TAIL = re.compile(r"[0-9.]$")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"), "gauge": ("",), "untyped": ("",), "info": ("_info",),
            "stateset": ("",), "gaugehistogram": ("_bucket", "_gsum", "_gcount"), "unknown": ("",)}


def metric_names(expr: str) -> set[str]:
    s = _STRING.sub('""', expr)
    s = _MATCHERS.sub(" ", s)
    s = _RANGE.sub(" ", s)
    s = _GROUPING.sub(" ", s)
    names: set[str] = set()
    for m in _IDENT.finditer(s):
        token = m.group(0)
        if token in KEYWORDS or s[m.end():].lstrip().startswith("("):
            continue  # a keyword, or a function / aggregation call
        if m.start() > 0 and (s[m.start() - 1] == "$" or _NUMBER_TAIL.search(s[:m.start()])):
            continue  # a Grafana variable, or the exponent of a number like 1e3
        names.add(token)
    return names


def exported_names(metrics_text: str) -> set[str]:
    """Every series name a scrape of this page can produce, including declared families with no sample yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(metrics_text):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def dashboard_exprs(path: Path) -> Iterator[tuple[str, str]]:
    """(panel title, expr) of every query of every panel, rows included, and of every Prometheus annotation
    ("annotation: NAME")."""
    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield panel.get("title", "?"), target["expr"]
            yield from walk(panel.get("panels", []))
    dashboard = json.loads(path.read_text())
    yield from walk(dashboard["panels"])
    for note in dashboard.get("annotations", {}).get("list", []):
        if note.get("expr"):
            yield f"annotation: {note['name']}", note["expr"]


def grafana_to_promql(expr: str, *, rate_interval: str = "1m") -> str:
    """Replace the dashboard's variables so Prometheus itself can run the query."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__interval", rate_interval)
    expr = expr.replace("$__range", "1h")  # the dashboard's time range (accelerator-hours over the range)
    return re.sub(r"\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?", ".*", expr)


def promtool_says(promtool: Path, path: Path, series: list[dict[str, str]], promql: str,
                  samples: list[tuple[str, float]]) -> None:
    """promtool evaluates `promql` over `series` (5 minutes of samples, the alerts' rules loaded) at 2m and finds
    exactly `samples`; the test is written to `path`."""
    test = {"rule_files": [str(ALERTS)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [{"expr": promql, "eval_time": "2m",
                              "exp_samples": [{"labels": labels, "value": value} for labels, value in samples]}]}]}
    path.write_text(yaml.safe_dump(test))
    proc = subprocess.run([str(promtool), "test", "rules", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


__all__ = ["dashboard_exprs", "exported_names", "grafana_to_promql", "metric_names", "promtool_says"]
