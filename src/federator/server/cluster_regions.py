"""A member cluster's region is a recorded fact, fixed when the cluster first registers, not what each Hello claims.

Why (outside compliance QA, C2): the scheduler places by a cluster's region (`regions.preferred`, latency budgets,
the rebalancer's "nearer your users"), and data residency rests on it. The region used to be whatever the agent's
Hello said on each connect: an agent restarted with another `--region` relabelled its cluster at once, with an INFO
line and nothing else, and jobs fenced to a region ran in another data centre while their record named the fenced
region.

The region a cluster has is the one its record holds: set when the cluster first registers (its first Hello, or an
admin's record), kept while the federator knows the cluster, and across restarts by the member record (SQLite mode:
the members table in `--db`; Kubernetes mode: the MemberCluster's `spec.region`, which an admin may write before the
agent first connects, and which then wins over the agent's claim). A Hello that claims another region for a cluster
the federator knows is refused (PERMISSION_DENIED, naming the cluster, the region it has and the one claimed, and
the fix), logged at WARNING, audited (`cluster.region-change`, result `refused`) and counted
(federator_agent_region_changes_refused_total). The cluster keeps its region and its work: its running placements
go on, and the cluster goes Partitioned (then Lost) as a cluster whose agent is away does.

Changing a region is an admin's act, and an audited one: once the cluster is Lost, `federator forget` (standalone;
a `forget` audit line) or `kubectl delete mc` (Kubernetes mode; the host cluster's audit log), then the agent joins
with its new region. A cluster can be forgotten only once no unfinished job has a placement there
(server/leases.py), so no running job is left in a region it did not ask for. A first registration is audited
(`cluster.register`, with the region), so the audit log says which region each cluster took, and when.

Who decides a new cluster's region: its certificate or the trust file, when they bind it (outside compliance QA,
C2b; security/region_binding.py): a Hello claiming another is refused here as a change is (`refused_bound`).
Unbound, the first Hello's claim is taken, self-declared: a WARNING and the `cluster.register` line say so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from federator.security.audit import AuditLog
from federator.security.authz import Principal
from federator.security.region_binding import Binding
from federator.server.outbox import EndCode, Ending

if TYPE_CHECKING:
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")


@dataclass(frozen=True, slots=True)
class RegionClaim:
    """An agent's Hello claiming `claimed` for `cluster`, whose record has `kept`."""

    cluster: str
    kept: str
    claimed: str

    def message(self, *, kube: bool = False) -> str:
        """The refusal, for the agent, the log and the audit line: the field, both regions, and the admin's fix."""
        if kube:
            fix = (f"if the cluster really moved, an admin stops its agent and, once it is Lost, deletes its record "
                   f"(`kubectl delete mc {self.cluster}`), then starts the agent with --region {self.claimed}; "
                   f"else start the agent with --region {self.kept}")
        else:
            fix = (f"if the cluster really moved, an admin stops its agent and, once it is Lost, forgets it "
                   f"(`federator forget {self.cluster}`), then starts the agent with --region {self.claimed}; "
                   f"else start the agent with --region {self.kept}")
        return (f"hello.region: cluster {self.cluster!r} is registered in region {self.kept!r}, and its agent "
                f"claims {self.claimed[:80]!r}; a cluster's region changes only by an admin: {fix}")


def claim(known: ClusterRecord | None, cluster: str, region: str) -> RegionClaim | None:
    """The refused claim if `region` is not the region the federator holds for `cluster`; None if the Hello may
    connect (an unknown cluster, one whose record has no region yet, or the same region)."""
    if known is None or not known.region or known.region == region:
        return None
    return RegionClaim(cluster, known.region, region)


def refused(fed: Federator, audit: AuditLog, found: RegionClaim, *, via: str, peer_address: str,
            kube: bool = False, provider: str = "") -> str:
    """Say a refused claim: a WARNING (each refusal: a retrying agent backs off to minutes, agent/refusal.py), an
    audit line and the counter. `provider`: whose CA certified the agent ("" the federation's, or none). Returns
    the message the agent is answered with."""
    message = found.message(kube=kube)
    _say(fed, audit, found.cluster, found.kept, found.claimed, message, via=via, peer_address=peer_address,
         provider=provider, rule="region")
    return message


