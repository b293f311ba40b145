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

Logged once per distinct refusal, not per report: the federator logged "refused a message" at WARNING for every
refused report, one line per report interval per such agent for as long as it ran (2 s: 1,800 lines an hour of
the same words), which buried every other line of the log. Now a refusal is logged at WARNING when reports start
being refused, again when the refusal changes (another reason, or other words: numbers aside, since a sequence
number or a count differs in every report), and while the same one lasts at most once per `REPEAT_SECONDS`, saying
how many were refused since; every other refused report is logged at DEBUG. The clearing (the next report taken)
is logged at INFO, as before. The metric counts every refused report whatever is logged. The agent's side does the
same with the federator's Errors (agent/federator_errors.py).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from federator.server.errors import cut
from federator.server.validation import Refusal
from federator.timestamps import utc_seconds

if TYPE_CHECKING:
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")


REPEAT_SECONDS = 600.0
"""How often the same refusal is logged at WARNING again while it lasts (each report between: DEBUG)."""


def _same(a: str, b: str) -> bool:
    """Whether two refusals' words say the same thing, their numbers aside."""
    return re.sub(r"\d+", "N", a) == re.sub(r"\d+", "N", b)


def refused(fed: Federator, rec: ClusterRecord, refusal: Refusal) -> None:
    """A capacity report of `rec`'s stream was refused (the agent was told, server/agent_service.py `_refuse`):
    counted for the cluster, and its words kept for `get clusters`; logged at WARNING when reports start being
    refused, when the refusal changes, and every REPEAT_SECONDS while it lasts (else at DEBUG)."""
    fed.metrics.agent_reports_refused.labels(rec.name, refusal.reason.value).inc()
    now = fed.clock()
    words = cut(f"{refusal.reason.value}: {refusal.message}")
    if not rec.reports_refused:
        rec.reports_refused_since = now
        log.warning("cluster %s: its capacity reports are refused (%s); it keeps the capacity last taken (%s) until "
                    "one is taken: get clusters shows ReportsRefused. Logged again when the refusal changes, or "
                    "every %gs while it lasts", rec.name, words,
                    "none: it takes no new work" if rec.capacity is None else
                    f"of {utc_seconds(rec.last_report_at)}", REPEAT_SECONDS)
    elif not _same(words, rec.reports_refused):
        log.warning("cluster %s: its capacity reports are refused for another reason now (%s; before: %s)",
                    rec.name, words, rec.reports_refused)
    elif now - rec.reports_refused_logged >= REPEAT_SECONDS:
        log.warning("cluster %s: its capacity reports are still refused, since %s (%s); %d refused since this was "
                    "last logged", rec.name, utc_seconds(rec.reports_refused_since), words,
                    rec.reports_refused_unlogged + 1)
    else:
        log.debug("cluster %s: a capacity report refused again (%s)", rec.name, words)
        rec.reports_refused = words
        rec.reports_refused_unlogged += 1
        return
    rec.reports_refused, rec.reports_refused_logged, rec.reports_refused_unlogged = words, now, 0


def taken(rec: ClusterRecord) -> None:
    """A report of `rec`'s stream was taken: what was said of refused reports no longer holds."""
    if rec.reports_refused:
        log.info("cluster %s: its capacity reports are taken again (refused since %s)", rec.name,
                 utc_seconds(rec.reports_refused_since))
        rec.reports_refused, rec.reports_refused_since = "", 0.0
        rec.reports_refused_logged, rec.reports_refused_unlogged = 0.0, 0


__all__ = ["REPEAT_SECONDS", "refused", "taken"]
