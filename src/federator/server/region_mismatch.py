"""A cluster whose record names one region and whose certificate (or trust file) binds another: said once, shown.

Why (0.16.0): in Kubernetes mode an admin may write a MemberCluster's `spec.region` before its agent first connects
(server/cluster_regions.py: the record's region wins over the agent's claim), and since 0.15.0 the cluster's
certificate may bind a region too (`federator certs issue --region`, security/region_binding.py). When the two
disagree, no Hello can ever be admitted: claiming the record's region contradicts the binding, claiming the bound
one is a change of the recorded region. The agent was refused at each connect, each refusal a WARNING naming one
half of the problem, and `kubectl get mc` said only Partitioned, then Lost.

What a user expects, decided here: neither side silently wins. The record is an admin's statement in the host
cluster, the binding one signed by whoever issues the cluster's trust; either may be the mistake, and a cluster
admitted in the wrong region draws jobs fenced to another (data residency). So the Hello is still refused
(PERMISSION_DENIED), but in one message naming both regions, where each comes from and both fixes; the federator
logs it once per mismatch (not per connect); and the MemberCluster carries a status condition `RegionMismatch`
naming both, with one Warning Event (backends/kube/member_status.py, member_clusters.py) until a Hello is admitted.
Each refusal is still audited (`cluster.region-change`, rule `region-binding`, `bound` and `bound_by`) and counted
(federator_agent_region_changes_refused_total), as any refused region claim. The same holds in standalone mode for
a registered cluster issued a certificate bound to another region (there is no MemberCluster to carry it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from federator.security.audit import AuditLog
from federator.security.authz import Principal
from federator.security.region_binding import CERTIFICATE, Binding

if TYPE_CHECKING:
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")
CONDITION = "RegionMismatch"  # the MemberCluster's condition type and its Event's reason


@dataclass(frozen=True, slots=True)
class RegionMismatch:
    """`cluster`'s record holds `recorded`; its certificate or the trust file (`by`) binds `bound`; since when."""

    cluster: str
    recorded: str
    bound: str
    by: str
    since: float = field(default=0.0, compare=False)

    def message(self, *, kube: bool) -> str:
        """The refusal, the log line, the condition's and the Event's message: both regions, whence, both fixes."""
        record = "its MemberCluster's spec.region" if kube else "its registration"
        if CERTIFICATE in self.by:
            rebind = f"issue it a certificate with --region {self.recorded}"
        else:
            rebind = f"bind it to {self.recorded!r} in the trust file (clusterRegions, or the provider's regions)"
        forget = f"`kubectl delete mc {self.cluster}`" if kube else f"`federator forget {self.cluster}`"
        return (f"hello.region: cluster {self.cluster!r} is in region {self.recorded!r} by {record}, and its "
                f"{self.by} binds region {self.bound!r}; the two must agree, so no Hello of it is admitted: if it "
                f"is in {self.recorded!r}, {rebind}; if it is in {self.bound!r}, an admin stops its agent and, "
                f"once the cluster is Lost, forgets it ({forget}), and the agent's next Hello registers it in "
                f"{self.bound!r}")


def found(current: ClusterRecord | None, binding: Binding, *, now: float) -> RegionMismatch | None:
    """The mismatch of a known cluster's recorded region with the region its certificate or the trust file binds;
    None when they agree, or either says none (a binding in conflict with itself is region_binding's to refuse)."""
    if current is None or not current.region or not binding.region or binding.conflict \
            or current.region == binding.region:
        return None
    return RegionMismatch(current.name, current.region, binding.region, binding.by, since=now)


def refused(fed: Federator, audit: AuditLog, rec: ClusterRecord, mismatch: RegionMismatch, *, kube: bool,
            claimed: str, via: str, peer_address: str, provider: str = "") -> str:
    """A Hello refused for `mismatch`: a WARNING when it is new for the cluster (kept on its record, which the
    MemberCluster's condition reads), an audit line and the counter each time. Returns the message."""
    message = mismatch.message(kube=kube)
    if rec.region_mismatch != mismatch:
        rec.region_mismatch = mismatch
        log.warning("refused the agent of cluster %s from %s (said once until it changes): %s", rec.name,
                    peer_address or "an unknown peer", message)
    audit.record("cluster.region-change", identity=Principal(f"cluster {rec.name}", via=via),
                 obj={"kind": "MemberCluster", "name": rec.name, "region": mismatch.recorded, "claimed": claimed[:80],
                      "bound": mismatch.bound, "bound_by": mismatch.by, **({"provider": provider} if provider else {})},
                 result="refused", code="PERMISSION_DENIED", rule="region-binding", message=message)
    fed.metrics.region_changes_refused.labels(rec.name).inc()
    return message


__all__ = ["CONDITION", "RegionMismatch", "found", "refused"]
