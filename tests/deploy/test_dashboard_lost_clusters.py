"""The dashboard's capacity panels leave Lost clusters out, as the alerts' recording rules do.

The federator keeps showing a Lost cluster's last capacity report; counted, a cluster Lost while
idle would show free accelerators nobody can use, and one Lost while full would keep the fleet's
allocation high. Every query of federator_cluster_accelerators reads it through the Lost filter,
and promtool evaluates the main panels over a fleet with a Lost cluster.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from deploy_support import DASHBOARD
from promql_support import dashboard_exprs, grafana_to_promql, promtool_says

LOST_FILTER = ('unless on (job, namespace, cluster, region) '
               '(federator_cluster_state{job=~"$job",namespace=~"$namespace",state="Lost"} == 1)')
_SELECTOR = re.compile(r"federator_cluster_accelerators\{[^}]*\}")


def _panels() -> dict[str, list[str]]:
    panels: dict[str, list[str]] = {}
    for title, expr in dashboard_exprs(DASHBOARD):
        panels.setdefault(title, []).append(expr)
    return panels


def test_every_capacity_query_leaves_lost_clusters_out() -> None:
    reading = [(title, expr) for title, exprs in _panels().items() for expr in exprs
               if "federator_cluster_accelerators" in expr]
    assert len(reading) >= 8
    for title, expr in reading:
        for m in _SELECTOR.finditer(expr):
            assert expr[m.end():].startswith(f" {LOST_FILTER}"), f"{title}: {expr}"


SERIES = {  # east-1 Ready, 60 of 80 allocated; lost-1 Lost, its last report 16 free of 16
    ("east-1", "east", "Ready"): {"total": 80, "allocatable": 80, "free": 20},
    ("lost-1", "west", "Lost"): {"total": 16, "allocatable": 16, "free": 16},
}


@pytest.mark.parametrize(("title", "samples"), [
    pytest.param("Fleet accelerators", [("{}", 80)], id="fleet-total"),
    pytest.param("Accelerators allocated", [("{}", 0.75)], id="fleet-allocated"),  # not 1 - 36/96
    pytest.param("Free accelerators by cluster and model",
                 [('{cluster="east-1",region="east",vendor="nvidia",model="NVIDIA-H100-80GB-HBM3",placeable="yes"}',
                   20)],
                 id="free-by-cluster"),
])
def test_a_lost_clusters_last_report_counts_in_no_panel(promtool: Path, tmp_path: Path, title: str,
                                                         samples: list[tuple[str, float]]) -> None:
    _evaluate(promtool, tmp_path, title, samples)


def test_a_cordoned_clusters_free_accelerators_are_not_shown_as_room(promtool: Path, tmp_path: Path) -> None:
    """Outside SRE QA F7: a cluster left cordoned after a drain showed its idle accelerators as free while jobs
    waited; the table now says they are not placeable."""
    _evaluate(promtool, tmp_path, "Free accelerators by cluster and model",
              [('{cluster="east-1",region="east",vendor="nvidia",model="NVIDIA-H100-80GB-HBM3",'
                'placeable="no: cordoned"}', 20)], cordoned={"east-1"})


def _evaluate(promtool: Path, tmp_path: Path, title: str, samples: list[tuple[str, float]],
              cordoned: frozenset[str] | set[str] = frozenset()) -> None:
    [expr] = _panels()[title][:1]
    series = []
    for (cluster, region, state), counts in SERIES.items():
        labels = f'cluster="{cluster}",region="{region}"'
        series += [{"series": f'federator_cluster_accelerators{{{labels},vendor="nvidia",'
                              f'model="NVIDIA-H100-80GB-HBM3",state="{s}"}}', "values": f"{n}x5"}
                   for s, n in counts.items()]
        series += [{"series": f'federator_cluster_state{{{labels},state="{s}"}}',
                    "values": f"{int(s == state)}x5"} for s in ("Ready", "Partitioned", "Lost")]
        series.append({"series": f"federator_cluster_cordoned{{{labels}}}", "values": f"{int(cluster in cordoned)}x5"})
    promtool_says(promtool, tmp_path / "dashboard_test.yaml", series, grafana_to_promql(expr), samples)


@pytest.mark.parametrize(("federation", "samples"), [
    pytest.param(".*", [("{}", 80)], id="all"),
    pytest.param("fed-b", [("{}", 80)], id="fed-b"),
    pytest.param("fed-a", [], id="fed-a"),
])
def test_two_federations_on_one_prometheus_stay_apart(promtool: Path, tmp_path: Path, federation: str,
                                                       samples: list[tuple[str, float]]) -> None:
    """Two federations scraped by one Prometheus, each with a member named east-1: federation a's is Lost, b's is
    Ready with 80 accelerators. The Federation variable ($job) shows one or both, and a's Lost east-1 does not hide
    b's (the Lost filter joins on the federation's job and namespace, not on the cluster's name alone)."""
    [expr] = _panels()["Fleet accelerators"][:1]
    series = []
    for job, state, total in (("fed-a", "Lost", 16), ("fed-b", "Ready", 80)):
        labels = f'job="{job}",cluster="east-1",region="east"'
        series += [{"series": f'federator_cluster_accelerators{{{labels},vendor="nvidia",'
                              f'model="NVIDIA-H100-80GB-HBM3",state="{s}"}}', "values": f"{total}x5"}
                   for s in ("total", "allocatable", "free")]
        series += [{"series": f'federator_cluster_state{{{labels},state="{s}"}}', "values": f"{int(s == state)}x5"}
                   for s in ("Ready", "Lost")]
    promtool_says(promtool, tmp_path / "federations_test.yaml", series,
                  grafana_to_promql(expr.replace("$job", federation)), samples)
