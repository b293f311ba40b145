"""A placement its cluster reports Failed soon after it started is placed once more, elsewhere.

Why: Failed was final, and a member is trusted to say how its placements end. Outside QA's black-hole provider
(finding F02) claimed room without bound at a price of 0, took every tenant's jobs and reported each one Failed
at once ("CUDA error ... (exit 139)"): 6 of 6 jobs of two tenants failed within seconds while an honest cluster
had room. The start deadline (server/start_deadline.py) covers placements that never start; this covers those
that "start" and fail.

The rule: a placement reported Failed within `seconds` (--early-failure-seconds) of its own start (Running, as this
federator saw it; when it saw none, as after a restart, which forgets starts, from the job's latest placement) failed
early. Its own: a spread job's part placed again since moves the job's placement, and a part that had run 2 s failed
"after 0s", early, a free placement (outside QA, new59 N4). Its job is not finished the first time: it is queued
again, that cluster avoided for it as after a refusal (server/refusals.py), with pending reason FailedEarly saying
what happened ("failed on acme-east after 4s: <the member's words>; placing it once more, elsewhere"). Once per job:
the failure is kept on the job (`Job.early_failure`, stored with it), so a job that really crashes at start fails on
its second cluster, its message naming both. A job annotated `federator.io/failover: keep` is never placed again this
way, nor one annotated `federator.io/early-failure: fail` (EARLY_FAILURE_ANNOTATION): its user knows a crash at start
is the job's own, and a retry would run it, and bill it, twice (outside HPC QA, H6; Slurm's `--no-requeue`). Its early
failure is taken as any other failure (a spread job's part whose other parts serve is placed again alone, as at any
time), counted in the metric below, and blames no cluster. A gang is queued again whole, as after a refusal; a spread
inference job whose other parts still run has only the failed part placed again (server/partial.py).

A part of a spread job that fails later, after running (its Deployment deleted on the member, or stuck past its
progress deadline), is placed again alone, its cluster avoided a while, whatever --early-failure-seconds says:
the parts serving elsewhere are left alone (they were all deleted, and the job failed, before: outside QA). Any
other job that fails late fails, unless its spec.failurePolicy.maxRestarts has restarts left
(server/failure_restarts.py); so does a job whose once-more placement after an early failure fails too, but for
a spread job's part whose other parts serve: placed again alone then too, taking none of that budget (it spent a
restart superseding the part alone, and the part placed a moment before then ended the job: new59 N4).

Every early failure, retried or not, counts in `federator_placement_early_failures_total{cluster}`. Toward the
cluster's quarantine (server/quarantine.py) counts only a first early failure whose job, placed once more, then
runs on another cluster (server/blame.py): a job that fails early on its second cluster too is its own fault, and
neither failure counts. 0 turns both off: a Failed placement fails its job, as before.

A placement its agent reports Failed because it lost it (JobUpdate.lost, lost_placements.py: an agent that can
no longer follow or delete it, while its pods may still run) is never placed again by either rule: that would run
the job twice. The field alone says it (since 0.10.0; the words 0.7.0 agents wrote are only words). A gang (or a
job with nothing else live, or `failover: keep`) fails with the agent's message. A spread job whose other parts
still run loses that part alone: it is superseded with no Cancel (its agent cannot act on one), its cluster
avoided a while, the other parts keep serving and the job stays
Running "2 of 4 replicas placed; 2 waiting: ... lost by the agent of <cluster>", owing the lost replicas, which
the cycle places elsewhere. Why owe them: the lost replicas are no longer managed (nothing scales, updates or
restarts them) and may vanish any time, and two serving copies of a model corrupt nothing, unlike two writers of
a training checkpoint. Why not fail the job whole, as 0.7.0 did: one provider's agent (buggy or hostile) then
took down the replicas serving on every other provider's clusters. Every lost placement counts in
`federator_placements_lost_total{cluster}`: the mark is the agent's to set, so a member that sets it on
every job (sparing itself the early-failure rule and its quarantine) shows there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from federator.model import ClusterState, Job, JobId, JobPhase, JobSpec, Placement, Reason, ReasonCode
from federator.scheduler import may_spread
from federator.security.authz import owner_of, submitter_of
from federator.security.trust import PROVIDER_LABEL
from federator.server.clusters import FAILOVER_ANNOTATION, ClusterRecord
from federator.server.failure_restarts import restart_on_failure
from federator.server.quarantine import Quarantine, QuarantinePolicy
from federator.server.refusals import FAILED_EARLY, brief
from federator.server.restored_cooldowns import restore_cooldowns

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")

EARLY_FAILURE_ANNOTATION = "federator.io/early-failure"
"""A job's early-failure policy: `retry` (the default) places it once more, elsewhere first; `fail` does not."""
EARLY_FAILURE_POLICIES = ("retry", "fail")

