"""The dashboard per accelerator vendor: a `vendor` variable, and fleet sums that say each vendor's part.

Vendor QA V9: a network with NVIDIA, Ascend, AMD, Cambricon and Hygon members read one "Fleet accelerators" and one
"Accelerators allocated" with every vendor's devices added up, and had no way to pick a vendor: an idle vendor hid
behind a full one. Every query of the metrics that carry `vendor` (federator_cluster_accelerators,
federator_pending_accelerators, federator_accelerator_seconds_total) now takes the variable, with All (`.*`)
showing what it did before; promtool evaluates the fleet panels over two vendors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from deploy_support import DASHBOARD, scrape
from prometheus_client.parser import text_string_to_metric_families
from promql_support import dashboard_exprs, grafana_to_promql, promtool_says

from federator.local import LocalFederation

VENDOR_METRICS = ("federator_cluster_accelerators", "federator_pending_accelerators",
                  "federator_accelerator_seconds_total", "federator_queue_accelerators")
# Panels that weigh a vendor metric against one with no vendor label (a queue's holding against its fair share of
# the whole fleet, federator_queue_fair_share): filtering one side alone would be wrong. "Top queues by accelerator
# share" follows the variable since federator_queue_accelerators has `vendor` (vend62): a queue's share of the
# chosen vendors' fleet.
NO_VENDOR = {"Queue holdings against fair share"}
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|=|!=|!~)\s*"([^"]*)"')


def _variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}


def _panel(title: str) -> list[str]:
    return [e for t, e in dashboard_exprs(DASHBOARD) if t == title]


def test_the_vendor_variable_is_a_multi_select_of_the_vendors_members_report() -> None:
    variables = _variables()
    vendor = variables["vendor"]
    assert (vendor["type"], vendor["multi"], vendor["includeAll"], vendor["allValue"]) == ("query", True, True, ".*")
    assert vendor["current"]["value"] == ["$__all"]
    assert vendor["definition"] == vendor["query"]["query"] == \
        'label_values(federator_cluster_accelerators{job=~"$job",namespace=~"$namespace"}, vendor)'
    # the model variable offers the chosen vendors' models, so it is defined after vendor
    names = list(variables)
    assert names.index("vendor") < names.index("model")
    assert 'vendor=~"$vendor"' in variables["model"]["definition"]


def test_the_variables_source_metric_carries_vendor(live_federation: LocalFederation) -> None:
    vendors = {s.labels.get("vendor") for f in text_string_to_metric_families(scrape(live_federation.metrics_url))
               for s in f.samples if s.name == "federator_cluster_accelerators"}
    assert vendors and None not in vendors and "" not in vendors


def test_every_query_of_a_vendor_metric_takes_the_vendor_variable() -> None:
    reading = [(t, e) for t, e in dashboard_exprs(DASHBOARD) if t not in NO_VENDOR]
    checked = 0
    for title, expr in reading:
        for selector in _SELECTOR.finditer(expr):
            if selector.group(1) not in VENDOR_METRICS:
                continue
            matchers = {label: value for label, _op, value in _MATCHER.findall(selector.group(2))}
            want = "$vendor|any" if selector.group(1) == "federator_pending_accelerators" else "$vendor"
            assert matchers.get("vendor") == want, f"{title}: {selector.group(0)}"
            checked += 1
    assert checked >= 20


# Two members, one vendor each: east-1 NVIDIA (80, 20 free), cn-1 Ascend (16, all free).
FLEET = {("east-1", "east", "nvidia", "NVIDIA-H100-80GB-HBM3"): {"total": 80, "allocatable": 80, "free": 20},
         ("cn-1", "cn", "huawei", "Ascend910B3"): {"total": 16, "allocatable": 16, "free": 16}}
WANTED = {("nvidia", "NVIDIA-H100-80GB-HBM3"): 16, ("huawei", "Ascend910B3"): 8, ("any", "any"): 4}


def _series() -> list[dict[str, str]]:
    series = []
    for (cluster, region, vendor, model), counts in FLEET.items():
        labels = f'cluster="{cluster}",region="{region}"'
        series += [{"series": f'federator_cluster_accelerators{{{labels},vendor="{vendor}",model="{model}",'
                              f'state="{s}"}}', "values": f"{n}x5"} for s, n in counts.items()]
        series += [{"series": f'federator_cluster_state{{{labels},state="{s}"}}', "values": f"{int(s == 'Ready')}x5"}
                   for s in ("Ready", "Lost")]
        series.append({"series": f"federator_cluster_cordoned{{{labels}}}", "values": "0x5"})
    series += [{"series": f'federator_pending_accelerators{{vendor="{v}",model="{m}"}}', "values": f"{n}x5"}
               for (v, m), n in WANTED.items()]
    return series


def _says(promtool: Path, tmp_path: Path, expr: str, vendor: str, samples: list[tuple[str, float]]) -> None:
    promtool_says(promtool, tmp_path / "vendor_test.yaml", _series(),
                  grafana_to_promql(expr.replace("$vendor", vendor)), samples)


@pytest.mark.parametrize(("title", "target", "vendor", "samples"), [
    # All: the total as before, then each vendor's part
    pytest.param("Fleet accelerators", 0, ".*", [("{}", 96)], id="fleet-all"),
    pytest.param("Fleet accelerators", 1, ".*", [('{vendor="nvidia"}', 80), ('{vendor="huawei"}', 16)],
                 id="fleet-by-vendor"),
    pytest.param("Fleet accelerators", 0, "huawei", [("{}", 16)], id="fleet-huawei"),
    pytest.param("Accelerators allocated", 0, ".*", [("{}", 0.625)], id="allocated-all"),  # 1 - 36/96
    pytest.param("Accelerators allocated", 1, ".*", [('{vendor="nvidia"}', 0.75), ('{vendor="huawei"}', 0)],
                 id="allocated-by-vendor"),
    pytest.param("Accelerators allocated", 0, "nvidia", [("{}", 0.75)], id="allocated-nvidia"),
    pytest.param("Accelerator allocation by cluster", 2, ".*", [('{vendor="nvidia"}', 0.75),
                                                                 ('{vendor="huawei"}', 0)], id="by-cluster-fleets"),
    pytest.param("Accelerator capacity vs allocation by region", 0, "huawei", [('{region="cn"}', 16)],
                 id="by-region-huawei"),
    pytest.param("Free accelerators by cluster and model", 0, "huawei",
                 [('{cluster="cn-1",region="cn",vendor="huawei",model="Ascend910B3",placeable="yes"}', 16)],
                 id="free-huawei"),
    # demand open to any vendor is shown with the one picked: it could run there
    pytest.param("Accelerators free and wanted, by model", 1, "huawei",
                 [('{vendor="huawei",model="Ascend910B3"}', 8), ('{vendor="any",model="any"}', 4)],
                 id="wanted-huawei"),
    pytest.param("Accelerators free and wanted, by model", 1, ".*",
                 [('{vendor="nvidia",model="NVIDIA-H100-80GB-HBM3"}', 16),
                  ('{vendor="huawei",model="Ascend910B3"}', 8), ('{vendor="any",model="any"}', 4)],
                 id="wanted-all"),
])
def test_the_fleet_panels_per_vendor(promtool: Path, tmp_path: Path, title: str, target: int, vendor: str,
                                     samples: list[tuple[str, float]]) -> None:
    _says(promtool, tmp_path, _panel(title)[target], vendor, samples)
