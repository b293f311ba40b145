"""The third step of a cycle, on the event loop: a computed cycle's decisions applied to the jobs still as planned.

Why a module of its own: `commit` and `commit_pending` are where a cycle's result meets a federator that kept
serving while it was computed (server/scheduling.py's module docstring: plan, compute, commit): a job cancelled,
re-queued or changed meanwhile, a cluster no longer Ready or quarantined, a preemption whose room is gone. What is
checked before a placement or a pending reason lands is read here in one place, apart from the planning and the
worker that run around it. `Cycles.__init__` sets what the class bodies declare.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from federator.model import ClusterState, Job, JobId, JobPhase, Reason, ReasonCode
from federator.scheduler import CycleResult
from federator.server.cycle_indexes import CycleIndexes
from federator.server.cycle_plan import CyclePlan
from federator.server.job_message import job_message, keep_interruption, placements_message, preempted_message
from federator.server.new_placements import new_placements
from federator.server.orders import LaunchOrder, Order
from federator.server.partial import fits_what_is_missing, missing, owes, supersede_part
from federator.server.restarts import count_restart

log = logging.getLogger("federator.server")


class CycleCommit(CycleIndexes):
    """A cycle's placements, preemptions and pending reasons applied to the jobs still as its plan saw them."""

    cycles: int

    def commit(self, plan: CyclePlan, result: CycleResult) -> tuple[list[Job], list[tuple[str, Order]]]:
        """Apply a cycle's placements and preemptions in memory to the jobs that are still as planned; the
        changed jobs and the orders to send once they are stored. Pending reasons: `commit_pending`."""
        fed = self.fed
        now = fed.clock()
        changed: list[Job] = []
        orders: list[tuple[str, Order]] = []
        stale_clusters: set[str] = set()
        # The jobs an ended reservation kept off may fit now: nothing else says so.
        for r in self.reserved.update(result.reservations, result.resting):
            self.capacity_changed([(r.accelerator_model, self._family(r.cluster, r.accelerator_model))])
        for pre in result.preemptions:  # cancels go out before launches
            job = fed.jobs.get(pre.job_id)
            if job is None or not job.phase.is_active or job.generation != plan.generations.get(pre.job_id):
                stale_clusters.add(pre.cluster)  # the room this preemption was to make is not there
                continue
            reason = Reason(ReasonCode.PREEMPTED, preempted_message(pre.message, now))
            count_restart(job, reason, at=now)  # a preemption is a restart (server/restarts.py)
            log.info("job %s (queue %s) preempted on %s for job %s", job.job_id, job.spec.queue, pre.cluster,
                     pre.preemptor)  # the operator's record; the victim's reason names the preemptor in-queue only
            part = {p.placement_id for p in job.placements if p.cluster == pre.cluster} if pre.part else set()
            cancels = supersede_part(fed, job, part, reason) if part else None  # the other parts serve on
            orders.extend(cancels if cancels is not None else fed.supersede(job, reason))
            fed.metrics.preemptions.labels(pre.queue).inc()
            if job not in changed:
                changed.append(job)
        for decision in result.decisions:
            job = fed.jobs.get(decision.job_id)
            if job is None or not owes(job) or job.generation != plan.generations.get(job.job_id) or \
                    not fits_what_is_missing(decision, missing(job), job.spec):
                self.parked.forget_verdicts()  # its room was not taken after all
                continue  # cancelled (or changed: another part lost, or re-queued whole) while the cycle ran
            if any(not self._ready(a.cluster) or a.cluster in stale_clusters for a in decision.assignments):
                self.parked.forget_verdicts()
                continue  # stays a candidate: the next cycle sees the cluster as it is now
            rest = bool(job.placements)  # the rest of a job whose other parts run: they stay, and keep theirs
            job.generation += 1
            new = new_placements(job.job_id, job.generation, decision.assignments)
            job.placements = [*job.placements, *new]
            for p in new:
                fed.placement_index.add(p.placement_id, job.job_id)
                orders.append((p.cluster, LaunchOrder(p, job.spec)))
            if not (rest and any(p.phase is JobPhase.RUNNING for p in job.placements)):
                job.phase = JobPhase.PLACED  # a running job's added part (a scale-up) keeps it Running (QA F2)
            job.pending_reason = decision.short  # a rest placed in part, or in fewer regions (scheduler/spread.py)
            job.placed_at = now
            job.message = placements_message(job) if decision.short is None else \
                job_message(job, fed.clusters, lost_after=fed.lost_after_seconds)  # what it still waits for
            self._held(job)
            if job.spec.preemptible:  # a job this cycle found no room for may preempt it next cycle
                for p in new:
                    self.parked.placed_preemptible(p.accelerator_model, self._family(p.cluster, p.accelerator_model))
            self._candidates.pop(job.job_id, None)
            self._requests.pop(job.job_id, None)
            if decision.short is not None and job.replicas_waiting:  # the rest of the rest waits for room
                self.parked.park(job.job_id, job.spec, decision.short, job.submitted_at)
                if job.job_id not in self.parked:
                    self._candidates[job.job_id] = None
            self.uncount_pending(job.job_id)
            self.refresh.left(job.job_id)
            self._active[job.job_id] = None
            fed.metrics.placements.labels("placed").inc()
            if not rest:  # the wait of a submission, not of a lost part's replacement
                fed.metrics.submit_to_placement.labels(job.spec.queue).observe(max(0.0, now - job.submitted_at))
            changed.append(job)
        self.cycles += 1
        return changed, orders

    def commit_pending(self, plan: CyclePlan, pending: Sequence[tuple[JobId, Reason]]) -> list[Job]:
        """Park the jobs a cycle could not place, with their reasons; the jobs whose reason changed.

        Separate from `commit` because after a cycle over a big backlog this is most of the work: the
        loop does it in slices, serving streams between them."""
        fed = self.fed
        changed: list[Job] = []
        unschedulable = 0
        for job_id, reason in pending:
            job = fed.jobs.get(job_id)
            if job is None or not owes(job) or job.generation != plan.generations.get(job_id):
                continue
            self._candidates.pop(job_id, None)
            # Time ends an avoidance, and an elastic gang's wait to regain its count (scheduler/elastic_regain.py),
            # not a capacity change: keep trying. (`park` also leaves out a job whose room may have come while this
            # cycle ran: parking.py.)
            regaining = (asked := self._requests.get(job_id)) is not None and asked.regain is not None
            if not fed.refusals.remembers(job_id) and not regaining:
                if job_id not in self.reserved:  # one reserving room is a candidate of every cycle
                    self.parked.park(job_id, job.spec, reason, job.submitted_at)
                if job_id in self.parked and job.phase is JobPhase.PENDING and job_id in self._requests:
                    self.refresh.parked(job_id, self._requests[job_id], reason)
                    self.refresh.answer(job_id, reason)  # its group is told by `told`
            else:
                reason = fed.refusals.explain(job_id, reason)
            reason = keep_interruption(job.pending_reason, reason)  # a victim keeps saying so until placed
            if job_id not in self.parked:
                self._candidates[job_id] = None
            if job.pending_reason != reason:
                if job.pending_reason is None or job.pending_reason.code != reason.code:
                    unschedulable += 1
                job.pending_reason = reason
                if job.phase.is_active:  # the rest of a placed job: its message says why the rest waits
                    job.message = job_message(job, fed.clusters, lost_after=fed.lost_after_seconds)
                changed.append(job)
        if unschedulable:
            fed.metrics.placements.labels("unschedulable").inc(unschedulable)
        return changed

    def told(self, limit: int | None = None) -> tuple[list[Job], bool]:
        """Parked jobs told the new reason one of their group was given (reason_refresh.py): those whose reason
        changed, and whether more are to be told."""
        told, more = self.refresh.tell(self.fed.jobs, self.parked, limit)
        if codes := sum(was is None or job.pending_reason is None or was.code != job.pending_reason.code
                        for job, was in told):
            self.fed.metrics.placements.labels("unschedulable").inc(codes)
        return [job for job, _ in told], more

    def _ready(self, cluster: str) -> bool:
        """Ready and not quarantined now (either may have changed while the cycle ran)."""
        rec = self.fed.clusters.get(cluster)
        return rec is not None and rec.state is ClusterState.READY and \
            self.fed.early.quarantine.holding(cluster, self.fed.clock()) is None


__all__ = ["CycleCommit"]