DEFAULT_EARLY_FAILURE_SECONDS = 300.0
"""Five minutes: a job that crashes on its first step (a missing file, an image that does not run, a device that
faults) fails in that time; a run that fails later has run, and placing it again elsewhere is the user's call."""


@dataclass(frozen=True, slots=True)
class EarlyFailurePolicy:
    """`seconds`: how soon after its start a Failed placement failed early (0: never, and no quarantine)."""

    seconds: float = DEFAULT_EARLY_FAILURE_SECONDS
    quarantine: QuarantinePolicy = field(default_factory=QuarantinePolicy)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError(f"seconds: must be 0 (never) or a positive number, got {self.seconds:g}")


class EarlyFailures:
    """Reads each placement's updates for an early failure; see the module docstring."""

    def __init__(self, fed: Federator, policy: EarlyFailurePolicy | None = None) -> None:
        self.fed = fed
        self.policy = policy or EarlyFailurePolicy()
        self.quarantine = Quarantine(self.policy.quarantine, early_seconds=self.policy.seconds, ready=self._ready,
                                     provider_of=self._provider_of, providers_besides=self._providers_besides,
                                     on_start=self._quarantined, on_end=self.released, on_capped=self._capped)
        # An owner's tenancy groups, its organisation: those recorded on the job (the caller's certificate or
        # token); serve adds the policy's (server/app.py), which only the authorizer knows.
        self.groups_of: Callable[[JobSpec], frozenset[str]] = lambda spec: owner_of(spec)[1]
        self._started: dict[str, float] = {}  # placement id -> when it turned Running, while in its job
        self._swept = 0  # how many starts the last sweep kept (`_start`)
        # Built on start, over the store's jobs: the cluster a waiting job last failed on is avoided for what is
        # left of its cool-down, as if the federator had not restarted (server/restored_cooldowns.py, new59 N7)
        restore_cooldowns(fed)

    def seen(self, rec: ClusterRecord, job: Job, placement: Placement, phase: JobPhase, message: str, *,
             lost: bool = False) -> str | None:
        """The message to record with `placement`'s new `phase`, or None when the update was an early failure
        that queued the job again (nothing more to record: the placement is gone). `lost`: JobUpdate.lost."""
        seconds = self.policy.seconds
        now = self.fed.clock()
        blames = self.quarantine.blames
        if phase is JobPhase.RUNNING:
            self.fed.refusals.ran(job.job_id)  # it runs: what turned it away before was not the job itself
        if seconds > 0 and phase is JobPhase.RUNNING and placement.phase is not JobPhase.RUNNING:
            self._start(placement.placement_id, now)
            blames.ran(job.job_id, rec.name, now)
        if phase in (JobPhase.SUCCEEDED, JobPhase.CANCELLED):
            self.quarantine.confirm(blames.ended(job.job_id, rec.name, succeeded=phase is JobPhase.SUCCEEDED,
                                                 now=now), now)
        if phase is not JobPhase.FAILED:
            return message
        if lost:  # JobUpdate.lost alone (lost_placements.py): words in a message are only words
            return self._lost(rec, job, placement, message)
        took = now - self._since(job, placement)
        early = seconds > 0 and took <= seconds
        if early and job.spec.annotation(EARLY_FAILURE_ANNOTATION, "retry") != "fail":
            said = self._failed_early(rec, job, placement, message, took)
            if said is None or self._part_failed(rec, job, placement, message, took) is None:
                return None  # placed once more; or a spread job's part whose other parts serve, placed again alone
            # its once-more placement spent (or failover: keep): spec.failurePolicy's budget, if any, is next. The
            # restart says this failure once (`said` already does: new59 N4), and ends the job with `said`.
            return restart_on_failure(self.fed, rec, job, placement, message, took=took, ends=said)
        if early:  # its user asked for no retry: counted, taken as any failure, no one blamed
            self.fed.metrics.placement_early_failures.labels(rec.name).inc()
        self.quarantine.confirm(blames.ended(job.job_id, rec.name, succeeded=False, now=now), now)
        said = self._part_failed(rec, job, placement, message, took)
        if early and said is not None:  # no restart on failure either: the annotation says the crash is its own
            said += f" (failed {took:.0f}s after its start; not placed again: {EARLY_FAILURE_ANNOTATION}: fail)"
        elif said is not None:  # a late failure ends the job, unless its spec.failurePolicy has restarts left
            said = restart_on_failure(self.fed, rec, job, placement, said, took=took)
        return said

    def _lost(self, rec: ClusterRecord, job: Job, placement: Placement, message: str) -> str | None:
        """The agent lost the placement (lost_placements.py): its pods may still run on `rec`, so that part is not
        placed again there, early or not. A spread job whose other parts run keeps them: the lost part alone is
        superseded (no Cancel: its agent cannot follow one) and its replicas are owed, placed elsewhere (see the
        module for why). Any other job (a gang, nothing else live, `failover: keep`) ends Failed with the agent's
        message. No blame either way: the member did not fail the job, its agent's rights were narrowed."""
        self._started.pop(placement.placement_id, None)
        self.fed.metrics.placements_lost.labels(rec.name).inc()  # a provider saying it often is to be asked why
        if _spread_with_others(job, placement):
            why = (f"its part on {rec.name} ({placement.replicas} replicas) was {brief(message)}; not placed there "
                   f"again (its pods may still run, unmanaged); its replicas to be placed elsewhere")
            log.warning("job %s: placement %s %s; the other parts keep serving", job.job_id,
                        placement.placement_id, message[:200])
            self.fed.refusals.note(job.job_id, rec.name, self.fed.clock(), message)
            ended = {placement.placement_id}
            self.fed.requeue(job, Reason(ReasonCode.REFUSED_BY_CLUSTER, why), ended=ended, stopped=ended)
            return None
        log.warning("job %s: placement %s %s; not placing it again: it would run twice", job.job_id,
                    placement.placement_id, message[:200])
        return f"{message} (not placed again: its pods may still run on {rec.name}, and the job would run twice)"

    def _part_failed(self, rec: ClusterRecord, job: Job, placement: Placement, message: str,
                     took: float) -> str | None:
        """One part of a spread job, which ran a while, failed (its Deployment deleted on the member, or stuck past
        its progress deadline): that part alone is placed again, its cluster avoided a while, and the parts that
        serve elsewhere are left alone. Before, the job failed and every healthy copy in every region was deleted
        (outside QA). Any other job fails, as ever."""
        if not _spread_with_others(job, placement):
            return message
        why = f"its part on {rec.name} failed after {took:.0f}s: {brief(message) if message else 'no message'}"
        log.warning("job %s: %s; placing that part again", job.job_id, why)
        self.fed.refusals.note(job.job_id, rec.name, self.fed.clock(), message)
        ended = {placement.placement_id}  # reported Failed by its agent: no Cancel for it (stopped)
        self.fed.requeue(job, Reason(ReasonCode.REFUSED_BY_CLUSTER, why), ended=ended, stopped=ended)
        return None

    def _failed_early(self, rec: ClusterRecord, job: Job, placement: Placement, message: str,
                      took: float) -> str | None:
        fed = self.fed
        now = fed.clock()
        fed.metrics.placement_early_failures.labels(rec.name).inc()
        said = f"{rec.name} after {took:.0f}s: {brief(message) if message else 'no message'}"
        if job.early_failure:  # its one more placement failed too: the job fails, naming both clusters
            if self.quarantine.blames.job_at_fault(job.job_id) is not None:  # and neither cluster is to blame
                log.info("job %s failed early on two clusters: its own fault, no evidence against either",
                         job.job_id)
            return f"{message} (failed on {said}; it had failed on {job.early_failure} and was placed once more)"
        if job.spec.annotation(FAILOVER_ANNOTATION, "replace") == "keep":
            return message  # no once-more placement, so nothing shows whose fault it was: no blame (blame.py)
        self.quarantine.failed_early(job.job_id, rec.name, submitter_of(job.spec), now, self.groups_of(job.spec))
        job.early_failure = said  # stored by the requeue's write, before any agent hears of it
        why = (f"failed on {said}; placing it once more, elsewhere (--early-failure-seconds {self.policy.seconds:g}; "
               f"{EARLY_FAILURE_ANNOTATION}: fail for none)")
        log.warning("job %s %s", job.job_id, why)
        fed.refusals.note(job.job_id, rec.name, now, message, did=FAILED_EARLY)
        ended = {placement.placement_id}  # reported Failed by its agent: no Cancel for it (stopped)
        fed.requeue(job, Reason(ReasonCode.FAILED_EARLY, why), ended=ended, stopped=ended)
        return None

    def _since(self, job: Job, placement: Placement) -> float:
        """When `placement`'s run began, for how long it ran before it failed: its start (Running, as this
        federator saw it), else the job's latest placement (a restart forgets starts). Its own start, never the
        job's placement after it: a spread job's part placed again since (server/partial.py) moved job.placed_at,
        and a part that had run 2 s failed "after 0s", early, a free placement (outside QA, new59 N4)."""
        start = self._started.pop(placement.placement_id, None)
        return job.placed_at if start is None else start

    def _start(self, placement_id: str, now: float) -> None:
        """Keep when the placement turned Running while it is in its job: a part of a spread job may fail long
        after its start, the job placed again (its other parts) since. Those superseded or ended without a
        Failed report go at a sweep, once the starts have doubled since the last: memory stays in proportion
        to the placements live, at a cost amortized over the starts."""
        started = self._started
        started[placement_id] = now
        if len(started) <= max(64, 2 * self._swept):
            return
        jobs, index = self.fed.jobs, self.fed.placement_index
        for pid in list(started):
            job = jobs.get(index.get(pid, JobId("")))
            if job is None or not any(p.placement_id == pid and not p.phase.is_terminal for p in job.placements):
                del started[pid]
        self._swept = len(started)

    def _quarantined(self, cluster: str) -> None:
        self.fed.metrics.cluster_quarantines.labels(cluster).inc()

    def _capped(self, cluster: str) -> None:
        self.fed.metrics.cluster_quarantines_capped.labels(cluster).inc()

    def _ready(self) -> int:
        """Ready clusters now, quarantined ones too (they stay Ready): the base of the quarantine's cap."""
        return sum(1 for rec in self.fed.clusters.values() if rec.state is ClusterState.READY)

    def _provider_of(self, cluster: str) -> str:
        rec = self.fed.clusters.get(cluster)
        return rec.labels.get(PROVIDER_LABEL, "") if rec is not None else ""

    def _providers_besides(self, cluster: str) -> int:
        """Providers of the Ready clusters other than `cluster` ("" for the federation's own counts as one)."""
        return len({rec.labels.get(PROVIDER_LABEL, "") for rec in self.fed.clusters.values()
                    if rec.state is ClusterState.READY and rec.name != cluster})

    def released(self, cluster: str) -> None:
        """Its room counts again (a quarantine or a cordon ended): jobs parked for want of room come back."""
        self.fed.cycles.capacity_changed(everything=True)
        self.fed.wake()


def _spread_with_others(job: Job, placement: Placement) -> bool:
    """Whether `placement` can end alone (server/partial.py): a job that may spread, another part of it live, and
    not annotated `failover: keep` (which fails the job whole, as ever)."""
    return may_spread(job.spec) and any(p.phase.is_active for p in job.placements if p is not placement) \
        and job.spec.annotation(FAILOVER_ANNOTATION, "replace") != "keep"


__all__ = ["DEFAULT_EARLY_FAILURE_SECONDS", "EARLY_FAILURE_ANNOTATION", "EARLY_FAILURE_POLICIES", "EarlyFailurePolicy",
           "EarlyFailures"]
