"""A MemberCluster's status from the federator's view of one cluster: what `federator get clusters` says of it.

Why: the status said the lease's state alone (and the member-unreachable words), so an SRE using `kubectl get mc`
saw a cluster its provider had in maintenance as plain Ready, and one whose reports were clamped to its provider's
maxAccelerators as fine, where `federator get clusters` said `Ready,Cordoned` and `Ready,OverBound`. Here the
status is gathered as ClusterService.List gathers a ClusterStatus (server/cluster_service.py), in the same names:
`maintenance`, `maintenanceSince`, `overBound`, `drainJobsLeft` (while a drain holds: server/drains.py), and
`stateSummary` for the State column (model/state_words.py).

It also keeps what a restart or a new leader must read back of a member and its agent cannot say at once, or ever,
as the standalone members store keeps it (store/members.py, schema 3): `features` (its agent's Hello features: a
job scaled down before the agent is back shrinks its part there in place), `certificateNotAfter` (an agent whose
certificate expired cannot connect to say it again, and FederatorClusterCertificateExpired needs the series),
`resizesOwed` (Resizes its agent has not acknowledged: an agent back without the resize feature has those parts
replaced) and `lostAt` (--forget-lost-after counts from it, not from the restart). Before, these were memory
only in Kubernetes mode. `restore_member` reads them back into a record made for a MemberCluster whose agent has not
connected to this federator yet (backends/kube/member_clusters.py `MemberClusters.adopt`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.backends.kube.resources import Obj, member_cluster_status, member_facts, read_member_facts, timestamp
from federator.model import AgentFeature, ClusterState
from federator.model.state_words import state_words
from federator.server import duplicates
from federator.server.clusters import ClusterRecord
from federator.server.federator import Federator
from federator.server.member_health import unreachable_note
from federator.server.region_mismatch import CONDITION

REASON = "BoundElsewhere"  # the RegionMismatch condition's reason: the binding names another region than spec.region


def member_status(fed: Federator, rec: ClusterRecord) -> Obj:
    """The status the federator writes to `rec`'s MemberCluster now. An admin's cordon is the object's own
    spec.cordoned (and its Cordoned column); it still makes the State column say Cordoned, as the provider's
    maintenance does, so the column reads as `get clusters`' STATE."""
    now = fed.clock()
    upkeep = fed.cordons.maintenance.get(rec.name)  # its provider's own (server/maintenance.py)
    cordon = fed.cordons.get(rec.name)
    left = len(fed.drains.left(rec.name)) if cordon is not None and cordon.drain is not None else None  # drains.py
    ahead = cordon is not None and cordon.ahead(now)  # a maintenance window to come (server/maintenance_windows.py)
    summary = state_words(rec.state.value, cordoned=(cordon is not None and cordon.in_force(now)) or upkeep is not None,
                          maintenance_ahead=ahead, drain_jobs_left=left,
                          quarantined=fed.early.quarantine.holding(rec.name, now) is not None,
                          unreachable=bool(rec.unreachable), duplicate_agent=bool(duplicates.shown(rec, now)),
                          over_bound=bool(rec.over_bound), reports_refused=bool(rec.reports_refused))
    return member_cluster_status(state=rec.state, connected=rec.connected, last_report_at=rec.last_report_at,
                                 capacity=rec.capacity, gang_admission=rec.gang_admission.value,
                                 message=unreachable_note(rec),  # server/member_health.py
                                 summary=summary, maintenance=upkeep, over_bound=rec.over_bound, drain_jobs_left=left,
                                 conditions=region_conditions(rec, kube=True),
                                 orphans=fed.orphans.count(rec.name),  # as get clusters' ORPHANS (orphans.py)
                                 kept=member_facts(features=(f.value for f in rec.features),
                                                   certificate_not_after=rec.certificate_not_after,
                                                   resizes_owed=rec.resizes_owed,
                                                   lost_at=rec.lost_at if rec.state is ClusterState.LOST else 0.0))


def region_conditions(rec: ClusterRecord, *, kube: bool) -> list[Obj]:
    """The MemberCluster's `RegionMismatch` condition while its spec.region and the region its certificate or the
    trust file binds disagree (server/region_mismatch.py): `kubectl describe mc` names both and the fixes."""
    found = rec.region_mismatch
    if found is None:
        return []
    return [{"type": CONDITION, "status": "True", "reason": REASON, "message": found.message(kube=kube)[:1024],
             "lastTransitionTime": timestamp(found.since)}]


def restore_member(rec: ClusterRecord, status: Mapping[str, Any]) -> None:
    """What `member_status` kept of a member, back into `rec` (an `awaited` record: its agent has not connected yet),
    as Membership.restore does from the standalone store. Its Lost time only for a member still Lost.

    A record its agent made first (gRPC serves before the MemberClusters are read, and agents reconnect at once to
    a new leader) keeps its own Hello features and certificate, and takes the Resizes owed while its re-sync has not
    settled them (server/shrink.py `resend`): else an agent back without the resize feature ran those parts at their
    old count."""
    facts = read_member_facts(status)
    if rec.session:
        if not rec.resynced:
            rec.resizes_owed |= facts.resizes_owed
        return
    rec.features = AgentFeature.parse(facts.features)
    rec.certificate_not_after = facts.certificate_not_after
    rec.resizes_owed = set(facts.resizes_owed)
    if rec.state is ClusterState.LOST and facts.lost_at:
        rec.lost_at = facts.lost_at


__all__ = ["REASON", "member_status", "region_conditions", "restore_member"]
