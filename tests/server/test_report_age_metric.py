"""`federator_agent_report_age_seconds` of a cluster with no report known (outside SRE soak, finding 4).

After a restart every remembered cluster is awaited with no report time, and the gauge read "now - 0", about
1.8e9 s (57 years), for each of them, connected ones included, until its first report: FederatorAgentReportsStale
went pending for the whole fleet at every restart, and a cluster that never came back flattened the dashboard's
panel for a day. Such a cluster has no age series until it reports; one that reports has its age.
"""

from __future__ import annotations

from prometheus_client import generate_latest
from server_support import Clock, MemoryStore, capacity, make


def _ages(scrape: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in scrape.splitlines():
        if line.startswith("federator_agent_report_age_seconds{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('cluster="', 1)[1].split('"', 1)[0]] = float(value)
    return out


def test_a_cluster_awaited_after_a_restart_has_no_age_until_it_reports() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    fed.expect_cluster("east-1", region="east", labels={})
    fed.expect_cluster("west-1", region="west", labels={})
    assert _ages(generate_latest(fed.metrics.registry).decode()) == {}
    east = fed.connect(cluster="east-1", region="east", labels={})  # connected, its re-sync not yet reported
    assert "east-1" not in _ages(generate_latest(fed.metrics.registry).decode())
    clock.now += 5
    fed.report(east, capacity())
    clock.now += 2
    ages = _ages(generate_latest(fed.metrics.registry).decode())
    assert set(ages) == {"east-1"} and 0 <= ages["east-1"] < 60, ages
