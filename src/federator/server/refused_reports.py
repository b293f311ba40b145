"""A member whose capacity reports are refused: said in `get clusters`, counted per cluster, alerted on.

Why: outside QA (vendors re-test, R3) ran a third-party agent whose every report the pool-vendor check refused
(`malformed`, an empty AcceleratorPool.vendor). Its agent kept its lease, so the member stayed `Ready` in `get
clusters`, with no capacity, for as long as it ran; the refusals were counted only in
`federator_messages_rejected_total{reason}`, which has no cluster label and no alert for these reasons; and the alert
that did fire, FederatorAgentReportsStale, said the agent "has sent no capacity report" and sent the operator to the
agent's API calls and CPU, while it sent one every 2 s and each was refused.

Decided: like a report clamped to its provider's bound (server/over_bound.py), this is a fault to fix on the agent's
side shown beside the lease's state, not a state of its own: the agent is there (its lease is renewed by each
refused report, as by any message), and what a state would change the missing capacity already does (a cluster
never taken a report from holds no room, so it takes no new work; one refused after reports were taken keeps the
last capacity taken, the same old picture as a cluster whose reports stopped). The record keeps the latest refusal's
words and since when reports have been refused: set by each refused report, cleared by the next report taken, kept
when the stream ends, fresh on a new stream (a new record). ClusterStatus.reports_refused says it (`get clusters`:
`Ready,ReportsRefused`), and `federator_agent_reports_refused_total{cluster,reason}` counts each refused report:
the cluster label is bounded by the members the federator admits (a refused Hello never gets here), the reason by
RejectReason. FederatorAgentReportsRefused (deploy/prometheus/alerts.yaml) fires on it; FederatorAgentReportsStale
no longer does for such a cluster.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from federator.server.errors import cut
from federator.server.validation import Refusal
from federator.timestamps import utc_seconds

if TYPE_CHECKING:
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")


def refused(fed: Federator, rec: ClusterRecord, refusal: Refusal) -> None:
    """A capacity report of `rec`'s stream was refused (the agent was told, server/agent_service.py `_refuse`):
    counted for the cluster, and its words kept for `get clusters`; logged when reports start being refused."""
    fed.metrics.agent_reports_refused.labels(rec.name, refusal.reason.value).inc()
    if not rec.reports_refused:
        rec.reports_refused_since = fed.clock()
        log.warning("cluster %s: its capacity reports are refused (%s); it keeps the capacity last taken (%s) until "
                    "one is taken: get clusters shows ReportsRefused", rec.name, refusal.reason.value,
                    "none: it takes no new work" if rec.capacity is None else
                    f"of {utc_seconds(rec.last_report_at)}")
    rec.reports_refused = cut(f"{refusal.reason.value}: {refusal.message}")


def taken(rec: ClusterRecord) -> None:
    """A report of `rec`'s stream was taken: what was said of refused reports no longer holds."""
    if rec.reports_refused:
        log.info("cluster %s: its capacity reports are taken again (refused since %s)", rec.name,
                 utc_seconds(rec.reports_refused_since))
        rec.reports_refused, rec.reports_refused_since = "", 0.0


__all__ = ["refused", "taken"]
