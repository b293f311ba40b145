"""A job a member's API refused as invalid fails with the member's words, once another provider agrees.

Why: outside QA (an ML engineer on the test bed) submitted a FederatedJob whose pod template passed the federator's
checks but not a member's kube-apiserver (422 Invalid: a container port name over 15 characters). The agent
answered `Ack ok=false` with the API's words, the federator read it as the cluster turning the job away, and the
job was placed, refused and placed again for minutes until --max-refusals (server/giving_up.py), its reason
"refused by cluster" rather than "your spec is invalid". Now an agent says so (`Ack.invalid`, agent.proto) and the
job is the one at fault, not the cluster.

One agent's word is not enough to fail a job: a provider's agent could otherwise fail other organisations' jobs
by claiming it (docs/security.md), as one provider's reports are not enough to quarantine a cluster
(server/quarantine.py). The job fails (reason code InvalidSpec, the member's words) when clusters of two
providers called it invalid, or when no Ready cluster of another provider could be asked (a fleet of one
provider: the one word is all there is). Otherwise it is queued again at once for another provider's cluster, the
one that called it invalid kept off it as after a refusal. Each such answer is noted as a refusal of that cluster
(RecentRefusals: kept off a while, counted toward --max-refusals), so a cluster whose `invalid` another provider
then contradicts (the job runs there) has cost what a refusal costs, and nothing more; what it said is forgotten
once the job runs (`RecentRefusals.ran`), and an `invalid` for one part of a spread job whose other part runs is
a plain refusal from the start (the object was valid there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from federator.model import ClusterState, JobId, JobPhase, Reason, ReasonCode
from federator.security.trust import PROVIDER_LABEL

if TYPE_CHECKING:
    from federator.server.federator import ClusterRecord, Federator

WITNESS_PROVIDERS = 2
"""Providers whose clusters must call a job invalid before it fails, where the fleet has that many."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an `invalid` answer does to its job: `fail` it now, or queue it again for another provider to confirm.
    `reason`: the job's reason either way (code InvalidSpec)."""

    fail: bool
    reason: Reason


def judge(said: Mapping[str, tuple[str, str]], *, cluster: str, others_ready: Iterable[str]) -> Verdict:
    """The verdict on a job after `cluster` called it invalid. `said`: every cluster that did since the job last
    ran -> (its provider, the API's words), `cluster` among them; `others_ready`: the providers of the Ready
    clusters that take new work ("" for the federation's own counts as one). Pure."""
    provider, words = said[cluster]
    providers = {p for p, _ in said.values()}
    name = _named(cluster, provider)
    if len(providers) >= WITNESS_PROVIDERS:
        first = next(c for c, (p, _) in said.items() if p != provider)
        return Verdict(True, Reason(ReasonCode.INVALID_SPEC,
                                    f"the job's spec is invalid: {name} and {_named(first, said[first][0])} "
                                    f"refused it as invalid: {words}"))
    if not set(others_ready) - providers:
        return Verdict(True, Reason(ReasonCode.INVALID_SPEC,
                                    f"the job's spec is invalid: {name} refused it as invalid, and no cluster of "
                                    f"another provider is Ready to confirm it: {words}"))
    return Verdict(False, Reason(ReasonCode.INVALID_SPEC,
                                 f"{name} found the job invalid; trying a cluster of another provider to confirm "
                                 f"before it fails: {words}"))


def _named(cluster: str, provider: str) -> str:
    return f"{cluster} (provider {provider})" if provider else cluster


def found_invalid(fed: Federator, rec: ClusterRecord, placement_id: str, message: str) -> None:
    """An agent answered a Launch `Ack ok=false invalid=true`: its member's API refused the job's object as
    invalid, in `message`. Only a live placement of the agent's own cluster, as for any refusal: another
    cluster's agent must not be able to fail a job it was never sent."""
    rec.last_seen_at = fed.clock()
    job = fed.jobs.get(fed.placement_index.get(placement_id, JobId("")))
    if job is None or job.phase.is_terminal or not fed._live_on(rec, placement_id):
        return
    if any(p.phase is JobPhase.RUNNING for p in job.placements):  # a spread job's other part runs: its object
        fed.refused(rec, placement_id, message)  # was valid there, so this is the cluster's refusal
        return
    fed.metrics.placements.labels("invalid").inc()
    provider = rec.labels.get(PROVIDER_LABEL, "")
    said = fed.refusals.called_invalid(job.job_id, rec.name, provider, message)
    verdict = judge(said, cluster=rec.name, others_ready=_taking_work(fed, besides=rec.name))
    fed.refusals.note(job.job_id, rec.name, fed.clock(), message, counted=True)
    if verdict.fail:
        fed.refusals.condemn(job.job_id, verdict.reason)  # the next turn fails it, stored first (giving_up.py)
    fed.requeue(job, verdict.reason, ended={placement_id})


def _taking_work(fed: Federator, *, besides: str) -> set[str]:
    """Providers of the Ready clusters other than `besides` that may be given new work (not cordoned, not
    quarantined): those that could confirm a job's invalidity."""
    cordoned = fed.cordons.names()
    quarantined = fed.early.quarantine.current(fed.clock())
    return {rec.labels.get(PROVIDER_LABEL, "") for rec in fed.clusters.values()
            if rec.state is ClusterState.READY and rec.name != besides
            and rec.name not in cordoned and rec.name not in quarantined}


__all__ = ["WITNESS_PROVIDERS", "Verdict", "found_invalid", "judge"]
