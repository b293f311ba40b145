"""docs/operators.md lists every metric of src/federator/metrics.py and state_metrics.py with its type and labels,
and no other."""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram, ProcessCollector

from federator.metrics import ClusterSample, Metrics, StateSample

from support import ROOT

DOC = ROOT / "docs" / "operators.md"
_ROW = re.compile(r"^\| (`federator_[^|]*) \| (\w+) \| ([^|]*) \|", re.MULTILINE)


def _documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (type, labels) from the federator's table under '### Metrics' (the agents' table follows it)."""
    text = DOC.read_text()
    table = text[text.index("### Metrics"):text.index("Each agent serves its own metrics")]
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for names, kind, labels in _ROW.findall(table):
        label_names = () if labels.strip() == "-" else tuple(x.strip() for x in labels.split(","))
        for name in re.findall(r"`(federator_\w+)`", names):
            rows[name] = (kind, label_names)
    return rows


def _defined() -> dict[str, tuple[str, tuple[str, ...]]]:
    metrics = Metrics()
    metrics.watch_store(lambda: 0, lambda: 0)
    metrics.watch_demand(lambda: 0)
    metrics.watch_reservations(lambda: 0, lambda: 0)
    metrics.watch_state(lambda: StateSample([ClusterSample("c", "r", "Ready", True, 0.0)], {}, {}))
    defined: dict[str, tuple[str, tuple[str, ...]]] = {}
    for collector in list(metrics.registry._collector_to_names):
        if isinstance(collector, ProcessCollector):  # the client library's process_*: named in the prose
            continue
        if isinstance(collector, (Counter, Gauge, Histogram)):  # the label names each was declared with
            kind = {Counter: "counter", Gauge: "gauge", Histogram: "histogram"}[type(collector)]
            defined[collector._name + ("_total" if kind == "counter" else "")] = (kind, tuple(collector._labelnames))
        else:  # the state collector: families built at scrape time, with their declared label names
            for family in collector.collect():
                defined[family.name] = (family.type, tuple(getattr(family, "_labelnames", ())))
    return defined


def test_the_metrics_table_is_the_metrics_defined() -> None:
    documented, defined = _documented(), _defined()
    assert set(documented) == set(defined)
    assert {n: documented[n] for n in defined if documented[n] != defined[n]} == {}


def test_the_check_reads_the_table() -> None:
    documented = _documented()
    assert documented["federator_jobs"] == ("gauge", ("queue", "phase"))
    assert documented["federator_agent_reports_total"] == ("counter", ("cluster",))
    assert documented["federator_leader"] == ("gauge", ())


def test_the_process_metrics_are_served_and_named_in_the_docs() -> None:
    """Outside SRE QA F9: no process_* series, so a restart, memory growth or file descriptors could not be graphed
    outside Kubernetes."""
    from prometheus_client import generate_latest

    served = {line.split(" ")[0] for line in generate_latest(Metrics().registry).decode().splitlines()
              if line.startswith("process_")}
    assert {"process_start_time_seconds", "process_resident_memory_bytes", "process_open_fds"} <= served
    text = DOC.read_text()
    assert all(f"`{name}`" in text for name in ("process_start_time_seconds", "process_resident_memory_bytes",
                                                "process_open_fds"))