def refused_bound(fed: Federator, audit: AuditLog, cluster: str, binding: Binding, claimed: str, message: str, *,
                  via: str, peer_address: str, provider: str = "") -> None:
    """Say a Hello refused for claiming another region than its certificate or the trust file binds
    (security/region_binding.py), as `refused` says a change: a WARNING, a `cluster.region-change` line (rule
    `region-binding`, with `bound_by`) and the counter."""
    _say(fed, audit, cluster, binding.region, claimed, message, via=via, peer_address=peer_address, provider=provider,
         rule="region-binding", bound_by=binding.by)


def _say(fed: Federator, audit: AuditLog, cluster: str, kept: str, claimed: str, message: str, *, via: str,
         peer_address: str, provider: str, rule: str, bound_by: str | None = None) -> None:
    log.warning("refused the agent of cluster %s from %s: %s", cluster, peer_address or "an unknown peer", message)
    audit.record("cluster.region-change", identity=Principal(f"cluster {cluster}", via=via),
                 obj={"kind": "MemberCluster", "name": cluster, "region": kept, "claimed": claimed[:80],
                      **({"bound_by": bound_by} if bound_by is not None else {}),
                      **({"provider": provider} if provider else {})},
                 result="refused", code="PERMISSION_DENIED", rule=rule, message=message)
    fed.metrics.region_changes_refused.labels(cluster).inc()


def registered(audit: AuditLog, rec: ClusterRecord, *, via: str, before: str, provider: str = "",
               bound_by: str = "") -> None:
    """A cluster took its region: its first registration (`before` ""), audited with the region it now has and
    what bound it (`bound_by`: security/region_binding.py; "" self-declared, said in a WARNING when the agent came
    with a certificate, which could have bound it)."""
    if before:
        return
    if not bound_by and via == "certificate":
        log.warning("cluster %s registered in region %r as its agent declared it: neither its certificate nor the "
                    "trust file binds its region (bind it: federator certs issue --cluster %s --region %s, or the "
                    "trust file's clusterRegions; docs/security.md)", rec.name, rec.region, rec.name, rec.region)
    audit.record("cluster.register", identity=Principal(f"cluster {rec.name}", via=via),
                 obj={"kind": "MemberCluster", "name": rec.name, "region": rec.region, "bound_by": bound_by,
                      **({"provider": provider} if provider else {})}, result="accepted",
                 rule="first-registration", message=f"cluster {rec.name!r} registered in region {rec.region!r}"
                 + ("" if bound_by else " (self-declared by its agent)"))


def admin_record(fed: Federator, rec: ClusterRecord, region: str) -> None:
    """Kubernetes mode: the MemberCluster an admin wrote names `region` for a cluster whose agent connected (gRPC
    serves before the objects are read at start) claiming another. The admin's record wins: the record takes its
    region, and the agent's stream is ended with the refusal its next Hello gets too."""
    if not region or region == rec.region:
        return
    found = RegionClaim(rec.name, region, rec.region)
    message = found.message(kube=True)
    log.warning("MemberCluster %s names region %r, its agent claimed %r: the MemberCluster's region holds; %s",
                rec.name, region, rec.region, message)
    fed.metrics.region_changes_refused.labels(rec.name).inc()
    rec.region = region
    if rec.connected:
        fed.close_stream(rec, Ending(EndCode.PERMISSION_DENIED, message))
    placed_elsewhere(fed, rec.name, region)


def placed_elsewhere(fed: Federator, cluster: str, region: str) -> list[str]:
    """The unfinished jobs with a live placement on `cluster` placed while it was in another region than `region`
    (an admin re-regioned its MemberCluster while the federator was away, or an agent's claim was overruled): said
    in a WARNING naming them, since their region fences were checked against the region they were placed in. Their
    placements go on; what to do with them is the admin's call (cancel, drain). Returns their ids."""
    jobs = sorted(str(job.job_id) for job in fed.jobs.values() if not job.phase.is_terminal and any(
        p.cluster == cluster and not p.phase.is_terminal and p.region and p.region != region for p in job.placements))
    if jobs:
        more = f" and {len(jobs) - 5} more" if len(jobs) > 5 else ""
        log.warning("cluster %s is in region %r by its record, but %d unfinished job(s) were placed there while it "
                    "was in another region, whose region fences were checked against that one: %s%s; drain the "
                    "cluster (federator drain %s) to place them again by its region", cluster, region, len(jobs),
                    ", ".join(jobs[:5]), more, cluster)
    return jobs


__all__ = ["RegionClaim", "admin_record", "claim", "placed_elsewhere", "refused", "refused_bound", "registered"]
