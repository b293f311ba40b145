"""A member cluster's state as people read it: its lease's state, then what else keeps work off it.

Why one function: `federator get clusters` (cli/output.py) and `kubectl get mc` (the MemberCluster's
status.stateSummary, backends/kube/member_status.py) show the same words. The MemberCluster showed the lease's
state alone, so an SRE using kubectl saw a cluster in its provider's maintenance as plain Ready and one whose
report was clamped to its provider's bound as fine, where `get clusters` said `Ready,Cordoned` and
`Ready,OverBound`.
"""

from __future__ import annotations


def state_words(state: str, *, cordoned: bool = False, quarantined: bool = False, unreachable: bool = False,
                duplicate_agent: bool = False, over_bound: bool = False, reports_refused: bool = False,
                drain_jobs_left: int | None = None, maintenance_ahead: bool = False) -> str:
    """"Ready,Cordoned,OverBound": `state` (Ready, Partitioned, Lost) and each that holds, in this order.

    `cordoned`: an admin's cordon or its provider's maintenance (server/maintenance.py: the same word, the reason
    says whose); `quarantined` (server/quarantine.py); `unreachable`: its agent cannot reach the member's API
    server (server/member_health.py); `duplicate_agent`: a second agent of its name refused lately
    (server/duplicates.py), a fault to fix rather than a state; `over_bound`: its report was taken clamped to its
    provider's maxAccelerators (server/over_bound.py); `reports_refused`: its capacity reports are refused since
    the last one taken (server/refused_reports.py), also a fault to fix; `drain_jobs_left`: an admin's drain holds
    (server/drains.py), "Draining" while it has jobs left to move, "Drained" once it has none (None: no drain);
    `maintenance_ahead`: an admin's maintenance window not begun (server/maintenance_windows.py),
    "MaintenanceAhead": until it begins the cluster takes only the jobs whose run bound ends by its start."""
    held = (("Cordoned", cordoned), ("MaintenanceAhead", maintenance_ahead), ("Draining", bool(drain_jobs_left)),
            ("Drained", drain_jobs_left == 0),
            ("Quarantined", quarantined), ("APIUnreachable", unreachable),
            ("DuplicateAgent", duplicate_agent), ("OverBound", over_bound), ("ReportsRefused", reports_refused))
    return ",".join([state, *(word for word, holds in held if holds)])


__all__ = ["state_words"]
