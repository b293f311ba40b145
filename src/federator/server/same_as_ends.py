"""A job whose spec.clusters.sameAs names a job that has ended fails, as an afterstart dependent of a job that can
never start does (DependencyNeverSatisfied), instead of waiting for ever.

Why: the SameAs filter (scheduler/same_as.py) places a job only where *every* job it names holds a placement. A
named job that ended (Succeeded, Failed, Cancelled) or was removed by retention will never hold one again, so a job
that still has everything to place can never be placed: it waited Pending for ever, its reason saying "it holds
none yet" of a learner that had Succeeded (outside QA new60b N1). Submit already refuses an ended job for the same
reason (server/dependencies.py `_same_as_resolved`).

- Judged when a named job ends or leaves the store (`Dependencies.changed`, fed by `Federator.notify`), when a job
  naming one is queued again after losing every placement (its next placement could never be made), and on start
  against the stored phases (a named job whose end was stored before a crash).
- Only a job with nothing placed fails: a Placed or Running job keeps its placements (never moved nor ended for
  another's sake, users.md); a part of it still to place waits, its reason saying the named job holds none now.
- A held job fails too, as a held dependent does: releasing the hold could not help.
- Who names whom is kept in memory (`_followers`: a named job -> the jobs naming it), filled as jobs are admitted
  and on start; an entry goes when the named job ends (its followers judged then) or the follower ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from federator.model import Job, JobId, JobPhase

if TYPE_CHECKING:
    from federator.server.federator import Federator

FIELD = "spec.clusters.sameAs"


def never_placed(job: Job, named: Callable[[JobId], Job | None]) -> str | None:
    """Why `job`, with nothing placed, can never be placed by its spec.clusters.sameAs (a named job ended or was
    removed), naming the job, its end and the field's index; None while every named job lives."""
    for i, key in enumerate(job.spec.clusters.same_as):
        other = named(JobId(key))
        if other is None:
            return (f"job {key} was removed (it ended), so it will never hold a placement to share "
                    f"({FIELD}[{i}]); submit the job again naming a live one")
        if other.phase.is_terminal:
            return (f"job {key} ended {other.phase}, so it will never hold a placement to share ({FIELD}[{i}]); "
                    "submit the job again naming a live one")
    return None


def unplaced(job: Job) -> bool:
    """Pending with nothing placed: a job whose every replica is still to place."""
    return job.phase is JobPhase.PENDING and not any(p.replicas > 0 for p in job.placements)


class SameAsEnds:
    """The jobs naming others in spec.clusters.sameAs, failed once one they name has ended (see the module)."""

    def __init__(self, fed: Federator, fail: Callable[[Job, str], None]) -> None:
        self.fed = fed
        self.fail = fail  # Dependencies._fail: DependencyNeverSatisfied, stored, announced (its dependents in turn)
        self._followers: dict[JobId, set[JobId]] = {}

    def admitted(self, job: Job) -> None:
        """A job accepted (or loaded on start): remembered as a follower of each job its sameAs names."""
        for key in job.spec.clusters.same_as:
            self._followers.setdefault(JobId(key), set()).add(job.job_id)

    def start(self) -> None:
        """On start: every job naming others remembered, and each with nothing placed judged against the stored
        phases of the jobs it names."""
        for job in list(self.fed.jobs.values()):
            if job.spec.clusters.same_as and not job.phase.is_terminal:
                self.admitted(job)
                self._judge(job)

    def changed(self, job: Job) -> None:
        """A job changed (`Dependencies.changed`): if it ended or left the store, the jobs naming it are judged;
        if it names others and is queued again with nothing placed, it is judged itself."""
        if not job.spec.clusters.same_as and job.job_id not in self._followers:
            return  # most jobs: on the path of every change a cycle announces, so nothing more is looked up
        gone = self.fed.jobs.get(job.job_id) is not job
        if job.spec.clusters.same_as and (gone or job.phase.is_terminal):
            for key in job.spec.clusters.same_as:  # ended itself: no longer a follower to judge
                self._followers.get(JobId(key), set()).discard(job.job_id)
        elif job.spec.clusters.same_as:
            self._judge(job)
        if job.job_id in self._followers and (gone or job.phase.is_terminal):
            for follower_id in sorted(self._followers.pop(job.job_id)):
                follower = self.fed.jobs.get(follower_id)
                if follower is not None:
                    self._judge(follower)

    def _judge(self, job: Job) -> None:
        if not unplaced(job):
            return
        why = never_placed(job, self.fed.jobs.get)
        if why is not None:
            self.fail(job, why)


__all__ = ["FIELD", "SameAsEnds", "never_placed", "unplaced"]
