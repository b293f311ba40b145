"""The placement an elastic gang last ran in, when it ended under the gang: what it waits a while to regain.

Why its own type: a gang of 4 with spec.minReplicas 1 placed 3 of 4 on one member lost one pod to an eviction; the
placement ended, and in the same second the gang was placed again at 1 on another member, for the rest of its run
(gangs never grow: model/elastic.py), while its own member had its room free again moments later (outside QA,
elasticqa63 1b). The federator had not heard that room back yet, and the member that stopped it is avoided for a
while (server/refusals.py). So the requeue (server/requeue.py) notes here what the gang ran at and where, and the
rule of how long it waits to regain that count is scheduler/elastic_regain.py's.

Not stored: it matters for a minute or two after the end, and after a federator restart every member reports afresh
(the rule's "reported since" holds at once), so a restart loses nothing it guards.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ElasticLeft:
    """An elastic gang's placement that ended for a cause not its own success: where, at how many replicas, when."""

    cluster: str
    replicas: int
    at: float  # unix seconds, the federator's clock when the job was queued again


__all__ = ["ElasticLeft"]
