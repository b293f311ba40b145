"""The agent's own enforcement of `--maintenance`: new placements are refused here, not only asked against.

A report's `CapacityReport.maintenance` asks the federator for no new work, and a 0.6 federator treats it as a
cordon. A 0.5 federator does not know the field and keeps the cluster Ready: outside QA (ops, F8) saw a 0.6 agent
in maintenance launch the new gang such a federator sent it, with no word on either side. Providers upgrade their
agents on their own schedule, so the agent must not rely on the federator's version: while in maintenance it
refuses a Launch of a placement it does not hold. A placement it holds (re-sent after a reconnect) is not new work
and is answered as before, so maintenance never stops what runs here.
"""

from __future__ import annotations


def maintenance_refusal(*, cluster: str, reason: str) -> str:
    """The Ack message of a Launch refused for maintenance: it names the maintenance and its reason, so the
    federator's log, the job's pending message and this cluster's log all say why."""
    return (f"cluster {cluster} is in maintenance (agent --maintenance: {reason}): it takes no new work; "
            "what it already runs stays")


__all__ = ["maintenance_refusal"]
