"""The report byte budget holds across a cluster's streams (red team re-test): each new stream started with a full
bucket, and a report held over the budget was applied as its stream closed, so a provider whose agents
reconnected in a loop had two 206 KB reports applied per short stream, 18 times the budget."""

from __future__ import annotations

from federator.api.v1 import agent_pb2
from federator.security.limits import Limits
from federator.server.clusters import report_gate

BIG = agent_pb2.CapacityReport(sequence=1, placement_ids=[f"p-{i:06d}" for i in range(20_000)])  # ~200 KB


def test_a_clusters_new_stream_keeps_the_debt_of_its_last() -> None:
    limits = Limits(report_bytes_per_second=16 * 1024)
    first = report_gate(limits)
    applied, _ = first.offer(BIG)
    assert applied is BIG  # a stream's first report passes, and its size is owed
    again = report_gate(limits, first)  # the same cluster reconnects at once
    applied, _ = again.offer(BIG)
    assert applied is None and again.held is BIG  # held: the debt came along
    fresh = report_gate(limits)  # (what every reconnect got before)
    assert fresh.offer(BIG)[0] is BIG


def test_a_report_held_over_the_budget_is_not_applied_as_its_stream_closes() -> None:
    gate = report_gate(Limits(report_bytes_per_second=16 * 1024))
    assert gate.offer(BIG)[0] is BIG
    assert gate.offer(BIG)[0] is None
    assert gate.closing() is None and gate.held is None  # dropped: the next stream's first report says it again
    small = report_gate(Limits(report_bytes_per_second=16 * 1024))
    small.held = agent_pb2.CapacityReport(sequence=2)
    assert small.closing() is not None  # within the budget, the newest word is still kept


def test_the_federator_hands_a_reconnecting_cluster_its_budgets() -> None:
    from server_support import Clock, MemoryStore, make

    fed = make(MemoryStore(), Clock(), limits=Limits(report_bytes_per_second=16 * 1024))
    first = fed.connect(cluster="acme-1", region="r", labels={})
    fed.disconnect(first)
    second = fed.connect(cluster="acme-1", region="r", labels={})
    assert first.reports is not None and second.reports is not None
    assert second.reports.volume is first.reports.volume and second.reports.bucket is first.reports.bucket
    other = fed.connect(cluster="acme-2", region="r", labels={})
    assert other.reports is not None and other.reports.volume is not first.reports.volume
